"""Locating and reading annotation files, with every failure a DatasetError."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from glscl_index.errors import DatasetError


def annotation_file(annotations: Path, split: str, files: dict[str, str], dataset: str) -> Path:
    """The annotation file of ``split``: ``annotations`` itself when it is a file,
    else ``annotations / files[split]``."""
    annotations = Path(annotations)
    if split not in files:
        raise DatasetError(f"{dataset}: unknown split {split!r} (known: {', '.join(files)})")
    path = annotations if annotations.is_file() else annotations / files[split]
    if not path.is_file():
        raise DatasetError(f"{dataset} {split}: annotation file not found: {path}")
    return path


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read JSON annotations {path}: {error}") from error


def read_lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read annotations {path}: {error}") from error


def read_csv(path: Path, required: tuple[str, ...], delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV file with a header naming at least ``required`` columns."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            columns = reader.fieldnames or []
            absent = [c for c in required if c not in columns]
            if absent:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(absent)} (has {', '.join(columns)})"
                )
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read CSV annotations {path}: {error}") from error
