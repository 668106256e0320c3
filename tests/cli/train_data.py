"""A tiny captioned dataset for `glscl train` tests: four one-colour clips, two captions each (generic JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.media import make_clip
from tests.tiny import TINY_ARCH

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}
TINY = ["--model", TINY_ARCH, "--pretrained", ""]
FAST = ["--batch-size", "4", "--lr-new", "1e-3", "--lr-clip", "1e-3", "--workers", "1"]


def colour_dataset(root: Path) -> Path:
    """``root/videos/<colour>.mp4`` and ``root/captions.jsonl``; returns ``root``."""
    rows = []
    for name, rgb in COLOURS.items():
        make_clip(root / "videos" / f"{name}.mp4", seconds=2.0, fps=5, size=(64, 48), color=rgb)
        rows += [
            {"video": f"{name}.mp4", "caption": f"a {name} square"},
            {"video": f"{name}.mp4", "caption": f"{name} moving"},
        ]
    (root / "captions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def dataset_args(root: Path) -> list[str]:
    return ["-a", str(root / "captions.jsonl"), "-v", str(root / "videos")]
