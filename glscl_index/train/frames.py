"""Decoded frames of a dataset's clips, decoded once and cached as a memory-mapped array.

Training reads every clip once per epoch; decoding the videos each time
would cost more than the model. Clips are decoded in the same isolated
worker pool as indexing, with the same sampling (1 fps, at most T frames,
docs/architecture.md §2), so a model is trained and evaluated on exactly the frames the
indexer gives it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from glscl_index.atomic import atomic_write, atomic_write_bytes
from glscl_index.data.records import Clip
from glscl_index.errors import DatasetError
from glscl_index.video.decode import DecodedVideo
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.workers import DecodeConfig, DecodePool

# A clip cut out of a longer file (start/end in the annotations) is sampled from
# the file's 1 fps frames; this many of them at most are decoded per file.
WINDOW_FRAMES_CAP = 4096


@dataclass
class ClipFrames:
    """Frames of the N kept clips.

    ``frames`` uint8 ``[M, T, S, S, 3]`` (zero padding, M >= N: rows of clips
    that failed to decode stay unused), ``counts`` int64 ``[M]`` real frames per
    row, ``rows`` int64 ``[N]``: the row of kept clip j.
    """

    frames: np.ndarray
    counts: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kept-clip indices ``[B]`` -> (frames ``[B, T, S, S, 3]``, counts ``[B]``).

        Rows are read in sorted order, which suits the memory map.
        """
        rows = self.rows[np.asarray(clips, dtype=np.int64)]
        order = np.argsort(rows, kind="stable")
        frames = np.empty((len(rows),) + self.frames.shape[1:], dtype=np.uint8)
        frames[order] = self.frames[rows[order]]
        return frames, self.counts[rows]


def clip_sampling(
    frames_per_unit: int, image_size: int, frame_positions: str = "round", resize: str = "ffmpeg"
) -> SamplingConfig:
    """Sampling for a whole clip: one unit however long (1 fps, at most T frames)."""
    return SamplingConfig(
        frames_per_unit=frames_per_unit, image_size=image_size, single_unit_max_s=float("inf"),
        frame_positions=frame_positions, resize=resize,
    )


def window_frames(timestamps_s: np.ndarray, start_s: float | None, end_s: float | None, limit: int) -> np.ndarray:
    """Positions ``[T_u]`` of the 1 fps frames inside [start_s, end_s], at most ``limit`` spread uniformly.

    An annotated window too short to hold a sampled frame takes the frame nearest to its middle.
    """
    start = -np.inf if start_s is None else start_s
    end = np.inf if end_s is None else end_s
    inside = np.flatnonzero((timestamps_s >= start) & (timestamps_s <= end))
    if len(inside) == 0:
        middle = (max(start, 0.0) + min(end, float(timestamps_s[-1]))) / 2
        return np.array([int(np.argmin(np.abs(timestamps_s - middle)))])
    if len(inside) > limit:
        inside = inside[np.unique(np.round(np.linspace(0, len(inside) - 1, limit)).astype(np.int64))]
    return inside


def decode_clips(
    clips: list[Clip],
    sampling: SamplingConfig,
    decode: DecodeConfig,
    cache_dir: Path | None,
    skip_failed: bool = False,
    on_video: Callable[[], None] | None = None,
) -> tuple[ClipFrames, list[int]]:
    """Decode every clip once (or reuse the cache) -> (frames of the kept clips, indices of the kept clips).

    A video that does not decode is a DatasetError naming it, unless
    ``skip_failed``: then its clips are left out. The cache is keyed on the
    clips, their files' size and mtime, and the sampling, and written under a
    temporary name first, so an interrupted run never leaves a half cache.
    """
    key = _cache_key(clips, sampling)
    if cache_dir is not None:
        cached = _load_cache(cache_dir, key)
        if cached is not None:
            return cached
        cache_dir.mkdir(parents=True, exist_ok=True)
    shape = (len(clips), sampling.frames_per_unit, sampling.image_size, sampling.image_size, 3)
    if cache_dir is None:
        frames = np.zeros(shape, np.uint8)
        counts, kept = _decode_into(frames, clips, sampling, decode, skip_failed, on_video)
        return ClipFrames(frames, counts, np.asarray(kept, dtype=np.int64)), kept
    final = cache_dir / f"frames-{key}.npy"
    with atomic_write(final) as tmp:
        # Written straight into the cache file: a big dataset's frames need not fit in memory.
        cached_frames = np.lib.format.open_memmap(tmp, "w+", np.uint8, shape)
        counts, kept = _decode_into(cached_frames, clips, sampling, decode, skip_failed, on_video)
        cached_frames.flush()
        del cached_frames
    # The metadata is written last: its presence marks a complete cache.
    atomic_write_bytes(cache_dir / f"frames-{key}.json", json.dumps({"counts": counts.tolist(), "kept": kept}).encode())
    return ClipFrames(np.load(final, mmap_mode="r"), counts, np.asarray(kept, dtype=np.int64)), kept


