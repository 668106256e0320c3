"""Thumbnails of the best-matching frames, cut on demand from the source file and cached on disk.

A video id names content (copies share it), so a thumbnail keyed by (video id, time, width) never goes
stale. The cache is bounded: beyond ``max_files`` the least recently written tenth is deleted.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import numpy as np

from glscl_index.errors import CorruptVideoError

THUMBNAIL_WIDTH = 320
TIME_STEP_S = 0.1  # requested times are rounded to this, so the cache cannot be filled with near-duplicates
JPEG_QUALITY = 85


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/glscl/thumbnails, else ~/.cache/glscl/thumbnails."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "glscl" / "thumbnails"


def cut_frame(path: str, time_s: float) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB: the frame shown at ``time_s`` seconds (clamped to the video), full size."""
    import decord  # the serving process only: decoding is not needed to import the app

    try:
        reader = decord.VideoReader(path, num_threads=1)
        fps = float(reader.get_avg_fps()) or 1.0
        index = min(max(int(round(time_s * fps)), 0), len(reader) - 1)
        return reader[index].asnumpy()
    except (decord.DECORDError, RuntimeError, AssertionError, IndexError) as exc:
        raise CorruptVideoError(f"cannot cut a frame from {path}: {' '.join(str(exc).split())[:160]}") from None


def encode_jpeg(frame: np.ndarray, width: int = THUMBNAIL_WIDTH) -> bytes:
    """JPEG bytes of ``frame`` scaled to at most ``width`` pixels wide (aspect ratio kept)."""
    from PIL import Image

    image = Image.fromarray(frame)
    if image.width > width:
        image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


class ThumbnailCache:
    """JPEG thumbnails under ``directory``, at most ``max_files`` of them."""

    def __init__(self, directory: str | Path, max_files: int = 5000, width: int = THUMBNAIL_WIDTH):
        self.directory = Path(directory)
        self.max_files = max_files
        self.width = width
        self._lock = threading.Lock()
        self._count: int | None = None

    def get(self, video_id: str, path: str, time_s: float) -> bytes:
        """The thumbnail of ``video_id`` (read from ``path``) at ``time_s``, from the cache or cut now."""
        time_s = round(max(time_s, 0.0) / TIME_STEP_S) * TIME_STEP_S
        key = hashlib.sha1(f"{video_id}\0{time_s:.1f}\0{self.width}".encode()).hexdigest()
        target = self.directory / key[:2] / f"{key}.jpg"
        try:
            return target.read_bytes()
        except FileNotFoundError:
            pass
        data = encode_jpeg(cut_frame(path, time_s), self.width)
        self._store(target, data)
        return data

    def _store(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)  # a concurrent reader sees the whole file or none
        with self._lock:
            if self._count is None:
                self._count = len(self._files())
            else:
                self._count += 1
            if self._count > self.max_files:
                self._prune()

    def _files(self) -> list[Path]:
        return list(self.directory.glob("*/*.jpg"))

    def _prune(self) -> None:
        files = []
        for file in self._files():
            try:
                files.append((file.stat().st_mtime_ns, file))
            except FileNotFoundError:
                continue
        files.sort()
        keep = self.max_files * 9 // 10
        for _, file in files[: max(0, len(files) - keep)]:
            file.unlink(missing_ok=True)
        self._count = min(len(files), keep)
