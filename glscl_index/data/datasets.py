"""One entry point for every supported dataset: ``load_dataset(name, ...)``.

Each reader parses its benchmark's usual annotation layout (see its module
docstring), finds every video under ``video_root`` and returns a DatasetSplit.
A missing video or a malformed annotation row is a DatasetError before any
work starts; with ``skip_missing=True`` they are left out and counted in
``DatasetSplit.skipped``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from glscl_index.data.activitynet import read_activitynet
from glscl_index.data.didemo import read_didemo
from glscl_index.data.generic import read_generic
from glscl_index.data.lsmdc import read_lsmdc
from glscl_index.data.msrvtt import read_msrvtt
from glscl_index.data.msvd import read_msvd
from glscl_index.data.records import Clip, DatasetSplit
from glscl_index.errors import DatasetError

Reader = Callable[[Path, Path, str, bool], DatasetSplit]

READERS: dict[str, Reader] = {
    "msrvtt": read_msrvtt,
    "msvd": read_msvd,
    "didemo": read_didemo,
    "lsmdc": read_lsmdc,
    "activitynet": read_activitynet,
    "generic": read_generic,
}


def load_dataset(
    name: str, annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    """Read split ``split`` of dataset ``name`` (one of READERS).

    annotations: the dataset's annotation directory (or, where one file holds
    the split, that file; for "generic", always the file).
    video_root: the folder the videos are looked up in.
    """
    reader = READERS.get(name.lower())
    if reader is None:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(READERS)})")
    return reader(Path(annotations), Path(video_root), split, skip_missing)


__all__ = ["Clip", "DatasetSplit", "READERS", "load_dataset"]
