"""How decoding worker processes are limited: how many, and the time and memory one file may take.

Plain configuration, apart from the pool in ``workers.py`` (which re-exports it), so that the CLI can
show the defaults without importing the decoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from glscl_index.errors import InvalidOptionError


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
