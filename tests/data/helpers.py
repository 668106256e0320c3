"""Placeholder video files: the readers only check that a file exists."""

from __future__ import annotations

from pathlib import Path


def touch_videos(root: Path, names) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return root
