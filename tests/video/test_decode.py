"""Decoding generated clips (shapes, timestamps, crop, colour), broken files, and the real benchmark clips."""

from pathlib import Path

import numpy as np
import pytest

from glscl_index.errors import CorruptVideoError
from glscl_index.video.decode import center_crop, decode_video, scaled_size
from glscl_index.video.sample import SamplingConfig
from tests.media import make_broken_files, make_clip, make_messy_folder, square_left, square_side

SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
CFG = SamplingConfig(image_size=32)


def test_shapes_dtype_and_timestamps(tmp_path):
    video = decode_video(str(make_clip(tmp_path / "c.mp4", seconds=3, fps=10)), CFG)
    (unit,) = video.units
    assert unit.frames.shape == (3, 32, 32, 3) and unit.frames.dtype == np.uint8
    assert unit.frames.flags.c_contiguous
    assert unit.timestamps_s.dtype == np.float32 and unit.timestamps_s.tolist() == [0.0, 1.0, 2.0]
    assert (video.fps, video.num_frames, video.duration_s) == (10.0, 30, 3.0)
    assert (video.width, video.height) == (96, 64)
    assert (unit.segment_index, unit.start_s, unit.end_s) == (0, 0.0, 3.0)


def test_long_clip_is_decoded_as_segments(tmp_path):
    cfg = SamplingConfig(image_size=32, single_unit_max_s=4.0, segment_s=3.0, segment_overlap_s=1.0)
    video = decode_video(str(make_clip(tmp_path / "long.mkv", seconds=8, fps=5)), cfg)
    assert [(u.start_s, u.end_s) for u in video.units] == [(0.0, 3.0), (2.0, 5.0), (4.0, 7.0), (5.0, 8.0)]
    assert [u.timestamps_s.tolist() for u in video.units] == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [5, 6, 7]]
    # the same frame decoded for two units is the same pixels
    np.testing.assert_array_equal(video.units[0].frames[2], video.units[1].frames[0])


@pytest.mark.parametrize("size", [(64, 112), (97, 55), (128, 40)])
def test_portrait_and_odd_sizes_are_scaled_then_centre_cropped(tmp_path, size):
    clip = make_clip(tmp_path / "c.mp4", size=size, seconds=1, fps=5, pattern="solid", color=(30, 200, 60))
    video = decode_video(str(clip), CFG)
    assert (video.width, video.height) == size
    frames = video.units[0].frames
    assert frames.shape == (1, 32, 32, 3)
    assert np.abs(frames.astype(int) - (30, 200, 60)).max() < 25  # solid colour edge to edge: no padding


def test_scaled_size_and_centre_crop():
    assert scaled_size(1920, 1080, 224) == (398, 224)
    assert scaled_size(1080, 1920, 224) == (224, 398)
    assert scaled_size(97, 55, 32) == (56, 32)
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    np.testing.assert_array_equal(center_crop(frames, 4), frames[:, :, 1:5])


def test_the_moving_square_is_where_it_was_drawn(tmp_path):
    size, fps, seconds = (96, 96), 10, 3
    clip = make_clip(tmp_path / "red.mp4", size=size, fps=fps, seconds=seconds, color=(230, 20, 20))
    cfg = SamplingConfig(image_size=96)  # square source, same size: the crop is the whole frame
    video = decode_video(str(clip), cfg)
    side = square_side(size)
    for frame, t in zip(video.units[0].frames, video.units[0].timestamps_s, strict=False):
        red = (frame[..., 0] > 150) & (frame[..., 1] < 90) & (frame[..., 2] < 90)
        columns = np.nonzero(red.any(axis=0))[0]
        left = square_left(int(round(t * fps)), fps * seconds, size)
        assert abs(columns.min() - left) <= 2 and abs(columns.max() - (left + side - 1)) <= 2


def test_messy_folder_decodes_every_good_file(tmp_path):
    made = make_messy_folder(tmp_path)
    for path in made["good"]:
        video = decode_video(str(path), CFG)
        assert (video.width, video.height) == made["sizes"][path]
        frames = video.units[0].frames.astype(int)
        colour = np.array(made["colors"][path])
        # the square crosses the centre crop at some point; its colour survives the codec
        assert (np.abs(frames - colour).sum(-1) < 90).any(), path


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("zero_byte", "empty file (0 bytes)"),
        ("truncated", "truncated or damaged"),
        ("random_bytes", "not a video or unsupported format"),
        ("text", "not a video or unsupported format"),
        ("audio_only", "no video stream"),
        ("garbage_after_header", "truncated or damaged"),
    ],
)
def test_broken_files_raise_one_line_reasons(tmp_path, kind, reason):
    path = make_broken_files(tmp_path)[kind]
    with pytest.raises(CorruptVideoError) as error:
        decode_video(str(path), CFG)
    message = str(error.value)
    assert reason in message and "\n" not in message and len(message) < 200


def test_missing_file_is_a_corrupt_video_error(tmp_path):
    with pytest.raises(CorruptVideoError, match="cannot read file"):
        decode_video(str(tmp_path / "gone.mp4"), CFG)


def test_memory_bound_rejects_before_decoding(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", seconds=2)
    with pytest.raises(CorruptVideoError, match="too large to decode"):
        decode_video(str(clip), CFG, max_output_bytes=1000)


def test_stream_shorter_than_its_frame_count_decodes_its_prefix(tmp_path):
    import decord

    # MPEG-TS has no index: cut short, it reports frames whose packets are not there.
    clip = make_clip(tmp_path / "c.ts", seconds=4, fps=10, codec="mpeg2video")
    cut = tmp_path / "cut.ts"
    cut.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.4)])
    reported = len(decord.VideoReader(str(cut), num_threads=1))
    cfg = SamplingConfig(image_size=32, frames_per_unit=3, sample_fps=10.0)  # asks for the last frame
    video = decode_video(str(cut), cfg)
    (unit,) = video.units
    assert 1 <= video.num_frames < reported
    assert video.duration_s == pytest.approx(video.num_frames / video.fps)
    assert unit.frames.shape[0] == len(unit.timestamps_s) >= 1
    assert unit.timestamps_s.max() < video.duration_s


@pytest.mark.skipif(not (SHARED_FIXTURES / "real-clips").is_dir(), reason="shared fixtures absent")
def test_real_benchmark_clips_decode():
    clips = sorted(p for p in (SHARED_FIXTURES / "real-clips").rglob("*") if p.is_file())
    assert clips
    for clip in clips:
        video = decode_video(str(clip), SamplingConfig())
        assert video.width >= 64 and video.height >= 64 and video.fps > 0
        (unit,) = video.units  # benchmark clips are under a minute
        assert unit.frames.shape[1:] == (224, 224, 3) and 1 <= len(unit.timestamps_s) <= 12
        assert unit.frames.std() > 5, clip  # real picture content, not a blank frame


def test_pil_resize_decodes_full_size_then_resizes_bicubic(tmp_path):
    import decord
    from PIL import Image

    path = str(make_clip(tmp_path / "c.mp4", seconds=2, fps=10, size=(96, 64)))
    (unit,) = decode_video(path, SamplingConfig(image_size=32, resize="pil")).units
    # Reference, as the official loader: full-size frames, PIL bicubic to short side 32 (48 x 32), centre crop.
    native = decord.VideoReader(path).get_batch([0, 10]).asnumpy()
    resized = np.stack([np.asarray(Image.fromarray(f).resize((48, 32), Image.BICUBIC)) for f in native])
    assert np.array_equal(unit.frames, resized[:, :, 8:40])
