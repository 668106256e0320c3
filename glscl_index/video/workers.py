"""Decoding isolated in worker processes (pebble): a crash, hang or memory blow-up fails one file, not the run."""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from pebble import ProcessExpired, ProcessPool

from glscl_index.errors import CorruptVideoError, DecodeCrashError, DecodeTimeoutError
from glscl_index.video.decode import DecodedVideo, decode_video
from glscl_index.video.sample import SamplingConfig


def _default_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class DecodeConfig:
    workers: int = field(default_factory=_default_workers)
    timeout_s: float = 120.0  # per file
    memory_limit_mb: int = 4096  # address space of one worker
    max_in_flight: int = 0  # files submitted ahead; 0 = 2 * workers


def _init_worker(limit_mb: int) -> None:
    # FFmpeg and decord write their complaints straight to fd 2; the reason is reported per file instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    # Load the decoder before the limit: the limit is for what decoding allocates, not for mapping libraries.
    import decord  # noqa: F401

    if limit_mb > 0:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        in_use = _address_space_bytes()
        limit = in_use + limit_mb * (1 << 20)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _address_space_bytes() -> int:
    """Virtual memory the worker already maps (so the limit counts only what decoding adds)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _decode_guarded(decode_fn, path: str, sampling: SamplingConfig):
    try:
        return decode_fn(path, sampling)
    except CorruptVideoError:
        raise
    except MemoryError:
        raise CorruptVideoError("decoding needed more memory than the per-worker limit") from None
    except Exception as exc:  # a decoder can fail in any way; the file is reported, the run goes on
        message = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CorruptVideoError(f"decoding failed: {message}") from None


class DecodePool:
    """Context manager; ``imap(paths)`` yields ``(path, DecodedVideo | CorruptVideoError)`` in order."""

    def __init__(
        self, decode_cfg: DecodeConfig, sampling: SamplingConfig,
        decode_fn: Callable[[str, SamplingConfig], DecodedVideo] = decode_video,
    ):
        self.cfg = decode_cfg
        self.sampling = sampling
        self.decode_fn = decode_fn
        self.pool: ProcessPool | None = None

    def __enter__(self) -> "DecodePool":
        # forkserver: workers never inherit the parent's torch threads or CUDA state.
        self.pool = ProcessPool(
            max_workers=self.cfg.workers,
            initializer=_init_worker,
            initargs=(self.cfg.memory_limit_mb,),
            context=multiprocessing.get_context("forkserver"),
        )
        return self

    def __exit__(self, *exc) -> None:
        self.pool.stop()
        self.pool.join()

    def imap(self, paths: Iterable[str]) -> Iterator[tuple[str, DecodedVideo | CorruptVideoError]]:
        ahead = self.cfg.max_in_flight or 2 * self.cfg.workers
        queue: deque = deque()
        for path in paths:
            queue.append((path, self._submit(path)))
            if len(queue) >= ahead:
                yield self._result(*queue.popleft())
        while queue:
            yield self._result(*queue.popleft())

    def _submit(self, path: str):
        return self.pool.schedule(
            _decode_guarded, args=(self.decode_fn, path, self.sampling), timeout=self.cfg.timeout_s
        )

    def _result(self, path: str, future) -> tuple[str, DecodedVideo | CorruptVideoError]:
        try:
            return path, future.result()
        except CorruptVideoError as exc:
            return path, exc
        except FutureTimeout:
            return path, DecodeTimeoutError(f"decoding took longer than {self.cfg.timeout_s:g} s")
        except ProcessExpired as exc:
            return path, DecodeCrashError(f"decoder crashed ({_signal_name(exc.exitcode)})")
        except BrokenProcessPool as exc:
            return path, DecodeCrashError(f"decoder worker could not start: {exc}")


def _signal_name(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"
