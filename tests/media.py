"""Generate real, tiny video files with PyAV for tests (deterministic content)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np


def make_clip(
    path: str | Path, *, seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (64, 48),
    codec: str = "mpeg4", color: tuple[int, int, int] = (220, 30, 30), background: tuple[int, int, int] = (20, 20, 20),
    frames: int | None = None,
) -> Path:
    """A square of ``color`` moving left to right over ``background``; size is (width, height)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    count = frames if frames is not None else max(1, int(seconds * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        side = max(4, min(width, height) // 3)
        for i in range(count):
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:] = background
            x = int((width - side) * i / max(1, count - 1))
            y = (height - side) // 2
            image[y : y + side, x : x + side] = color
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio_only(path: str | Path) -> Path:
    path = Path(path)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 8000), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_broken_files(directory: str | Path) -> dict[str, Path]:
    """Zero-byte, truncated, random bytes, text named .mp4, audio-only."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    good = make_clip(directory / ".whole.mp4", seconds=3)
    data = good.read_bytes()
    good.unlink()
    files = {
        "zero_byte": directory / "empty.mp4",
        "truncated": directory / "truncated.mp4",
        "random_bytes": directory / "noise.mp4",
        "text": directory / "notes-named.mp4",
        "audio_only": directory / "sound.m4a",
    }
    files["zero_byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["random_bytes"].write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    files["text"].write_text("this is not a video\n" * 50)
    make_audio_only(files["audio_only"])
    return files


def make_messy_folder(root: str | Path) -> dict[str, list[Path]]:
    """Several containers/codecs, nested and non-ASCII paths, portrait/odd sizes, a 1-frame clip, broken files."""
    root = Path(root)
    good = [
        make_clip(root / "a.mp4", codec="mpeg4", color=(220, 30, 30)),
        make_clip(root / "nested" / "deeper" / "b.mkv", codec="mpeg4", color=(30, 220, 30)),
        make_clip(root / "día" / "vidéo ünï.avi", codec="mjpeg", color=(30, 30, 220)),
        make_clip(root / "portrait.mov", size=(48, 80), color=(220, 220, 30)),
        make_clip(root / "odd.mp4", size=(98, 56), color=(220, 30, 220)),
        make_clip(root / "one-frame.mp4", frames=1, color=(30, 220, 220)),
    ]
    broken = list(make_broken_files(root / "broken").values())
    make_clip(root / ".hidden.mp4")
    make_clip(root / ".hidden-dir" / "c.mp4")
    (root / "notes.txt").write_text("not a video")
    os.symlink(root / "missing-target.mp4", root / "dangling.mp4")
    broken.append(root / "dangling.mp4")
    return {"good": good, "broken": broken}
