"""MSVD (YouTube2Text) from plain-text annotations; no pickle.

``annotations`` is a directory holding
- ``{split}_list.txt`` (train, val, test): one video id per line, as in
  CLIP4Clip-style code (ids like ``-4wsuPCjDBc_5_15``);
- the captions, the first present of:
  ``captions.csv`` (header ``video_id,caption``, one row per caption), or
  ``captions.txt`` / ``AllVideoDescriptions.txt`` (the original release's
  layout: ``video_id caption words...`` per line, ``#`` starts a comment).
CLIP4Clip's ``raw-captions.pkl`` maps id -> token lists; write it out as
captions.csv once rather than unpickling files from elsewhere.
Videos are ``video_root/<video_id>.avi`` (or another common extension).
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.data.files import annotation_file, read_csv, read_lines
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split
from glscl_index.errors import DatasetError

SPLIT_FILES = {"train": "train_list.txt", "val": "val_list.txt", "test": "test_list.txt"}
CAPTION_FILES = ("captions.csv", "captions.txt", "AllVideoDescriptions.txt")


def _read_captions(directory: Path) -> tuple[dict[str, list[str]], list[str]]:
    path = next((directory / f for f in CAPTION_FILES if (directory / f).is_file()), None)
    if path is None:
        raise DatasetError(f"msvd: no caption file ({' or '.join(CAPTION_FILES)}) in {directory}")
    if path.suffix == ".csv":
        rows = read_csv(path, ("video_id", "caption"))
        # numbered as file lines, the header being line 1
        pairs = [(n, row["video_id"], row["caption"]) for n, row in enumerate(rows, start=2)]
    else:
        pairs = []
        for number, line in enumerate(read_lines(path), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                video_id, _, caption = line.strip().partition(" ")
                pairs.append((number, video_id, caption))
    captions: dict[str, list[str]] = {}
    malformed: list[str] = []
    for number, video_id, caption in pairs:
        if not (video_id or "").strip() or not (caption or "").strip():
            malformed.append(f"{path.name}:{number}: expected a video id and a caption")
            continue
        captions.setdefault(video_id.strip(), []).append(caption.strip())
    return captions, malformed


def read_msvd(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    annotations = Path(annotations)
    if not annotations.is_dir():
        raise DatasetError(f"msvd: annotations must be a directory of list and caption files: {annotations}")
    list_path = annotation_file(annotations, split, SPLIT_FILES, "msvd")
    captions, malformed = _read_captions(annotations)
    entries = []
    for line in read_lines(list_path):
        video_id = line.strip()
        if not video_id:
            continue
        if video_id not in captions:
            malformed.append(f"{list_path.name}: {video_id} has no caption")
            continue
        entries.append(Annotation(video_id, (video_id,), tuple(captions[video_id])))
    return build_split(
        f"msvd/{split}", entries, Path(video_root), malformed=malformed, skip_missing=skip_missing
    )
