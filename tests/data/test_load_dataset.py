"""load_dataset dispatch and its errors for unknown names, splits and files."""

from __future__ import annotations

import json

import pytest

from glscl_index.data import READERS, load_dataset
from glscl_index.errors import DatasetError
from tests.data.helpers import touch_videos


def test_known_names():
    assert set(READERS) == {"msrvtt", "msvd", "didemo", "lsmdc", "activitynet", "generic"}


def test_unknown_dataset(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'kinetics'"):
        load_dataset("kinetics", tmp_path, tmp_path, "test")


def test_unknown_split_and_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="unknown split 'dev'.*train, train-7k, test"):
        load_dataset("msrvtt", tmp_path, tmp_path, "dev")
    with pytest.raises(DatasetError, match="annotation file not found"):
        load_dataset("didemo", tmp_path, tmp_path, "test")
    with pytest.raises(DatasetError, match="MSRVTT_data.json"):
        (tmp_path / "MSRVTT_train.9k.csv").write_text("video_id\nvideo0\n")
        load_dataset("msrvtt", tmp_path, tmp_path, "train")


def test_unreadable_json(tmp_path):
    (tmp_path / "test_data.json").write_text("[{")
    with pytest.raises(DatasetError, match="cannot read JSON"):
        load_dataset("didemo", tmp_path, tmp_path, "test")


def test_generated_msrvtt_data_json(tmp_path):
    (tmp_path / "MSRVTT_train.9k.csv").write_text("video_id\nvideo1\nvideo0\n")
    data = {
        "videos": [{"video_id": "video0"}, {"video_id": "video1"}],
        "sentences": [
            {"video_id": "video0", "caption": "a cat"},
            {"video_id": "video1", "caption": "a dog"},
            {"video_id": "video0", "caption": "a kitten"},
            {"caption": "orphan"},  # malformed: no video_id
        ],
    }
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(data))
    root = touch_videos(tmp_path / "videos", ["video0.mp4", "video1.webm"])
    with pytest.raises(DatasetError, match=r"sentences\[3\]"):
        load_dataset("msrvtt", tmp_path, root, "train")
    split = load_dataset("msrvtt", tmp_path, root, "train", skip_missing=True)
    assert split.skipped == 1
    assert [(c.video_id, c.captions) for c in split.clips] == [
        ("video1", ("a dog",)),
        ("video0", ("a cat", "a kitten")),
    ]
    assert split.pairs() == [("a dog", 0), ("a cat", 1), ("a kitten", 1)]


def test_activitynet_and_didemo_small(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps({
        "v_abc": {"duration": 10, "timestamps": [[0, 5], [5, 10]], "sentences": [" One.", "Two. "]},
        "v_empty": {"duration": 3, "timestamps": [], "sentences": []},
    }))
    root = touch_videos(tmp_path / "videos", ["v_abc.mp4"])
    with pytest.raises(DatasetError, match="v_empty has no sentences"):
        load_dataset("activitynet", tmp_path, root, "train")
    split = load_dataset("activitynet", tmp_path, root, "train", skip_missing=True)
    assert split.queries()[0] == ["One. Two."] and split.skipped == 1

    (tmp_path / "val_data.json").write_text(json.dumps([
        {"video": "x.m4v", "description": "first", "times": [[0, 0]]},
        {"video": "y.mpg", "description": "other", "times": [[1, 1]]},
        {"video": "x.m4v", "description": "second", "times": [[1, 1]]},
    ]))
    touch_videos(root, ["x.mp4", "y.mpg"])
    split = load_dataset("didemo", tmp_path, root, "val")
    assert split.queries()[0] == ["first second", "other"]
    assert [c.video_path for c in split.clips] == [str(root / "x.mp4"), str(root / "y.mpg")]
