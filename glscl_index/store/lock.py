"""One writer at a time: an flock on ``writer.lock``; the kernel releases it if the writer dies (even SIGKILL)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import TextIO

from glscl_index.errors import IndexLockedError, IndexPathError


def make_index_dirs(root: Path, *names: str) -> None:
    """Create ``root`` and its subfolders ``names``; a file in the way or a read-only place is an IndexPathError."""
    paths = [root, *(root / name for name in names)]
    try:
        for path in paths:
            path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unusable_index_dir(root, exc) from exc
    # An existing folder on a read-only mount (or not ours) would otherwise fail only at the first commit.
    for path in paths:
        if not os.access(path, os.W_OK | os.X_OK):
            raise unusable_index_dir(root, OSError(errno.EACCES, os.strerror(errno.EACCES), str(path)))


def unusable_index_dir(root: Path, exc: OSError) -> IndexPathError:
    """The one-line error for an OSError met while creating or locking the index folder ``root``."""
    blocker = next((p for p in [root, *root.parents] if p.exists() and not p.is_dir()), None)
    if blocker is not None or exc.errno in (errno.ENOTDIR, errno.EEXIST):
        where = f" ({blocker} is a file)" if blocker is not None and blocker != root else ""
        return IndexPathError(f"--index {root} is a file, not an index folder{where}; pass a folder with --index")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return IndexPathError(
            f"cannot write to the index folder {root} (read-only? {exc.strerror}); pass a writable folder with --index"
        )
    return IndexPathError(f"cannot create the index folder {root}: {exc.strerror or exc}")


class WriterLock:
    def __init__(self, root: Path):
        self.path = root / "writer.lock"
        self.handle: TextIO | None = None

    def acquire(self) -> None:
        try:
            handle = open(self.path, "a+")
        except OSError as exc:
            raise unusable_index_dir(self.path.parent, exc) from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise IndexLockedError(
                f"another glscl index run (pid {holder}) is writing {self.path.parent}; wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
