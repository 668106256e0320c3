"""Which frames make up each indexed unit (DESIGN.md §2): 1 fps, at most T per unit, segments for long videos."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingConfig:
    frames_per_unit: int = 12  # T
    sample_fps: float = 1.0
    image_size: int = 224
    single_unit_max_s: float = 60.0  # videos up to this long are one unit
    segment_s: float = 30.0
    segment_overlap_s: float = 10.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class UnitPlan:
    segment_index: int
    start_s: float
    end_s: float
    frame_indices: np.ndarray  # int64 [T_u], sorted


def segment_bounds(duration_s: float, cfg: SamplingConfig) -> list[tuple[float, float]]:
    """[(start_s, end_s)]: one unit for short videos, overlapping segments ending at the video end otherwise."""
    if duration_s <= cfg.single_unit_max_s:
        return [(0.0, duration_s)]
    stride = cfg.segment_s - cfg.segment_overlap_s
    starts = np.arange(0.0, duration_s - cfg.segment_s, stride)
    bounds = [(float(s), float(s + cfg.segment_s)) for s in starts]
    bounds.append((duration_s - cfg.segment_s, duration_s))  # last segment flush with the end, no short tail
    return bounds


def plan_units(num_frames: int, fps: float, cfg: SamplingConfig) -> list[UnitPlan]:
    if num_frames <= 0 or not fps > 0:
        raise ValueError("a video needs at least one frame and a positive frame rate")
    duration = num_frames / fps
    stride = max(1, round(fps / cfg.sample_fps))
    plans = []
    for index, (start, end) in enumerate(segment_bounds(duration, cfg)):
        first = min(int(np.ceil(start * fps - 1e-6)), num_frames - 1)
        last = min(int(np.ceil(end * fps - 1e-6)), num_frames)
        candidates = np.arange(first, max(last, first + 1), stride, dtype=np.int64)
        if len(candidates) > cfg.frames_per_unit:
            picks = np.round(np.linspace(0, len(candidates) - 1, cfg.frames_per_unit)).astype(np.int64)
            candidates = candidates[np.unique(picks)]
        plans.append(UnitPlan(index, float(start), float(end), candidates))
    return plans


def all_frame_indices(plans: list[UnitPlan]) -> np.ndarray:
    """Sorted union of every unit's frames, for one decoder call."""
    return np.unique(np.concatenate([p.frame_indices for p in plans]))
