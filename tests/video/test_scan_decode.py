"""Scanning a messy folder and decoding what is in it, broken files included."""

import os

import numpy as np
import pytest

from glscl_index.errors import CorruptVideoError
from glscl_index.video.decode import decode_video
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.scan import content_hash, scan_paths
from tests.conftest import SHARED_FIXTURES
from tests.media import make_broken_files, make_clip, make_messy_folder

CFG = SamplingConfig(image_size=32)


def test_scan_finds_videos_skips_hidden_and_reports_problems(tmp_path):
    made = make_messy_folder(tmp_path)
    result = scan_paths([tmp_path])
    found = {f.path for f in result.files}
    for good in made["good"]:
        assert str(good) in found
    assert not any("/." in p for p in found)
    assert not any(p.endswith(".txt") for p in found)
    assert any(p.reason == "dangling symlink" for p in result.problems)
    hidden = scan_paths([tmp_path], include_hidden=True)
    assert any(".hidden" in f.path for f in hidden.files)
    excluded = scan_paths([tmp_path], exclude=["nested/*", "*.avi"])
    assert not any("nested" in f.path or f.path.endswith(".avi") for f in excluded.files)


def test_scan_survives_symlink_loops_and_missing_paths(tmp_path):
    make_clip(tmp_path / "x" / "a.mp4")
    os.symlink(tmp_path / "x", tmp_path / "x" / "loop")
    result = scan_paths([tmp_path, tmp_path / "missing"])
    assert [os.path.basename(f.path) for f in result.files] == ["a.mp4"]
    assert any(p.reason == "no such file or directory" for p in result.problems)


def test_content_hash_tracks_content_not_name(tmp_path):
    a = make_clip(tmp_path / "a.mp4")
    b = tmp_path / "b.mp4"
    b.write_bytes(a.read_bytes())
    c = make_clip(tmp_path / "c.mp4", color=(0, 0, 255))
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_decode_shapes_timestamps_and_crop(tmp_path):
    video = decode_video(str(make_clip(tmp_path / "p.mp4", size=(48, 80), seconds=3, fps=10)), CFG)
    (unit,) = video.units
    assert unit.frames.shape == (3, 32, 32, 3) and unit.frames.dtype == np.uint8
    assert unit.timestamps_s.tolist() == [0.0, 1.0, 2.0]
    assert (video.width, video.height) == (48, 80)


def test_decoded_colour_is_the_generated_square(tmp_path):
    video = decode_video(str(make_clip(tmp_path / "red.mp4", color=(230, 20, 20), size=(96, 96))), CFG)
    frame = video.units[0].frames[1].astype(int)
    brightest = frame.reshape(-1, 3)[frame.sum(-1).argmax()]
    assert brightest[0] > 150 and brightest[1] < 100 and brightest[2] < 100


@pytest.mark.parametrize("kind", ["zero_byte", "truncated", "random_bytes", "text", "audio_only"])
def test_broken_files_raise_one_line_reasons(tmp_path, kind):
    path = make_broken_files(tmp_path)[kind]
    with pytest.raises(CorruptVideoError) as error:
        decode_video(str(path), CFG)
    assert "\n" not in str(error.value) and str(error.value)


@pytest.mark.skipif(not (SHARED_FIXTURES / "real-clips").is_dir(), reason="shared fixtures absent")
def test_real_benchmark_clips_decode():
    clips = sorted((SHARED_FIXTURES / "real-clips").rglob("*.*"))
    assert clips
    for clip in clips:
        video = decode_video(str(clip), SamplingConfig())
        assert video.units and video.units[0].frames.shape[1:] == (224, 224, 3)
        assert 1 <= len(video.units[0].timestamps_s) <= 12
