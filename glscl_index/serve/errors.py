"""The one place where library errors become HTTP statuses; the body is always ``{"error": message}``."""

from __future__ import annotations

from glscl_index.errors import (
    CheckpointError,
    CorruptVideoError,
    EmptyQueryError,
    GLSCLError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexPathError,
    InvalidOptionError,
)

# First match wins (subclasses before their bases).
STATUS_BY_ERROR: tuple[tuple[type[GLSCLError], int], ...] = (
    (EmptyQueryError, 400),
    (InvalidOptionError, 400),
    (IndexMismatchError, 409),  # the index was rebuilt with another model: restart `glscl serve`
    (IndexNotFoundError, 503),  # no index yet: a scheduled `glscl index` may create it
    (IndexCorruptError, 503),  # the message names `glscl check --repair`
    (IndexPathError, 503),
    (CheckpointError, 503),
    (CorruptVideoError, 422),  # a thumbnail could not be cut from a file that changed since it was indexed
)


def status_of(error: GLSCLError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


def message_of(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
