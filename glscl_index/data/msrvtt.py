"""MSR-VTT in the layout of CLIP4Clip-style code.

``annotations`` is a directory holding
- MSRVTT_data.json: {"videos": [{"video_id": ...}], "sentences": [{"video_id", "caption"}]},
  the 20 captions of every video (needed for the training splits);
- MSRVTT_train.9k.csv / MSRVTT_train.7k.csv: one ``video_id`` column;
- MSRVTT_JSFUSION_test.csv: the 1k-A test split (key, vid_key, video_id, sentence),
  one caption per video.
For "test" it may also be the JSFUSION CSV file itself. Videos are
``video_root/<video_id>.mp4`` (or another common extension).
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.data.files import annotation_file, read_csv, read_json
from glscl_index.data.records import DatasetSplit
from glscl_index.data.resolve import Annotation, build_split
from glscl_index.errors import DatasetError

SPLIT_FILES = {
    "train": "MSRVTT_train.9k.csv",
    "train-7k": "MSRVTT_train.7k.csv",
    "test": "MSRVTT_JSFUSION_test.csv",
}
DATA_JSON = "MSRVTT_data.json"


def _captions_by_video(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    data = read_json(path)
    sentences = data.get("sentences") if isinstance(data, dict) else None
    if not isinstance(sentences, list):
        raise DatasetError(f"{path}: expected an object with a 'sentences' list")
    captions: dict[str, list[str]] = {}
    malformed: list[str] = []
    for i, sentence in enumerate(sentences):
        try:
            video_id, caption = str(sentence["video_id"]), str(sentence["caption"]).strip()
        except (TypeError, KeyError):
            malformed.append(f"{path.name}: sentences[{i}] lacks video_id or caption")
            continue
        captions.setdefault(video_id, []).append(caption)
    return captions, malformed


def read_msrvtt(
    annotations: Path, video_root: Path, split: str, skip_missing: bool = False
) -> DatasetSplit:
    path = annotation_file(annotations, split, SPLIT_FILES, "msrvtt")
    name = f"msrvtt/{split}"
    if split == "test":
        rows = read_csv(path, ("video_id", "sentence"))
        entries = [
            Annotation(row["video_id"], (row["video_id"],), (row["sentence"].strip(),))
            for row in rows
        ]
        return build_split(name, entries, Path(video_root), skip_missing=skip_missing)

    data_json = Path(annotations) / DATA_JSON
    if not data_json.is_file():
        raise DatasetError(f"msrvtt {split}: {DATA_JSON} (training captions) not found in {annotations}")
    captions, malformed = _captions_by_video(data_json)
    entries = []
    for row in read_csv(path, ("video_id",)):
        video_id = row["video_id"]
        if video_id not in captions:
            malformed.append(f"{path.name}: {video_id} has no caption in {DATA_JSON}")
            continue
        entries.append(Annotation(video_id, (video_id,), tuple(captions[video_id])))
    return build_split(name, entries, Path(video_root), malformed=malformed, skip_missing=skip_missing)
