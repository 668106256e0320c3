"""The indexing stages as plain functions over batches: decode files -> embed units -> rows -> a store batch.

Both engines call these and nothing else to turn files into what the store
holds: the local engine (``embed_job.py``: worker processes + a model thread)
and the Ray Data engine (``ray_engine.py``: CPU tasks + an actor pool). So an
index built either way has the same rows, and a broken file the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.store.schema import UnitBatch
from glscl_index.video.decode import DecodedUnit, DecodedVideo, decode_video
from glscl_index.video.decode_config import DecodeConfig
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.workers import DecodePool, DecodeResult
from pipelines.index_plan import EmbedTask

if TYPE_CHECKING:
    from glscl_index.embedding import VideoEmbedder


def decode_files(
    paths: Iterable[str],
    decode_cfg: DecodeConfig,
    sampling: SamplingConfig,
    decode_fn: Callable[[str, SamplingConfig], DecodedVideo] = decode_video,
) -> Iterator[tuple[str, DecodeResult]]:
    """``(path, DecodedVideo | CorruptVideoError)`` per file, in order, each decoded in an isolated worker process
    (``decode_cfg``: how many, the time and memory one file may take); the pool closes when the caller stops."""
    with DecodePool(decode_cfg, sampling, decode_fn=decode_fn) as pool:
        yield from pool.imap(paths)


@dataclass
class UnitRows:
    """What the model made of U units, padded to T frames: everything a store row needs but the file's identity."""

    segment_index: np.ndarray  # int32 [U]
    start_s: np.ndarray  # float32 [U]
    end_s: np.ndarray  # float32 [U]
    num_frames: np.ndarray  # int32 [U]
    timestamps_s: np.ndarray  # float32 [U, T], zero on padding
    frame_features: np.ndarray  # float16 [U, T, D], zero on padding
    visual_concepts: np.ndarray  # float16 [U, K, D] (K = 0 in zero-shot mode)

    def __len__(self) -> int:
        return len(self.segment_index)

    def take(self, rows: np.ndarray | slice) -> UnitRows:
        return UnitRows(**{name: getattr(self, name)[rows] for name in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: Sequence[UnitRows]) -> UnitRows:
        return UnitRows(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in UnitRows.__dataclass_fields__}
        )


def embed_units(embedder: VideoEmbedder, units: Sequence[DecodedUnit]) -> UnitRows:
    """Run the model on the frames of ``units`` (in ``embedder.batch_frames`` chunks); one row per unit, in order."""
    counts = np.array([len(unit.timestamps_s) for unit in units], dtype=np.int64)
    embedded = embedder.embed(np.concatenate([unit.frames for unit in units]), counts)
    timestamps = np.zeros((len(units), embedder.num_frames), dtype=np.float32)
    timestamps[embedded.mask] = np.concatenate([unit.timestamps_s for unit in units]).astype(np.float32)
    return UnitRows(
        segment_index=np.array([unit.segment_index for unit in units], dtype=np.int32),
        start_s=np.array([unit.start_s for unit in units], dtype=np.float32),
        end_s=np.array([unit.end_s for unit in units], dtype=np.float32),
        num_frames=counts.astype(np.int32),
        timestamps_s=timestamps,
        frame_features=embedded.frames,
        visual_concepts=embedded.concepts,
    )


def embed_videos(embedder: VideoEmbedder, videos: Sequence[DecodedVideo]) -> UnitRows:
    """``embed_units`` over every unit of ``videos``, video after video."""
    return embed_units(embedder, [unit for video in videos for unit in video.units])


def store_batch(
    tasks: Sequence[EmbedTask], units_per_task: Sequence[int], rows: UnitRows, fingerprint: str
) -> UnitBatch:
    """The store's batch for ``rows``: the first ``units_per_task[0]`` rows are ``tasks[0]``'s units, and so on."""
    owner = [tasks[i] for i in np.repeat(np.arange(len(tasks)), np.asarray(units_per_task, dtype=np.int64)).tolist()]
    files = [task.file for task in owner]
    video_ids = np.array([task.video_id for task in owner], dtype=object)
    return UnitBatch(
        unit_id=np.array([f"{v}:{s}" for v, s in zip(video_ids, rows.segment_index, strict=True)], dtype=object),
        video_id=video_ids,
        path=np.array([f.path for f in files], dtype=object),
        size=np.array([f.size for f in files], dtype=np.int64),
        mtime_ns=np.array([f.mtime_ns for f in files], dtype=np.int64),
        content_hash=np.array([task.content_hash for task in owner], dtype=object),
        segment_index=rows.segment_index,
        start_s=rows.start_s,
        end_s=rows.end_s,
        num_frames=rows.num_frames,
        timestamps_s=rows.timestamps_s,
        frame_features=rows.frame_features,
        visual_concepts=rows.visual_concepts,
        fingerprint=fingerprint,
    )
