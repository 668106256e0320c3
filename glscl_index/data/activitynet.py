"""ActivityNet Captions for paragraph-to-video retrieval (as in CLIP4Clip-style code).

``annotations`` is a directory with (or one of) train.json, val_1.json,
val_2.json: {"v_<youtube id>": {"duration", "timestamps", "sentences"}}.
Split "test" is val_1, the usual paragraph-retrieval test set. All sentences
of a video, in order, form one paragraph query for the whole video (the
per-sentence timestamps are not used). The video is ``video_root/v_<id>.mp4``
or ``video_root/<id>.mp4`` (or another common extension).
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.data.files import annotation_file, read_json
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split
from glscl_index.errors import DatasetError

SPLIT_FILES = {"train": "train.json", "val": "val_1.json", "test": "val_1.json", "val_2": "val_2.json"}


def read_activitynet(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    path = annotation_file(annotations, split, SPLIT_FILES, "activitynet")
    videos = read_json(path)
    if not isinstance(videos, dict):
        raise DatasetError(f"{path}: expected an object keyed by video id")
    entries = []
    malformed: list[str] = []
    for video_id, item in videos.items():
        sentences = item.get("sentences") if isinstance(item, dict) else None
        texts = tuple(s.strip() for s in sentences or () if isinstance(s, str) and s.strip())
        if not isinstance(sentences, list) or not texts:
            malformed.append(f"{path.name}: {video_id} has no sentences")
            continue
        names = (video_id, video_id[2:]) if video_id.startswith("v_") else (video_id, f"v_{video_id}")
        entries.append(Annotation(video_id, names, texts))
    return build_split(
        f"activitynet/{split}", entries, Path(video_root),
        paragraph=True, malformed=malformed, skip_missing=skip_missing,
    )
