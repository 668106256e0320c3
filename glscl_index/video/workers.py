"""Decoding isolated in worker processes: a crash, hang or memory blow-up fails one file, not the run.

decord aborts, segfaults, hangs or allocates tens of GB on some real files, so
it never runs in the indexing process. pebble's ProcessPool replaces a worker
that died and kills one that overran its per-task timeout; this module only
maps those outcomes to typed errors and bounds how far ahead files are
submitted.
"""

from __future__ import annotations

import contextlib
import multiprocessing.context
import os
import resource
import signal
import sys
import threading
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from pebble import ProcessExpired, ProcessPool

from glscl_index.errors import CorruptVideoError, DecodeCrashError, DecodeTimeoutError
from glscl_index.video.decode import DecodedVideo, decode_video
from glscl_index.video.decode_config import DecodeConfig
from glscl_index.video.sample import SamplingConfig

DecodeResult = DecodedVideo | CorruptVideoError


def _init_worker(limit_mb: int) -> None:
    # FFmpeg and decord write their complaints straight to fd 2; the reason is reported per file instead.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    # Load the decoder before the limit: the limit is for what decoding allocates, not for mapping libraries.
    import decord  # noqa: F401, PLC0415

    if limit_mb > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _address_space_bytes() + limit_mb * (1 << 20)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space_bytes() -> int:
    """Virtual memory the worker already maps (so the limit counts only what decoding adds)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _decode_guarded(decode_fn, path: str, sampling: SamplingConfig) -> DecodedVideo:
    """Runs in the worker: every failure leaves as a picklable one-line CorruptVideoError."""
    try:
        return decode_fn(path, sampling)
    except CorruptVideoError:
        raise
    except MemoryError:
        raise CorruptVideoError("decoding needed more memory than the per-worker limit") from None
    except Exception as exc:  # a decoder can fail in any way; the file is reported, the run goes on
        message = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CorruptVideoError(f"decoding failed: {message}") from None


# Serialises _parent_main_hidden: pebble starts workers from the caller's thread
# and replaces dead ones from its manager thread.
_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def _parent_main_hidden():
    """``sys.modules['__main__']`` is a bare module for the duration (a few ms: one process launch).

    multiprocessing tells every child to re-run the parent's ``__main__`` so
    that pickled ``__main__.something`` resolves there. For ``glscl`` or a
    script that means importing torch, open_clip and the model code again in
    each decoding worker: seconds of CPU before the first frame (on a 2-core
    machine, time the model waits), ~300 MB per worker, paid again for every
    worker that replaces a crashed or timed-out one. The forkserver was meant to
    import ``__main__`` once for all children, which CPython < 3.13.1 never
    did (gh-126631). Workers only run functions from importable modules, so a
    bare ``__main__`` (no ``__file__``, no ``__spec__``) makes the child skip it.
    """
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _DecodeWorkerProcess(multiprocessing.context.ForkServerProcess):
    """A forkserver child that does not re-import the parent's ``__main__`` (see ``_parent_main_hidden``)."""

    @staticmethod
    def _Popen(process_obj):
        with _parent_main_hidden():
            return multiprocessing.context.ForkServerProcess._Popen(process_obj)


class _DecodeWorkerContext(multiprocessing.context.ForkServerContext):
    Process = _DecodeWorkerProcess


class DecodePool:
    """Decodes files in worker processes; use as a context manager.

    ``decode_fn(path, sampling) -> DecodedVideo`` must be a module-level
    function of an importable module, not of the ``__main__`` script (it is
    pickled to the workers, which do not import ``__main__``).
    """

    def __init__(
        self,
        decode_cfg: DecodeConfig,
        sampling: SamplingConfig,
        decode_fn: Callable[[str, SamplingConfig], DecodedVideo] = decode_video,
    ):
        self.cfg = decode_cfg
        self.sampling = sampling
        self.decode_fn = decode_fn
        self._pool: ProcessPool | None = None

    def __enter__(self) -> "DecodePool":
        # forkserver, not fork: the parent has torch (and maybe CUDA) loaded with
        # its thread pools, and forking a threaded process can deadlock the child.
        # forkserver workers fork from a clean server process, which is cheaper
        # than spawn when pebble replaces a crashed or timed-out worker.
        self._pool = ProcessPool(
            max_workers=self.cfg.workers,
            initializer=_init_worker,
            initargs=(self.cfg.memory_limit_mb,),
            context=_DecodeWorkerContext(),
        )
        return self

    def __exit__(self, *exc_info) -> None:
        pool = self._active()
        pool.stop()
        pool.join()

    def _active(self) -> ProcessPool:
        if self._pool is None:
            raise RuntimeError("DecodePool used outside its 'with' block")
        return self._pool

    def imap(self, paths: Iterable[str]) -> Iterator[tuple[str, DecodeResult]]:
        """``(path, DecodedVideo | CorruptVideoError)`` in submission order, at most ``in_flight`` files ahead.

        Failures are DecodeCrashError (worker killed), DecodeTimeoutError
        (over ``timeout_s``) or CorruptVideoError (anything decode_fn raised).
        """
        self._active()
        pending: deque = deque()
        try:
            for path in paths:
                pending.append((path, self._submit(path)))
                if len(pending) >= self.cfg.in_flight:
                    yield self._result(*pending.popleft())
            while pending:
                yield self._result(*pending.popleft())
        finally:
            # The consumer stopped early: do not decode what nobody will read.
            for _, future in pending:
                future.cancel()

    def _submit(self, path: str):
        return self._active().schedule(
            _decode_guarded, args=(self.decode_fn, path, self.sampling), timeout=self.cfg.timeout_s
        )

    def _result(self, path: str, future) -> tuple[str, DecodeResult]:
        try:
            return path, future.result()
        except CorruptVideoError as exc:
            return path, exc
        except FutureTimeout:
            return path, DecodeTimeoutError(f"decoding took longer than {self.cfg.timeout_s:g} s")
        except ProcessExpired as exc:
            return path, DecodeCrashError(f"decoder crashed ({_exit_reason(exc.exitcode)})")
        except (BrokenProcessPool, CancelledError) as exc:
            return path, DecodeCrashError(f"decoder worker unavailable: {exc or type(exc).__name__}")
        except Exception as exc:  # e.g. a result that could not be sent back from the worker
            return path, CorruptVideoError(f"decoding failed: {' '.join(str(exc).split())[:160]}")


def _exit_reason(exitcode: int | None) -> str:
    """'SIGSEGV' for a worker killed by a signal (negative exit code), else 'exit code N'."""
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"
