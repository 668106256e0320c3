"""How decoding worker processes are limited: how many, and the time and memory one file may take.

Plain configuration, apart from the pool in ``workers.py`` (which re-exports it), so that the CLI can
show the defaults without importing the decoder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from glscl_index.errors import InvalidOptionError

# Sampled frames (224 px, 1 fps) one core decodes per second from 640x360 MPEG-4 clips at 30 fps: 100-160
# measured by benchmarks/engine_throughput.py and index_throughput.py (docs/scale.md), the low end taken.
# What `--workers auto` assumes of a core next to a GPU (1080p H.264 decodes slower: more workers, not fewer).
DECODE_FRAMES_PER_CORE_S = 100.0


def auto_decode_workers(cores: int, model_frames_per_s: float, decode_frames_per_core_s: float) -> int:
    """Decoding workers that keep a GPU model fed: its rate over one core's, bounded by the cores but one (the
    process that feeds the GPU and writes the index keeps one), at least 1."""
    wanted = math.ceil(model_frames_per_s / max(decode_frames_per_core_s, 1e-9))
    return max(1, min(wanted, cores - 1))


def _default_workers() -> int:
    # One core is left for the process that embeds what the workers decode.
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass(frozen=True)
class DecodeConfig:
    """Worker pool limits: ``timeout_s`` seconds per file, ``memory_limit_mb`` MiB of address space per worker."""

    workers: int = field(default_factory=_default_workers)
    timeout_s: float = 120.0
    memory_limit_mb: int = 4096
    max_in_flight: int = 0  # files submitted ahead of the consumer; 0 = 2 * workers

    def __post_init__(self) -> None:
        # Checked here, before a pool or an index folder exists; messages name the `glscl index` options.
        if self.workers < 1:
            raise InvalidOptionError(f"--workers must be at least 1 (got {self.workers})")
        if not self.timeout_s > 0:
            raise InvalidOptionError(f"--timeout must be a positive number of seconds (got {self.timeout_s:g})")
        if self.memory_limit_mb < 1:
            # A limit of 0 MiB would fail every file; there is no "unlimited" value.
            raise InvalidOptionError(f"--memory-limit must be at least 1 MiB (got {self.memory_limit_mb})")
        if self.max_in_flight < 0:
            raise InvalidOptionError(f"max_in_flight must be 0 (automatic) or more (got {self.max_in_flight})")

    @property
    def in_flight(self) -> int:
        """Files submitted ahead: enough to keep every worker busy while the consumer handles one result."""
        return self.max_in_flight if self.max_in_flight > 0 else 2 * self.workers
