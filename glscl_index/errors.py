"""Typed errors of the library.

The CLI turns each of these into one line on stderr and a non-zero exit code
(see ``cli/errors.py``); nothing else in the library prints.
"""


class GLSCLError(Exception):
    """Base class: an error the user can act on, with a one-line message."""

    exit_code = 1


class CheckpointError(GLSCLError):
    """A checkpoint directory or weights file is missing, truncated or foreign."""

    exit_code = 3


class WeightsUnavailableError(CheckpointError):
    """Pretrained weights could not be fetched (offline) or found on disk."""


class DeviceError(GLSCLError):
    """The device asked for is not there (``--device cuda`` without a CUDA GPU)."""

    exit_code = 2


class CorruptVideoError(GLSCLError):
    """A video file could not be decoded (broken, truncated, not a video, no video stream)."""

    exit_code = 4


class DecodeTimeoutError(CorruptVideoError):
    """Decoding one file took longer than the per-file limit."""


class DecodeCrashError(CorruptVideoError):
    """The decoding worker died (signal, abort) while decoding one file."""


class IndexNotFoundError(GLSCLError):
    """No index exists at the given directory."""

    exit_code = 5


class IndexCorruptError(GLSCLError):
    """The manifest or a shard of an index is damaged."""

    exit_code = 6


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message cut to its first line (``limit`` characters), or its type when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


def repair_hint(root) -> str:
    """What every IndexCorruptError message ends with: the command that repairs the index at ``root``."""
    return f"; run `glscl check --repair --index {root}`"


class IndexMismatchError(GLSCLError):
    """The index was written by another model (fingerprint differs)."""

    exit_code = 7


class IndexLockedError(GLSCLError):
    """Another writer holds the index lock."""

    exit_code = 8


class InvalidOptionError(GLSCLError, ValueError):
    """An option or config value is out of range or contradicts another (checked before anything is written)."""

    exit_code = 2


class IndexPathError(GLSCLError):
    """The index location is unusable: a file is in the way, or the folder cannot be written (read-only)."""

    exit_code = 2


class EmptyQueryError(GLSCLError):
    """The query text is empty or whitespace only."""

    exit_code = 2


class DatasetError(GLSCLError):
    """A dataset annotation file is missing, malformed or names missing videos."""

    exit_code = 9


class MissingExtraError(GLSCLError):
    """An option needs an optional dependency that is not installed (``--engine ray`` without Ray)."""

    exit_code = 2


class ClusterUnavailableError(GLSCLError):
    """The Ray cluster ``--ray-address`` names cannot be joined (none running there, refused, timed out)."""

    exit_code = 2
