"""The training job: read a dataset, decode its clips once, train GLSCL, keep ``last/`` and ``best/`` checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glscl_index.data import DatasetSplit, load_dataset
from glscl_index.device import resolve_device
from glscl_index.errors import DatasetError
from glscl_index.model.factory import trainable_model
from glscl_index.model.glscl import GLSCL
from glscl_index.model.spec import ModelSpec
from glscl_index.train.config import TrainConfig
from glscl_index.train.frames import ClipFrames, clip_sampling, decode_clips
from glscl_index.train.loop import (
    EvalData,
    TrainCallbacks,
    TrainData,
    TrainResult,
    train,
)
from glscl_index.video.workers import DecodeConfig

FRAME_CACHE_DIR = "frame-cache"


@dataclass
class DatasetSource:
    """Where a dataset's annotations and videos are (see ``glscl_index.data.load_dataset``)."""

    name: str
    annotations: Path
    video_root: Path
    skip_missing: bool = False


@dataclass
class TrainJobConfig:
    dataset: DatasetSource
    output: Path  # receives last/, best/ and the frame cache
    model: ModelSpec = field(default_factory=ModelSpec)
    model_overrides: dict = field(default_factory=dict)  # GLSCLConfig fields for a fresh model, e.g. num_queries
    train: TrainConfig = field(default_factory=TrainConfig)
    train_split: str = "train"
    val_split: str = ""  # "" = no validation: best/ is then not written, last/ is the result
    device: str = "auto"
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    resume: bool = True


@dataclass
class PreparedSplit:
    """A split restricted to the clips that decoded, with their frames."""

    split: DatasetSplit
    frames: ClipFrames


def prepare_split(
    source: DatasetSource, split_name: str, model: GLSCL, decode: DecodeConfig, cache_dir: Path | None,
    on_video: Callable[[], None] | None = None, frame_positions: str = "round", resize: str = "ffmpeg",
) -> PreparedSplit:
    """Read a split and decode its clips the way the model sees them (T frames of S x S pixels;
    ``frame_positions`` and ``resize`` as in SamplingConfig)."""
    split = load_dataset(source.name, source.annotations, source.video_root, split_name, source.skip_missing)
    if not split.clips:
        raise DatasetError(f"{split.name} has no clips")
    sampling = clip_sampling(model.config.num_frames, model.config.image_size, frame_positions, resize)
    frames, kept = decode_clips(split.clips, sampling, decode, cache_dir, source.skip_missing, on_video)
    undecodable = len(split.clips) - len(kept)
    kept_split = DatasetSplit(
        split.name, [split.clips[i] for i in kept], split.paragraph, split.skipped + undecodable
    )
    if len(kept_split.clips) < 2:
        raise DatasetError(f"{split.name}: fewer than 2 usable clips; nothing to contrast")
    return PreparedSplit(kept_split, frames)


def train_data(model: GLSCL, prepared: PreparedSplit) -> TrainData:
    pairs = prepared.split.pairs()
    tokens = model.backbone.tokenize([text for text, _ in pairs])
    return TrainData(prepared.frames, tokens, np.array([clip for _, clip in pairs], dtype=np.int64))


def eval_data(prepared: PreparedSplit) -> EvalData:
    texts, caption_clip = prepared.split.queries()
    return EvalData(prepared.frames, texts, caption_clip)


def run_train(
    config: TrainJobConfig, callbacks: TrainCallbacks | None = None, on_video: Callable[[], None] | None = None
) -> tuple[TrainResult, PreparedSplit, PreparedSplit | None]:
    """Everything ``glscl train`` does; returns the result and the prepared splits (for reporting)."""
    model = trainable_model(config.model, **config.model_overrides)
    cache = config.output / FRAME_CACHE_DIR
    style = {"frame_positions": config.train.frame_positions, "resize": config.train.resize}
    training = prepare_split(config.dataset, config.train_split, model, config.decode, cache, on_video, **style)
    validation = (
        prepare_split(config.dataset, config.val_split, model, config.decode, cache, on_video, **style)
        if config.val_split else None
    )
    result = train(
        model, train_data(model, training), config.train, config.output,
        validation=None if validation is None else eval_data(validation),
        device=resolve_device(config.device), callbacks=callbacks, resume=config.resume,
    )
    return result, training, validation
