"""Which frames make up each indexed unit (docs/architecture.md §2).

1 fps, at most T per unit, segments for long videos.

Pure functions over frame counts and rates; no I/O. Times are seconds, frame
indices are 0-based positions in the decoded stream, and a frame's timestamp is
``index / fps``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

# Segment bounds closer than this are the same bound; it keeps float noise in
# ``num_frames / fps`` from producing a near-duplicate last segment.
_EPS_S = 1e-6


@dataclass(frozen=True)
class SamplingConfig:
    """How frames are chosen and sized.

    Defaults: a video up to 60 s is one unit (the benchmarks' clips are 10-30 s,
    which is what the model was trained on). Longer videos become 30 s segments
    every 20 s: a 10 s overlap keeps an event that straddles a boundary whole in
    at least one segment, and 30 s at 1 fps still fits T = 12 frames at most
    ~2.5 s apart.
    """

    frames_per_unit: int = 12  # T
    sample_fps: float = 1.0  # frames per second of video before the cap to T
    image_size: int = 224  # S: output frames are S x S pixels
    single_unit_max_s: float = 60.0  # videos up to this long are one unit
    segment_s: float = 30.0  # length of a segment of a longer video
    segment_overlap_s: float = 10.0  # shared by consecutive segments
    # Which T of the 1 fps frames: "round" (nearest to evenly spaced) or "floor" (the official loader's
    # np.linspace(..., dtype=int), which truncates).
    frame_positions: str = "round"
    # Who resizes: "ffmpeg" (decord's scaler, fast) or "pil" (decode at full size, PIL bicubic, as the
    # official loader).
    resize: str = "ffmpeg"

    def __post_init__(self) -> None:
        if self.frames_per_unit < 1:
            raise ValueError("frames_per_unit must be at least 1")
        if not self.sample_fps > 0:
            raise ValueError("sample_fps must be positive")
        # decord returns garbled arrays when asked for output narrower than 32 px.
        if self.image_size < 32:
            raise ValueError("image_size must be at least 32 pixels")
        if not 0 <= self.segment_overlap_s < self.segment_s:
            raise ValueError("segment_overlap_s must be in [0, segment_s)")
        if self.frame_positions not in ("round", "floor"):
            raise ValueError(f"frame_positions must be 'round' or 'floor', got {self.frame_positions!r}")
        if self.resize not in ("ffmpeg", "pil"):
            raise ValueError(f"resize must be 'ffmpeg' or 'pil', got {self.resize!r}")

    def to_dict(self) -> dict:
        """JSON-friendly dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SamplingConfig":
        """Inverse of ``to_dict``; unknown keys are an error (a config from a newer version)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sampling settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class UnitPlan:
    """One indexed unit: a segment [start_s, end_s] and its sampled frames (int64 [T_u], sorted, T_u <= T)."""

    segment_index: int
    start_s: float
    end_s: float
    frame_indices: np.ndarray


def segment_bounds(duration_s: float, cfg: SamplingConfig) -> list[tuple[float, float]]:
    """``[(start_s, end_s)]``: one unit for short videos, overlapping segments ending at the video end otherwise.

    The last segment is always ``[duration - segment_s, duration]`` so that no
    segment is a few seconds of tail that a 12-frame unit would describe badly.
    """
    if duration_s <= cfg.single_unit_max_s:
        return [(0.0, float(duration_s))]
    stride = cfg.segment_s - cfg.segment_overlap_s
    # max(): a video shorter than one segment (single_unit_max_s < segment_s) is one segment.
    last_start = max(0.0, duration_s - cfg.segment_s)
    starts = np.arange(0.0, last_start - _EPS_S, stride)
    bounds = [(float(s), float(s + cfg.segment_s)) for s in starts]
    bounds.append((float(last_start), float(duration_s)))
    return bounds


def sample_frames(first: int, stop: int, fps: float, cfg: SamplingConfig) -> np.ndarray:
    """Frames of the range [first, stop): one per 1/sample_fps seconds, then at most T of them uniformly.

    Returns int64 [T_u], sorted, unique, 1 <= T_u <= T (``stop > first``).
    """
    stride = max(1, round(fps / cfg.sample_fps))
    candidates = np.arange(first, stop, stride, dtype=np.int64)
    if len(candidates) > cfg.frames_per_unit:
        positions = np.linspace(0, len(candidates) - 1, cfg.frames_per_unit)
        picks = (np.floor(positions) if cfg.frame_positions == "floor" else np.round(positions)).astype(np.int64)
        candidates = candidates[np.unique(picks)]
    return candidates


def plan_units(num_frames: int, fps: float, cfg: SamplingConfig) -> list[UnitPlan]:
    """Units of a video of ``num_frames`` frames at ``fps`` frames per second.

    Raises ValueError for an empty video or a non-positive / non-finite rate.
    """
    if num_frames <= 0:
        raise ValueError("a video needs at least one frame")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"frame rate must be positive and finite, got {fps}")
    duration_s = num_frames / fps
    plans = []
    for index, (start_s, end_s) in enumerate(segment_bounds(duration_s, cfg)):
        # A frame belongs to a segment when its timestamp lies in [start_s, end_s).
        first = min(int(np.ceil(start_s * fps - _EPS_S)), num_frames - 1)
        stop = max(min(int(np.ceil(end_s * fps - _EPS_S)), num_frames), first + 1)
        plans.append(UnitPlan(index, start_s, end_s, sample_frames(first, stop, fps, cfg)))
    return plans


def all_frame_indices(plans: list[UnitPlan]) -> np.ndarray:
    """Sorted unique union of every unit's frames (int64 [F]), for one decoder call."""
    return np.unique(np.concatenate([p.frame_indices for p in plans]))
