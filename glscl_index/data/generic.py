"""Anyone's own captioned videos: one JSONL or CSV file.

Each row (a JSON object per line of a ``.jsonl`` file, or a CSV row under a
header) has
- ``video``: the file, relative to the video root or absolute (used as given,
  or with a common video extension appended when it has none);
- ``caption``: one caption;
- optionally ``start`` and ``end`` (seconds; either may be left out or empty)
  to caption a segment of the video;
- optionally ``split``: the row belongs to that split only. Rows without a
  split belong to every split; split ``"all"`` takes every row.
Rows with the same video, start and end are one clip with several captions
(in file order). The clip's video id is ``video`` as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from glscl_index.data.files import read_csv, read_lines
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split
from glscl_index.errors import DatasetError

ALL_SPLITS = "all"


def _rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, row) for each row: a dict, or whatever a bad JSON line holds."""
    if path.suffix.lower() == ".csv":
        return list(enumerate(read_csv(path, ("video", "caption")), start=2))
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        raise DatasetError(f"generic annotations must be .jsonl or .csv, got {path}")
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError:
            rows.append((number, None))
    return rows


def _seconds(value) -> float | None:
    if value is None or value == "":
        return None
    seconds = float(value)  # ValueError / TypeError: reported as a malformed row
    if not seconds >= 0:  # also rejects NaN
        raise ValueError(value)
    return seconds


def read_generic(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    path = Path(annotations)
    if not path.is_file():
        raise DatasetError(f"generic: annotation file not found: {path}")
    captions: dict[tuple[str, float | None, float | None], list[str]] = {}
    malformed: list[str] = []
    for number, row in _rows(path):
        try:
            video, caption = str(row["video"] or "").strip(), str(row["caption"] or "").strip()
            start, end = _seconds(row.get("start")), _seconds(row.get("end"))
            row_split = str(row.get("split") or "").strip()
        except (TypeError, KeyError, ValueError, AttributeError):
            malformed.append(f"{path.name}:{number}: expected video, caption[, start, end, split]")
            continue
        if not video or not caption or (start is not None and end is not None and end <= start):
            malformed.append(f"{path.name}:{number}: empty video/caption or end <= start")
            continue
        if split == ALL_SPLITS or not row_split or row_split == split:
            captions.setdefault((video, start, end), []).append(caption)
    entries = [
        Annotation(video, (video,), tuple(texts), start, end)
        for (video, start, end), texts in captions.items()
    ]
    return build_split(
        f"generic/{split}", entries, Path(video_root), malformed=malformed, skip_missing=skip_missing
    )
