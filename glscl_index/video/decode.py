"""Decoding the sampled frames of one file with decord: reduced resolution, one batch call, centre crop.

Every failure is a ``CorruptVideoError`` with a one-line reason; nothing here
prints. decord is imported inside ``decode_video`` so that only decoding
worker processes load it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from glscl_index.errors import CorruptVideoError
from glscl_index.video.sample import SamplingConfig, all_frame_indices, plan_units

# Decoded RGB bytes one file may produce (sampled frames at output size). A
# 3-hour video at the defaults needs ~0.5 GiB; more means a bogus frame count
# or a pathological aspect ratio, not a video worth indexing.
MAX_OUTPUT_BYTES = 2 << 30

# decord's reshaping of the scaler's output is wrong below 32 px of width, so
# the height probe asks for a frame this wide.
_PROBE_WIDTH = 32

# First bytes of containers that decord can open; a file that starts like one
# but does not open is truncated or damaged rather than "not a video".
_CONTAINER_MAGIC = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"),  # MP4 / MOV / 3GP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


@dataclass
class DecodedUnit:
    """One unit's frames: ``frames`` uint8 [T_u, S, S, 3] RGB, ``timestamps_s`` float32 [T_u] seconds."""

    segment_index: int
    start_s: float
    end_s: float
    timestamps_s: np.ndarray
    frames: np.ndarray


@dataclass
class DecodedVideo:
    """A decoded file: stream facts (original ``width`` x ``height`` pixels, seconds, frames) and its units."""

    path: str
    fps: float
    duration_s: float
    num_frames: int
    width: int
    height: int
    units: list[DecodedUnit]


def decode_video(path: str, cfg: SamplingConfig, max_output_bytes: int = MAX_OUTPUT_BYTES) -> DecodedVideo:
    """Decode the frames ``plan_units`` picks, each resized so the short side is S and centre-cropped to S x S.

    ``num_frames`` and ``duration_s`` describe the part of the stream that
    decodes: when a damaged file reports more frames than it holds, the units
    are planned over the frames that decode.
    Raises CorruptVideoError with a one-line reason.
    """
    import decord  # noqa: PLC0415 (see module docstring)

    try:
        size_bytes = os.path.getsize(path)
    except OSError as exc:
        raise CorruptVideoError(f"cannot read file: {exc.strerror or exc}") from None
    if size_bytes == 0:
        raise CorruptVideoError("empty file (0 bytes)")
    width, height, num_frames, fps = _probe(decord, path)
    out_w, out_h = scaled_size(width, height, cfg.image_size)
    plans = plan_units(num_frames, fps, cfg)
    indices = all_frame_indices(plans)
    read_w, read_h = (width, height) if cfg.resize == "pil" else (out_w, out_h)
    needed = len(indices) * read_w * read_h * 3
    if needed > max_output_bytes:
        raise CorruptVideoError(
            f"too large to decode: {len(indices)} frames of {out_w}x{out_h} need {needed >> 20} MiB"
            f" (limit {max_output_bytes >> 20} MiB)"
        )
    # decord resizes inside its FFmpeg filter graph and exposes no interpolation
    # choice (VideoReader takes only width/height), so the resize uses FFmpeg's
    # default scaler filter, not necessarily the bicubic of docs/architecture.md §2.
    try:
        frames = _read_batch(decord, path, (read_w, read_h), indices)
    except decord.DECORDError as exc:
        num_frames, plans, indices, frames = _decode_prefix(decord, path, (read_w, read_h), fps, cfg, indices, exc)
    if cfg.resize == "pil":
        frames = pil_resize(frames, (out_w, out_h))
    frames = center_crop(frames, cfg.image_size)
    units = [
        DecodedUnit(
            plan.segment_index, plan.start_s, plan.end_s,
            (plan.frame_indices / fps).astype(np.float32),
            frames[np.searchsorted(indices, plan.frame_indices)],
        )
        for plan in plans
    ]
    return DecodedVideo(path, fps, num_frames / fps, num_frames, width, height, units)


