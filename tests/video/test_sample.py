"""Frame sampling plans against hand-computed expectations."""

import numpy as np
import pytest

from glscl_index.video.sample import SamplingConfig, all_frame_indices, plan_units

CFG = SamplingConfig()


def test_short_video_one_frame_per_second():
    (unit,) = plan_units(num_frames=100, fps=10.0, cfg=CFG)  # 10 s at 10 fps
    assert unit.start_s == 0.0 and unit.end_s == 10.0
    assert unit.frame_indices.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]


def test_more_than_twelve_candidates_picks_twelve_uniformly():
    (unit,) = plan_units(num_frames=30 * 24, fps=30.0, cfg=CFG)  # 24 s -> 24 candidates
    assert len(unit.frame_indices) == 12
    assert unit.frame_indices[0] == 0 and unit.frame_indices[-1] == 23 * 30
    assert np.all(np.diff(unit.frame_indices) > 0)


def test_ntsc_rate_rounds_the_stride():
    (unit,) = plan_units(num_frames=300, fps=29.97, cfg=CFG)
    assert np.all(np.diff(unit.frame_indices) == 30)


def test_slow_frame_rate_uses_every_frame():
    (unit,) = plan_units(num_frames=5, fps=0.5, cfg=CFG)
    assert unit.frame_indices.tolist() == [0, 1, 2, 3, 4]


def test_one_frame_video():
    (unit,) = plan_units(num_frames=1, fps=25.0, cfg=CFG)
    assert unit.frame_indices.tolist() == [0]


def test_long_video_is_segmented_with_overlap_and_flush_end():
    plans = plan_units(num_frames=100 * 10, fps=10.0, cfg=CFG)  # 100 s: segments of 30 s every 20 s
    bounds = [(p.start_s, p.end_s) for p in plans]
    assert bounds == [(0.0, 30.0), (20.0, 50.0), (40.0, 70.0), (60.0, 90.0), (70.0, 100.0)]
    for plan in plans:
        times = plan.frame_indices / 10.0
        assert len(plan.frame_indices) <= 12
        assert times.min() >= plan.start_s and times.max() < plan.end_s
    assert len(all_frame_indices(plans)) == len(np.unique(np.concatenate([p.frame_indices for p in plans])))


def test_invalid_inputs():
    with pytest.raises(ValueError):
        plan_units(0, 25.0, CFG)
    with pytest.raises(ValueError):
        plan_units(10, 0.0, CFG)
