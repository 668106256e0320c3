"""Clip frames for training: windows inside longer files, the on-disk cache, undecodable videos."""

from __future__ import annotations

import numpy as np
import pytest

from glscl_index.data.records import Clip
from glscl_index.errors import DatasetError
from glscl_index.train.frames import clip_sampling, decode_clips, window_frames
from glscl_index.video.workers import DecodeConfig
from tests.media import make_clip


def test_window_frames_picks_inside_and_spreads():
    stamps = np.arange(20, dtype=np.float32)  # 1 fps over 20 s
    assert window_frames(stamps, 3.0, 6.0, 12).tolist() == [3, 4, 5, 6]
    assert window_frames(stamps, None, None, 4).tolist() == [0, 6, 13, 19]
    assert window_frames(stamps, 4.2, 4.6, 12).tolist() == [4]  # too short for a sampled frame: the nearest


def test_windows_cache_and_failures(tmp_path):
    long = make_clip(tmp_path / "long.mp4", seconds=8.0, fps=5, size=(64, 48))
    short = make_clip(tmp_path / "short.mp4", seconds=2.0, fps=5, size=(64, 48), color=(30, 40, 220))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    clips = [
        Clip("a", str(long), ("first half",), 0.0, 3.0),
        Clip("b", str(long), ("second half",), 4.0, 7.9),
        Clip("c", str(short), ("blue",)),
        Clip("d", str(broken), ("broken",)),
    ]
    sampling = clip_sampling(4, 32)
    with pytest.raises(DatasetError, match="broken.mp4"):
        decode_clips(clips, sampling, DecodeConfig(workers=1), tmp_path / "cache")
    frames, kept = decode_clips(clips, sampling, DecodeConfig(workers=1), tmp_path / "cache", skip_failed=True)
    assert kept == [0, 1, 2]
    assert frames.batch(np.arange(3))[1].tolist() == [4, 4, 2]  # windows of 4 s at 1 fps; 2 s clip
    calls = []
    again, kept_again = decode_clips(
        clips, sampling, DecodeConfig(workers=1), tmp_path / "cache", skip_failed=True, on_video=lambda: calls.append(1)
    )
    assert calls == [] and kept_again == kept  # served from the cache, nothing decoded
    np.testing.assert_array_equal(again.batch(np.arange(3))[0], frames.batch(np.arange(3))[0])
