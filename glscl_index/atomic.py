"""Atomic file replacement: a file appears whole or not at all, and survives a crash once written.

Every file the library publishes (manifest, shards, catalog, FAISS index,
checkpoints, training caches) goes through ``atomic_write``: write a temporary
file beside the target, fsync it, rename it onto the target, fsync the folder
(without the last step the rename itself may be lost in a power cut).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success publish it onto ``path`` durably.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write`` for data already in memory."""
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
