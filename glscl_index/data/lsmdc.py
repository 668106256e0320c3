"""LSMDC (Large Scale Movie Description Challenge) text-video retrieval.

``annotations`` is a directory with (or one of) the tab-separated files
LSMDC16_annos_training.csv, LSMDC16_annos_val.csv and
LSMDC16_challenge_1000_publictect.csv (the 1000-clip test split). Each line has
six fields: clip id, start, end, aligned start, aligned end, sentence; no header.
Clips are already cut from the movies, so the timestamps (movie time) are not
kept: start_s/end_s are None. A clip's video is ``video_root/<clip_id>.avi``
(or another common extension), or inside its movie folder,
``video_root/<movie>/<clip_id>.avi`` with movie = the clip id up to its last ``_``.
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.data.files import annotation_file, read_lines
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split

SPLIT_FILES = {
    "train": "LSMDC16_annos_training.csv",
    "val": "LSMDC16_annos_val.csv",
    "test": "LSMDC16_challenge_1000_publictect.csv",
}
FIELDS = 6


def read_lsmdc(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    path = annotation_file(annotations, split, SPLIT_FILES, "lsmdc")
    sentences: dict[str, list[str]] = {}
    malformed: list[str] = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != FIELDS or not fields[0].strip() or not fields[5].strip():
            malformed.append(f"{path.name}:{number}: expected {FIELDS} tab-separated fields")
            continue
        sentences.setdefault(fields[0].strip(), []).append(fields[5].strip())
    entries = [
        Annotation(clip_id, (clip_id, f"{clip_id.rsplit('_', 1)[0]}/{clip_id}"), tuple(texts))
        for clip_id, texts in sentences.items()
    ]
    return build_split(
        f"lsmdc/{split}", entries, Path(video_root), malformed=malformed, skip_missing=skip_missing
    )
