"""The evaluation job: retrieval metrics in memory, and optionally through a real index and two-stage search."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glscl_index.errors import DatasetError, IndexMismatchError
from glscl_index.eval.evaluate import EvalReport, evaluate
from glscl_index.eval.metrics import metrics_from_ranks
from glscl_index.model.checkpoint import (
    ModelSpec,
    load_model_and_fingerprint,
    resolve_device,
)
from glscl_index.model.glscl import GLSCL
from glscl_index.search import SearchConfig, Searcher
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from pipelines.train import (
    DatasetSource,
    PreparedSplit,
    eval_data,
    prepare_split,
)


@dataclass
class EvalJobConfig:
    dataset: DatasetSource
    split: str = "test"
    model: ModelSpec = field(default_factory=ModelSpec)
    device: str = "auto"
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    cache_dir: Path | None = None  # frame cache; None = decode without caching
    via_index: Path | None = None  # index directory to build (or update) and search through


@dataclass
class IndexedEval:
    """Text-to-video metrics through an index and ``glscl search``'s two-stage path."""

    text_to_video: dict[str, float]
    index_dir: Path
    exhaustive_fallbacks: int  # queries whose video was outside the FAISS candidates, ranked exactly instead

    def to_dict(self) -> dict:
        return {
            "text_to_video": self.text_to_video,
            "index": str(self.index_dir),
            "exhaustive_fallbacks": self.exhaustive_fallbacks,
        }


@dataclass
class EvalResult:
    in_memory: EvalReport
    via_index: IndexedEval | None
    split_name: str
    skipped: int  # clips left out (missing or undecodable videos, with skip_missing)

    def to_dict(self) -> dict:
        return {
            "split": self.split_name,
            "skipped": self.skipped,
            "in_memory": self.in_memory.to_dict(),
            "via_index": None if self.via_index is None else self.via_index.to_dict(),
        }


def run_eval(config: EvalJobConfig, on_video: Callable[[], None] | None = None) -> EvalResult:
    """Everything ``glscl eval`` does."""
    model, fingerprint = load_model_and_fingerprint(config.model)
    device = resolve_device(config.device)
    model.to(device)
    prepared = prepare_split(config.dataset, config.split, model, config.decode, config.cache_dir, on_video)
    data = eval_data(prepared)
    report = evaluate(model, data.frames, data.texts, data.caption_clip, device)
    indexed = None
    if config.via_index is not None:
        indexed = evaluate_via_index(model, fingerprint, prepared, config, device)
    return EvalResult(report, indexed, prepared.split.name, prepared.split.skipped)


def evaluate_via_index(model: GLSCL, fingerprint: str, prepared: PreparedSplit, config: EvalJobConfig, device) -> IndexedEval:
    """Index the split's videos with ``model`` and rank every caption's video with the two-stage search.

    Each video is indexed as one unit (as the in-memory protocol samples it),
    so the numbers match the in-memory ones up to float16 storage.
    """
    clips = prepared.split.clips
    if any(c.start_s is not None or c.end_s is not None for c in clips):
        raise DatasetError("--via-index needs whole-video clips; this split captions segments of videos")
    paths = sorted({os.path.realpath(c.video_path) for c in clips})
    if len(paths) != len(clips):
        raise DatasetError("--via-index needs one clip per video file; this split has several clips per file")
    index_job = IndexJobConfig(
        paths=paths, index_dir=config.via_index, model=config.model, device=config.device,
        single_unit_max_s=float("inf"), decode=config.decode,
    )
    run_index(index_job, model=model)
    reader = IndexReader.open(config.via_index)
    if reader.manifest.fingerprint != fingerprint:
        raise IndexMismatchError(f"{config.via_index} holds another model's index; pass an empty --via-index directory")
    searcher = Searcher(reader, model, device)
    texts, caption_clip = prepared.split.queries()
    target = [os.path.realpath(clips[i].video_path) for i in caption_clip]
    ranks, fallbacks = _search_ranks(searcher, texts, target, len(clips))
    return IndexedEval(metrics_from_ranks(ranks), Path(config.via_index), fallbacks)


def _search_ranks(searcher: Searcher, texts: list[str], target: list[str], num_videos: int) -> tuple[np.ndarray, int]:
    """1-based rank of each caption's video in the two-stage results (exact ranking where FAISS missed it)."""
    ranks = np.array(_rank_all(searcher, texts, target, SearchConfig(k=num_videos)), dtype=np.int64)
    missing = np.flatnonzero(ranks == 0)
    if len(missing):
        ranks[missing] = _rank_all(
            searcher, [texts[i] for i in missing], [target[i] for i in missing],
            SearchConfig(k=num_videos, exhaustive=True),
        )
    if (ranks == 0).any():
        raise DatasetError("some videos of the split are missing from the index (they failed to decode there)")
    return ranks, len(missing)


def _rank_all(searcher: Searcher, texts: list[str], target: list[str], config: SearchConfig) -> list[int]:
    """Rank (1-based; 0 = not returned) of ``target[i]`` among the videos returned for ``texts[i]``."""
    ranks = []
    for start in range(0, len(texts), 256):
        text, keys = searcher.encode_queries(texts[start : start + 256])
        for hits, wanted in zip(searcher.rank(text, keys, config), target[start : start + 256]):
            found = [n for n, hit in enumerate(hits, 1) if os.path.realpath(hit.video_path) == wanted]
            ranks.append(found[0] if found else 0)
    return ranks
