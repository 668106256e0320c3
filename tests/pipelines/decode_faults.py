"""Decode functions that misbehave on purpose, for worker-isolation tests (module level: picklable)."""

import os
import signal
import time

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
