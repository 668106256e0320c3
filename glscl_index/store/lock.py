"""One writer at a time: an flock on ``writer.lock``; the kernel releases it if the writer dies (even SIGKILL)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from glscl_index.errors import IndexLockedError


class WriterLock:
    def __init__(self, root: Path):
        self.path = root / "writer.lock"
        self.handle = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")
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
