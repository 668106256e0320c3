"""Generate real, tiny video files with PyAV for tests (deterministic content).

``make_clip`` draws a square of one colour moving left to right over a plain
background (or a solid frame), so a test can check colour and position after
decoding. Every clip is a few seconds at <= 128 px: the whole suite stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

PATTERNS = ("moving_square", "solid")


def default_codec() -> str:
    """H.264 when this PyAV build can encode it, else MPEG-4 part 2 (always built in)."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def has_encoder(codec: str) -> bool:
    return codec in av.codecs_available


def square_frame(
    index: int, count: int, size: tuple[int, int], color: tuple[int, int, int],
    background: tuple[int, int, int] = (20, 20, 20), pattern: str = "moving_square",
) -> np.ndarray:
    """Frame ``index`` of ``count``: uint8 [H, W, 3] RGB; the square's side is a third of the short side."""
    width, height = size
    image = np.empty((height, width, 3), dtype=np.uint8)
    if pattern == "solid":
        image[:] = color
        return image
    if pattern != "moving_square":
        raise ValueError(f"unknown pattern {pattern!r}; one of {PATTERNS}")
    image[:] = background
    side = square_side(size)
    x = square_left(index, count, size)
    y = (height - side) // 2
    image[y : y + side, x : x + side] = color
    return image


def square_side(size: tuple[int, int]) -> int:
    return max(4, min(size) // 3)


def square_left(index: int, count: int, size: tuple[int, int]) -> int:
    """Left edge (pixels) of the square in frame ``index``: from 0 to width - side, linearly."""
    return int((size[0] - square_side(size)) * index / max(1, count - 1))


def make_clip(
    path: str | Path, *, seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (96, 64),
    codec: str = "mpeg4", color: tuple[int, int, int] = (220, 30, 30),
    background: tuple[int, int, int] = (20, 20, 20), pattern: str = "moving_square", frames: int | None = None,
) -> Path:
    """Write a clip of ``frames`` (default ``seconds * fps``) frames; ``size`` is (width, height) pixels."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = frames if frames is not None else max(1, int(round(seconds * fps)))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = _pix_fmt(codec, size)
        for i in range(count):
            image = square_frame(i, count, size, color, background, pattern)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _pix_fmt(codec: str, size: tuple[int, int]) -> str:
    if codec == "mjpeg":
        return "yuvj420p"
    # libx264 refuses odd dimensions in 4:2:0; 4:4:4 has no such constraint.
    if codec == "libx264" and (size[0] % 2 or size[1] % 2):
        return "yuv444p"
    return "yuv420p"


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """An AAC file with one audio stream and no video stream."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=rate)
        tone = np.sin(np.linspace(0, 2 * np.pi * 440 * seconds, int(rate * seconds))).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_broken_files(directory: str | Path) -> dict[str, Path]:
    """Files that must fail to decode, by kind.

    zero_byte, truncated (first 30% of a good MP4, so no index), random_bytes,
    text (a text file named .mp4), audio_only (.m4a with one AAC stream),
    garbage_after_header (a real MP4 header followed by noise).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    good = make_clip(directory / ".whole.mp4", seconds=3)
    data = good.read_bytes()
    good.unlink()
    noise = np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    files = {
        "zero_byte": directory / "empty.mp4",
        "truncated": directory / "truncated.mp4",
        "random_bytes": directory / "noise.mp4",
        "text": directory / "notes-named.mp4",
        "audio_only": directory / "sound.m4a",
        "garbage_after_header": directory / "header-only.mp4",
    }
    files["zero_byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) * 3 // 10])
    files["random_bytes"].write_bytes(noise)
    files["text"].write_text("this is not a video\n" * 50)
    make_audio_only(files["audio_only"])
    files["garbage_after_header"].write_bytes(data[:32] + noise)
    return files


def make_messy_folder(root: str | Path) -> dict:
    """A folder like a user's: mixed containers/codecs, nested and non-ASCII paths, odd sizes, junk.

    Returns {"good": [Path] (must scan and decode), "sizes": {Path: (w, h)},
    "colors": {Path: (r, g, b)}, "broken": [Path] (scan finds them, decoding
    fails, plus the dangling symlink), "broken_kinds": {kind: Path},
    "hidden": [Path] (found only with include_hidden), "ignored": [Path]
    (not videos), "dangling": Path (a ScanProblem)}.
    """
    root = Path(root)
    specs = [
        ("a.mp4", default_codec(), (96, 64), (220, 30, 30)),
        ("nested/deeper/b.mkv", "mpeg4", (96, 64), (30, 220, 30)),
        ("día/vidéo ünï.avi", "mjpeg", (96, 64), (30, 30, 220)),
        ("portrait.mov", "mpeg4", (64, 112), (220, 220, 30)),
        ("odd.mp4", "mpeg4", (97, 55), (220, 30, 220)),
    ]
    if has_encoder("libvpx"):
        specs.append(("web/c.webm", "libvpx", (80, 48), (30, 220, 220)))
    good, sizes, colors = [], {}, {}
    for name, codec, size, color in specs:
        path = make_clip(root / name, codec=codec, size=size, color=color, seconds=2)
        good.append(path)
        sizes[path], colors[path] = size, color
    one = make_clip(root / "one-frame.mp4", frames=1, color=(240, 240, 240))
    good.append(one)
    sizes[one], colors[one] = (96, 64), (240, 240, 240)
    kinds = make_broken_files(root / "broken")
    hidden = [make_clip(root / ".hidden.mp4", seconds=1), make_clip(root / ".hidden-dir" / "c.mp4", seconds=1)]
    notes = root / "notes.txt"
    notes.write_text("not a video")
    dangling = root / "dangling.mp4"
    os.symlink(root / "missing-target.mp4", dangling)
    return {
        "good": good, "sizes": sizes, "colors": colors,
        "broken": [*kinds.values(), dangling], "broken_kinds": kinds,
        "hidden": hidden, "ignored": [notes], "dangling": dangling,
    }