def scaled_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(out_w, out_h) pixels with the short side ``short_side`` and the aspect ratio kept (long side rounded)."""
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def pil_resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``[N, H, W, 3]`` -> ``[N, h, w, 3]`` for ``size`` (w, h), PIL's bicubic filter, frame by frame."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC)) for frame in frames])


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """[N, H, W, 3] -> contiguous [N, size, size, 3], the centre of each frame (H, W >= size)."""
    top, left = (frames.shape[1] - size) // 2, (frames.shape[2] - size) // 2
    return np.ascontiguousarray(frames[:, top : top + size, left : left + size])


def _probe(decord, path: str) -> tuple[int, int, int, float]:
    """(width, height, num_frames, fps) without decoding a full-size frame.

    decord has no call for the stream's size, but it keeps the original value
    of a dimension passed as -1: a frame decoded at 32 x -1 has the original
    height and one at -1 x 1 the original width, and both are tiny arrays even
    for 8K video.
    """
    narrow = _open(decord, path, width=_PROBE_WIDTH, height=-1)
    flat = _open(decord, path, width=-1, height=1)
    try:
        height = narrow.get_batch([0]).shape[1]
        width = flat.get_batch([0]).shape[2]
    except decord.DECORDError as exc:
        raise CorruptVideoError(f"truncated or damaged stream: {_short(exc)}") from None
    num_frames = len(narrow)
    fps = float(narrow.get_avg_fps())
    if not (math.isfinite(fps) and fps > 0):
        fps = _fps_from_timestamps(narrow, num_frames)
    return int(width), int(height), int(num_frames), fps


def _fps_from_timestamps(reader, num_frames: int) -> float:
    """Rate from the last frame's end time, for containers that store no frame rate."""
    try:
        end_s = float(reader.get_frame_timestamp(num_frames - 1)[1])
    except Exception:  # decord raises assorted types for unindexable streams
        end_s = float("nan")
    if not (math.isfinite(end_s) and end_s > 0):
        raise CorruptVideoError("unknown frame rate (the stream has no rate and no timestamps)")
    return num_frames / end_s


def _decode_prefix(decord, path, out_size, fps, cfg, indices, first_error):
    """(num_frames, plans, indices, frames) over the frames that decode, for a stream claiming more than it holds.

    Bisects on the sampled indices (a handful of small batch calls, each on a
    fresh reader, since a reader that hit a decode error is left mid-stream),
    then re-plans over the decodable prefix so units keep their 1 fps spacing.
    """
    good, bad = 0, len(indices)  # indices[:good] decode, indices[:bad] do not
    while bad - good > 1:
        middle = (good + bad) // 2
        if _batch_or_none(decord, path, out_size, indices[:middle]) is not None:
            good = middle
        else:
            bad = middle
    if good == 0:
        raise CorruptVideoError(f"truncated or damaged stream: {_short(first_error)}")
    num_frames = int(indices[good - 1]) + 1
    plans = plan_units(num_frames, fps, cfg)
    prefix = all_frame_indices(plans)
    frames = _batch_or_none(decord, path, out_size, prefix)
    if frames is None:
        raise CorruptVideoError(f"truncated or damaged stream: {_short(first_error)}")
    return num_frames, plans, prefix, frames


def _batch_or_none(decord, path, out_size, indices):
    try:
        return _read_batch(decord, path, out_size, indices)
    except (decord.DECORDError, CorruptVideoError):
        return None


def _read_batch(decord, path: str, out_size: tuple[int, int], indices: np.ndarray) -> np.ndarray:
    """uint8 [F, H', W', 3] with H' >= out_h, W' >= out_w: the frames ``indices`` (sorted) in one call."""
    width, height = out_size
    try:
        return _open(decord, path, width=width, height=height).get_batch(indices.tolist()).asnumpy()
    except decord.DECORDError as exc:
        if "must exactly match" not in str(exc):
            raise
    # decord miscopies FFmpeg's output at a few widths (48 and 72 px seen); one
    # pixel wider avoids that and the centre crop absorbs the extra column.
    return _open(decord, path, width=width + 1, height=height).get_batch(indices.tolist()).asnumpy()


def _open(decord, path: str, width: int, height: int):
    """A decord VideoReader (one decoding thread: parallelism comes from worker processes)."""
    try:
        return decord.VideoReader(path, num_threads=1, width=width, height=height)
    except (decord.DECORDError, RuntimeError, AssertionError) as exc:
        raise CorruptVideoError(_open_failure(path, exc)) from None


def _open_failure(path: str, exc: BaseException) -> str:
    text = str(exc)
    if "video stream" in text:
        return "no video stream"
    if "Invalid frame count" in text:
        return "no video frames"
    if text.startswith("Error reading"):  # FFmpeg could not open the container
        if _looks_like_container(path):
            return "truncated or damaged file (container header present, but unreadable)"
        return "not a video or unsupported format"
    return f"truncated or damaged stream: {_short(exc)}"


def _looks_like_container(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _CONTAINER_MAGIC)


def _short(exc: BaseException) -> str:
    """decord's message without its timestamp, source location and 'Check failed' noise, on one line."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", text)
    text = re.sub(r"^\[[^\]]*\] ?", "", text)  # decord repeats the file path
    text = re.sub(r"^Check failed: .*? (?=[A-Z][a-z])", "", text)
    text = text.split("and `DECORD_")[0].strip()  # advice about decord environment variables
    return text[:160] or type(exc).__name__
