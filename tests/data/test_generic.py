"""The generic JSONL / CSV reader: video, caption[, start, end, split]."""

from __future__ import annotations

import json

import pytest

from glscl_index.data import load_dataset
from glscl_index.errors import DatasetError
from tests.data.helpers import touch_videos


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_jsonl_segments_splits_and_grouping(tmp_path):
    root = touch_videos(tmp_path / "videos", ["cooking/pasta.mp4", "dog.webm"])
    outside = touch_videos(tmp_path / "elsewhere", ["cat.mov"]) / "cat.mov"
    path = _write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"video": "cooking/pasta.mp4", "caption": "boiling water", "start": 0, "end": 10.5, "split": "train"},
            {"video": "cooking/pasta.mp4", "caption": "pot of water", "start": 0, "end": 10.5, "split": "train"},
            {"video": "cooking/pasta.mp4", "caption": "draining pasta", "start": 10.5, "end": 20, "split": "test"},
            {"video": "dog", "caption": "a dog runs"},  # no split: every split; extension found
            {"video": str(outside), "caption": "a cat", "split": "test"},
        ],
    )
    train = load_dataset("generic", path, root, "train")
    assert [(c.video_id, c.captions, c.start_s, c.end_s) for c in train.clips] == [
        ("cooking/pasta.mp4", ("boiling water", "pot of water"), 0.0, 10.5),
        ("dog", ("a dog runs",), None, None),
    ]
    assert train.clips[0].video_path == str(root / "cooking" / "pasta.mp4")
    assert train.clips[1].video_path == str(root / "dog.webm")
    assert train.pairs() == [("boiling water", 0), ("pot of water", 0), ("a dog runs", 1)]

    test = load_dataset("generic", path, root, "test")
    assert [(c.captions, c.start_s, c.end_s) for c in test.clips] == [
        (("draining pasta",), 10.5, 20.0),
        (("a dog runs",), None, None),
        (("a cat",), None, None),
    ]
    assert test.clips[2].video_path == str(outside)
    assert len(load_dataset("generic", path, root, "all").clips) == 4


def test_csv_with_optional_columns(tmp_path):
    root = touch_videos(tmp_path / "videos", ["a.mp4", "b.mp4"])
    path = tmp_path / "mine.csv"
    path.write_text(
        "video,caption,start,end,split\n"
        'a.mp4,"a man, cooking",,,test\n'
        "a.mp4,a man cooks,,,test\n"
        "b.mp4,a bird sings,2,4.5,test\n"
        "b.mp4,a bird flies,,,train\n"
    )
    split = load_dataset("generic", path, root, "test")
    assert [(c.video_id, c.captions, c.start_s, c.end_s) for c in split.clips] == [
        ("a.mp4", ("a man, cooking", "a man cooks"), None, None),
        ("b.mp4", ("a bird sings",), 2.0, 4.5),
    ]
    assert split.queries()[1].tolist() == [0, 0, 1]


def test_csv_without_split_or_times(tmp_path):
    root = touch_videos(tmp_path / "videos", ["a.mp4"])
    path = tmp_path / "mine.csv"
    path.write_text("video,caption\na.mp4,hello\n")
    split = load_dataset("generic", path, root, "whatever")
    assert split.clips[0].captions == ("hello",) and split.clips[0].start_s is None


@pytest.mark.parametrize(
    "bad_line",
    [
        "not json",
        json.dumps({"video": "a.mp4"}),  # no caption
        json.dumps({"video": "a.mp4", "caption": "x", "start": "soon"}),
        json.dumps({"video": "a.mp4", "caption": "x", "start": 5, "end": 2}),
        json.dumps({"video": "a.mp4", "caption": "x", "start": -1}),
        json.dumps(["a.mp4", "x"]),
    ],
)
def test_malformed_rows(tmp_path, bad_line):
    root = touch_videos(tmp_path / "videos", ["a.mp4"])
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"video": "a.mp4", "caption": "fine"}) + "\n" + bad_line + "\n")
    with pytest.raises(DatasetError, match=r"mine\.jsonl:2:"):
        load_dataset("generic", path, root, "test")
    split = load_dataset("generic", path, root, "test", skip_missing=True)
    assert split.clips[0].captions == ("fine",) and split.skipped == 1


def test_missing_video(tmp_path):
    root = touch_videos(tmp_path / "videos", ["a.mp4"])
    rows = [{"video": "a.mp4", "caption": "x"}, {"video": "gone.mp4", "caption": "y"}]
    path = _write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(DatasetError, match="1 of 2 videos missing .*gone.mp4"):
        load_dataset("generic", path, root, "test")
    split = load_dataset("generic", path, root, "test", skip_missing=True)
    assert [c.video_id for c in split.clips] == ["a.mp4"] and split.skipped == 1


def test_csv_missing_column_and_unknown_format(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("path,text\na.mp4,x\n")
    with pytest.raises(DatasetError, match="missing column"):
        load_dataset("generic", path, tmp_path, "test")
    other = tmp_path / "mine.txt"
    other.write_text("a.mp4 x\n")
    with pytest.raises(DatasetError, match=".jsonl or .csv"):
        load_dataset("generic", other, tmp_path, "test")
