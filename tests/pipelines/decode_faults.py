"""Decode functions that misbehave on purpose, for worker-isolation tests (module level: picklable)."""

import os
import signal
import time

from glscl_index.errors import CorruptVideoError
from glscl_index.video.decode import decode_video


def crash_or_hang(path, sampling):
    name = os.path.basename(path)
    if "crash" in name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in name:
        time.sleep(3600)
    return decode_video(path, sampling)


def allocate_too_much(path, sampling):
    blob = bytearray(8 << 30)  # 8 GiB: over the worker's memory limit
    return blob


def must_not_decode(path, sampling):
    raise AssertionError(f"{path} was decoded again")


def log_decodes(log_path, path, sampling):
    """Append ``path`` to ``log_path``, then decode; bind ``log_path`` with functools.partial (picklable)."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(path + "\n")
    return decode_video(path, sampling)


def old_decoder(path, sampling):
    """A decoder that cannot read anything, like an outdated decord build meeting a newer codec."""
    raise CorruptVideoError("unsupported codec")


def decode_then_touch(marker, name, path, sampling):
    """Decode, then create ``marker`` if the file is called ``name`` (bind both with functools.partial)."""
    video = decode_video(path, sampling)
    if os.path.basename(path) == name:
        open(marker, "w").close()
    return video