def _decode_into(frames, clips, sampling, decode, skip_failed, on_video) -> tuple[np.ndarray, list[int]]:
    windowed = {c.video_path for c in clips if c.start_s is not None or c.end_s is not None}
    paths = sorted({c.video_path for c in clips})
    counts = np.zeros(len(clips), dtype=np.int64)
    by_path: dict[str, list[int]] = {}
    for i, clip in enumerate(clips):
        by_path.setdefault(clip.video_path, []).append(i)
    failures: dict[str, str] = {}
    # Whole-file paths and windowed paths need different sampling, hence two passes.
    for group, group_sampling in (
        ([p for p in paths if p not in windowed], sampling),
        ([p for p in paths if p in windowed], replace(sampling, frames_per_unit=WINDOW_FRAMES_CAP)),
    ):
        if not group:
            continue
        with DecodePool(decode, group_sampling) as pool:
            for path, result in pool.imap(group):
                if on_video is not None:
                    on_video()
                if not isinstance(result, DecodedVideo):
                    failures[path] = str(result)
                    continue
                _fill(result, [clips[i] for i in by_path[path]], by_path[path], sampling, frames, counts)
    if failures and not skip_failed:
        path, reason = next(iter(sorted(failures.items())))
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise DatasetError(f"cannot decode {path}: {reason}{more}; fix or remove it, or pass --skip-missing")
    return counts, [i for i, clip in enumerate(clips) if clip.video_path not in failures]


def _fill(video: DecodedVideo, clips: list[Clip], rows: list[int], sampling, frames, counts) -> None:
    unit = video.units[0]
    for clip, row in zip(clips, rows, strict=False):
        if clip.start_s is None and clip.end_s is None:
            chosen = unit.frames
        else:
            chosen = unit.frames[window_frames(unit.timestamps_s, clip.start_s, clip.end_s, sampling.frames_per_unit)]
        frames[row, : len(chosen)] = chosen
        counts[row] = len(chosen)


def _cache_key(clips: list[Clip], sampling: SamplingConfig) -> str:
    digest = hashlib.blake2b(digest_size=12)
    digest.update(json.dumps(sampling.to_dict(), sort_keys=True).encode())
    for clip in clips:
        try:
            stat = os.stat(clip.video_path)
            facts = f"{stat.st_size}|{stat.st_mtime_ns}"
        except OSError:
            facts = "missing"
        digest.update(f"{clip.video_path}|{clip.start_s}|{clip.end_s}|{facts}\n".encode())
    return digest.hexdigest()


def _load_cache(cache_dir: Path, key: str) -> tuple[ClipFrames, list[int]] | None:
    meta_path = cache_dir / f"frames-{key}.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        frames = np.load(cache_dir / f"frames-{key}.npy", mmap_mode="r")
        counts = np.asarray(meta["counts"], dtype=np.int64)
        kept = [int(i) for i in meta["kept"]]
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache is only a cache: decode again
    if len(frames) != len(counts):
        return None
    return ClipFrames(frames, counts, np.asarray(kept, dtype=np.int64)), kept

