"""Finding video files: folders recursively, symlinks followed once, hidden and excluded paths skipped."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mkv .webm .mov .avi .mpg .mpeg .wmv .flv .ts .mts .m2ts .3gp .ogv .vob".split()
)
SAMPLE_BYTES = 1 << 20  # per content_hash sample


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute, symlinks resolved: a file reached through several links is one file
    size: int  # bytes
    mtime_ns: int


@dataclass(frozen=True)
class ScanProblem:
    path: str
    reason: str  # one line: "dangling symlink", "permission denied", ...


@dataclass(frozen=True)
class RootScan:
    """What one scanned root gave: its real path and whether it could be read at all."""

    path: str  # absolute, as given
    real_path: str  # symlinks resolved (as far as they go when the target is missing)
    state: str  # "ok" | "absent" (no such path: an unmounted drive?) | "unreadable"
    files: int  # video files found under it
    reason: str = ""  # why it is absent or unreadable, one line


@dataclass
class ScanResult:
    files: list[SourceFile] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    roots: list[RootScan] = field(default_factory=list)


def scan_paths(paths: Sequence[str | Path], exclude: Sequence[str] = (), include_hidden: bool = False) -> ScanResult:
    """Video files named by or found under ``paths``, sorted by path; what cannot be read is a ScanProblem.

    Folders are walked recursively, following symlinks but entering each real
    folder once (no loops). Inside folders only ``VIDEO_EXTENSIONS`` count and
    names starting with "." are skipped unless ``include_hidden``; an explicitly
    named file is always taken, whatever its extension (decoding judges it).
    ``exclude`` holds fnmatch globs tried on the path relative to the scanned
    folder and on the name ("*.tmp", "raw/*", "drafts").
    """
    found: dict[str, SourceFile] = {}
    problems: list[ScanProblem] = []
    visited: set[str] = set()
    given_roots = [(os.path.abspath(given), os.path.realpath(given)) for given in paths]
    states: list[tuple[str, str]] = []
    for root, _ in given_roots:
        if not os.path.exists(root):
            states.append(("absent", "dangling symlink" if os.path.islink(root) else "no such file or directory"))
            continue
        if os.path.isdir(root):
            _walk(root, root, exclude, include_hidden, visited, found, problems)
            unreadable = next((p.reason for p in problems if p.path == root), "")
            states.append(("unreadable", unreadable) if unreadable else ("ok", ""))
        else:
            _add(root, found, problems)
            states.append(("ok", ""))
    roots = [
        RootScan(root, real, state, sum(1 for path in found if is_under(path, real)), reason)
        for (root, real), (state, reason) in zip(given_roots, states, strict=False)
    ]
    return ScanResult(sorted(found.values(), key=lambda f: f.path), problems, roots)


def is_under(path: str, root: str) -> bool:
    """``path`` is ``root`` or inside it (plain string test on absolute paths)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _excluded(path: str, root: str, patterns: Sequence[str]) -> bool:
    relative = os.path.relpath(path, root)
    name = os.path.basename(path)
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _walk(
    directory: str, root: str, exclude: Sequence[str], include_hidden: bool,
    visited: set[str], found: dict[str, SourceFile], problems: list[ScanProblem],
) -> None:
    real = os.path.realpath(directory)
    if real in visited:
        return  # a symlink loop or a folder reached twice
    visited.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        problems.append(ScanProblem(directory, _reason(exc)))
        return
    for entry in entries:
        if (entry.name.startswith(".") and not include_hidden) or _excluded(entry.path, root, exclude):
            continue
        if entry.is_symlink() and not os.path.exists(entry.path):
            if os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS:
                problems.append(ScanProblem(entry.path, "dangling symlink"))
            continue
        if entry.is_dir():
            _walk(entry.path, root, exclude, include_hidden, visited, found, problems)
        elif os.path.splitext(entry.name)[1].lower() in VIDEO_EXTENSIONS:
            _add(entry.path, found, problems)


def _add(path: str, found: dict, problems: list) -> None:
    try:
        info = os.stat(path)
    except OSError as exc:
        reason = "dangling symlink" if os.path.islink(path) else _reason(exc)
        problems.append(ScanProblem(path, reason))
        return
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device named *.mp4 would block the decoder forever.
        problems.append(ScanProblem(path, "not a regular file"))
        return
    if not os.access(path, os.R_OK):
        problems.append(ScanProblem(path, "permission denied"))
        return
    real = os.path.realpath(path)
    found[real] = SourceFile(real, info.st_size, info.st_mtime_ns)


def _reason(exc: OSError) -> str:
    """'permission denied', 'no such file or directory', ... (the OS message, lower case)."""
    return (exc.strerror or type(exc).__name__).lower()


def content_hash(path: str | Path) -> str:
    """blake2b of the size and three 1 MiB samples (start, middle, end).

    Hashing multi-GB videos in full would dominate a re-index; size plus
    samples tells files apart in practice and recognises a moved file.
    """
    digest = hashlib.blake2b(digest_size=16)
    size = os.path.getsize(path)
    digest.update(str(size).encode())
    with open(path, "rb") as handle:
        if size <= 3 * SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            for offset in (0, size // 2 - SAMPLE_BYTES // 2, size - SAMPLE_BYTES):
                handle.seek(offset)
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()
