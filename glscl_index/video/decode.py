"""Decoding the sampled frames of one file with decord, at reduced resolution, vectorised."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from glscl_index.errors import CorruptVideoError
from glscl_index.video.sample import SamplingConfig, all_frame_indices, plan_units

MAX_OUTPUT_BYTES = 1 << 30  # decoded frames one file may produce


@dataclass
class DecodedUnit:
    segment_index: int
    start_s: float
    end_s: float
    timestamps_s: np.ndarray  # float32 [T_u] seconds
    frames: np.ndarray  # uint8 [T_u, S, S, 3] RGB


@dataclass
class DecodedVideo:
    path: str
    fps: float
    duration_s: float
    num_frames: int
    width: int
    height: int
    units: list[DecodedUnit]


def decode_video(path: str, cfg: SamplingConfig) -> DecodedVideo:
    """Decode the frames the sampling plan needs; any failure is a one-line CorruptVideoError."""
    import decord  # imported here so only decoding workers load it

    if os.path.getsize(path) == 0:
        raise CorruptVideoError("empty file (0 bytes)")
    try:
        probe = decord.VideoReader(path, num_threads=1)
        num_frames = len(probe)
        fps = float(probe.get_avg_fps())
        # One frame at full size gives the aspect ratio; the sampled frames are decoded small.
        height, width = probe[0].shape[:2]
        del probe
    except (decord.DECORDError, RuntimeError, IndexError) as exc:
        raise CorruptVideoError(_reason(exc)) from None
    if num_frames <= 0:
        raise CorruptVideoError("no video frames")
    if not math.isfinite(fps) or fps <= 0:
        fps = 25.0  # some containers omit the rate; frame times are then approximate
    plans = plan_units(num_frames, fps, cfg)
    indices = all_frame_indices(plans)
    size = cfg.image_size
    scale = size / min(width, height)
    out_w, out_h = max(size, round(width * scale)), max(size, round(height * scale))
    if len(indices) * out_w * out_h * 3 > MAX_OUTPUT_BYTES:
        raise CorruptVideoError(f"would decode {len(indices)} frames of {out_w}x{out_h}: over the memory bound")
    try:
        # decord scales inside ffmpeg (its default bilinear-family scaler; it exposes no bicubic switch).
        reader = decord.VideoReader(path, num_threads=1, width=out_w, height=out_h)
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except (decord.DECORDError, RuntimeError, IndexError) as exc:
        raise CorruptVideoError(f"truncated or damaged stream: {_first_line(exc)}") from None
    top, left = (frames.shape[1] - size) // 2, (frames.shape[2] - size) // 2
    frames = np.ascontiguousarray(frames[:, top : top + size, left : left + size])
    position = {int(f): i for i, f in enumerate(indices)}
    units = []
    for plan in plans:
        rows = np.array([position[int(f)] for f in plan.frame_indices])
        units.append(
            DecodedUnit(
                plan.segment_index, plan.start_s, plan.end_s,
                (plan.frame_indices / fps).astype(np.float32), frames[rows],
            )
        )
    return DecodedVideo(path, fps, num_frames / fps, num_frames, int(width), int(height), units)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0][:160] if lines else type(exc).__name__


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "cannot find video stream" in text or "video stream" in text.lower():
        return "no video stream"
    if "ERROR opening" in text or "Invalid data" in text or text.startswith("Error reading"):
        return "not a video, or a truncated or damaged file"
    return f"truncated or damaged stream: {_first_line(exc)}"
