"""DiDeMo for paragraph-to-video retrieval (as in CLIP4Clip-style code).

``annotations`` is a directory with ``{train,val,test}_data.json`` (or one of
those files): a list of {"video": file name, "description": str, "times": ...}
with several descriptions (moments) per video. All descriptions of a video,
in file order, form one paragraph query for the whole video; the moment
``times`` are not used. The file names keep their original container
(``.m4v``, ``.mpg``, ...; some end in a bare ``.``): the video is found as named,
else as ``<stem>.mp4`` (or another common extension), since copies are often
re-encoded. The video id is the name without its extension.
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.data.files import annotation_file, read_json
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split
from glscl_index.errors import DatasetError

SPLIT_FILES = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}


def read_didemo(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    path = annotation_file(annotations, split, SPLIT_FILES, "didemo")
    items = read_json(path)
    if not isinstance(items, list):
        raise DatasetError(f"{path}: expected a list of moments")
    descriptions: dict[str, list[str]] = {}  # file name -> descriptions, in first-seen order
    malformed: list[str] = []
    for i, item in enumerate(items):
        try:
            video, description = str(item["video"]), str(item["description"]).strip()
        except (TypeError, KeyError):
            malformed.append(f"{path.name}: item {i} lacks video or description")
            continue
        descriptions.setdefault(video, []).append(description)
    entries = []
    for video, texts in descriptions.items():
        stem = video.rsplit(".", 1)[0] if "." in video else video
        entries.append(Annotation(stem, (video, stem), tuple(texts)))
    return build_split(
        f"didemo/{split}", entries, Path(video_root),
        paragraph=True, malformed=malformed, skip_missing=skip_missing,
    )
