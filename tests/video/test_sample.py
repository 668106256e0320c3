"""Frame sampling plans against hand-computed expectations (docs/architecture.md §2: 1 fps, at most T, segments)."""

import json

import numpy as np
import pytest

from glscl_index.video.sample import SamplingConfig, all_frame_indices, plan_units, segment_bounds

CFG = SamplingConfig()


def test_short_video_one_frame_per_second():
    (unit,) = plan_units(num_frames=100, fps=10.0, cfg=CFG)  # 10 s at 10 fps: stride 10
    assert (unit.segment_index, unit.start_s, unit.end_s) == (0, 0.0, 10.0)
    assert unit.frame_indices.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert unit.frame_indices.dtype == np.int64


def test_pal_rate():
    (unit,) = plan_units(num_frames=250, fps=25.0, cfg=CFG)  # 10 s: stride 25
    assert unit.frame_indices.tolist() == list(range(0, 250, 25))


def test_ntsc_rate_rounds_the_stride():
    (unit,) = plan_units(num_frames=300, fps=29.97, cfg=CFG)  # 10.01 s: stride round(29.97) = 30
    assert unit.frame_indices.tolist() == list(range(0, 300, 30))
    assert unit.end_s == pytest.approx(300 / 29.97)


def test_slow_frame_rate_uses_every_frame():
    (unit,) = plan_units(num_frames=5, fps=0.5, cfg=CFG)  # 10 s, a frame every 2 s: stride max(1, 0) = 1
    assert unit.frame_indices.tolist() == [0, 1, 2, 3, 4]


def test_more_than_twelve_candidates_picks_twelve_uniformly():
    (unit,) = plan_units(num_frames=30 * 24, fps=30.0, cfg=CFG)  # 24 s -> candidates 0, 30, ..., 690
    # np.round(np.linspace(0, 23, 12)) = 0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23 (half to even)
    assert unit.frame_indices.tolist() == [30 * k for k in (0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23)]


def test_thirteen_candidates_stay_unique():
    (unit,) = plan_units(num_frames=13 * 30, fps=30.0, cfg=CFG)
    assert len(unit.frame_indices) == 12 and np.all(np.diff(unit.frame_indices) > 0)


def test_one_frame_video():
    (unit,) = plan_units(num_frames=1, fps=25.0, cfg=CFG)
    assert unit.frame_indices.tolist() == [0]
    assert (unit.start_s, unit.end_s) == (0.0, 0.04)


def test_exactly_single_unit_max_is_one_unit():
    assert len(plan_units(num_frames=600, fps=10.0, cfg=CFG)) == 1  # 60.0 s


def test_long_video_is_segmented_with_overlap_and_flush_end():
    plans = plan_units(num_frames=100 * 10, fps=10.0, cfg=CFG)  # 100 s: 30 s segments every 20 s
    bounds = [(p.start_s, p.end_s) for p in plans]
    assert bounds == [(0.0, 30.0), (20.0, 50.0), (40.0, 70.0), (60.0, 90.0), (70.0, 100.0)]
    assert [p.segment_index for p in plans] == [0, 1, 2, 3, 4]
    # 30 candidates per segment (stride 10) -> 12 picked, first at the segment start.
    assert plans[1].frame_indices[0] == 200 and len(plans[1].frame_indices) == 12
    for plan in plans:
        times = plan.frame_indices / 10.0
        assert times.min() >= plan.start_s and times.max() < plan.end_s


def test_segments_that_end_exactly_at_the_video_end_have_no_duplicate():
    assert segment_bounds(90.0, CFG) == [(0.0, 30.0), (20.0, 50.0), (40.0, 70.0), (60.0, 90.0)]
    # float noise in num_frames / fps must not add a near-copy of the last segment
    assert len(segment_bounds(90.0 + 1e-9, CFG)) == 4


def test_short_remainder_is_absorbed_by_the_last_segment():
    assert segment_bounds(61.0, CFG) == [(0.0, 30.0), (20.0, 50.0), (31.0, 61.0)]


def test_all_frame_indices_is_the_sorted_union():
    plans = plan_units(num_frames=1000, fps=10.0, cfg=CFG)
    union = all_frame_indices(plans)
    assert union.tolist() == sorted(set(np.concatenate([p.frame_indices for p in plans]).tolist()))


def test_config_round_trips_through_json():
    cfg = SamplingConfig(frames_per_unit=8, segment_s=20.0, segment_overlap_s=5.0)
    assert SamplingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        SamplingConfig.from_dict({"frames": 3})


@pytest.mark.parametrize(
    "kwargs", [{"frames_per_unit": 0}, {"sample_fps": 0}, {"image_size": 16}, {"segment_overlap_s": 30.0}]
)
def test_invalid_config(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)


@pytest.mark.parametrize("num_frames, fps", [(0, 25.0), (10, 0.0), (10, -1.0), (10, float("nan"))])
def test_invalid_inputs(num_frames, fps):
    with pytest.raises(ValueError):
        plan_units(num_frames, fps, CFG)


def test_floor_positions_truncate_like_the_official_loader():
    # 20 one-per-second candidates down to T = 12: linspace(0, 19, 12) = 0, 1.73, 3.45, 5.18, ...
    rounded = plan_units(num_frames=200, fps=10.0, cfg=SamplingConfig(frames_per_unit=12))[0].frame_indices // 10
    floored = plan_units(num_frames=200, fps=10.0, cfg=SamplingConfig(frames_per_unit=12, frame_positions="floor"))
    expected = np.linspace(0, 19, 12, dtype=int)  # the official code's expression
    assert floored[0].frame_indices.tolist() == (expected * 10).tolist()
    assert rounded.tolist() == np.round(np.linspace(0, 19, 12)).astype(int).tolist() != expected.tolist()
