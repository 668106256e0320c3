"""MSVD from its text layouts: {split}_list.txt plus captions.txt or captions.csv."""

from __future__ import annotations

import pytest

from glscl_index.data import load_dataset
from glscl_index.errors import DatasetError
from tests.data.helpers import touch_videos

IDS = ["3qqEKTPxLNs_1_15", "-4wsuPCjDBc_5_15", "klteYv1Uv9A_27_33"]


def _lists(directory):
    directory.mkdir(exist_ok=True)
    (directory / "train_list.txt").write_text(IDS[1] + "\n")
    (directory / "test_list.txt").write_text(f"{IDS[0]}\n{IDS[2]}\n\n")
    return directory


def test_all_video_descriptions_txt(tmp_path):
    annotations = _lists(tmp_path / "msvd")
    (annotations / "AllVideoDescriptions.txt").write_text(
        "# Microsoft Research Video Description Corpus\n"
        f"{IDS[0]} a baby teethes on a pacifier\n"
        f"{IDS[1]} a man is talking\n"
        f"{IDS[0]} a baby is placing a pacifier in her mouth\n"
        f"{IDS[2]} a man is riding a motorcycle while laying down\n"
    )
    root = touch_videos(tmp_path / "videos", [f"{i}.avi" for i in IDS])
    split = load_dataset("msvd", annotations, root, "test")
    assert [c.video_id for c in split.clips] == [IDS[0], IDS[2]]
    assert split.clips[0].captions == (
        "a baby teethes on a pacifier",
        "a baby is placing a pacifier in her mouth",
    )
    assert split.clips[0].video_path == str(root / f"{IDS[0]}.avi")
    texts, caption_video = split.queries()
    assert len(texts) == 3 and caption_video.tolist() == [0, 0, 1]
    assert [c.video_id for c in load_dataset("msvd", annotations, root, "train").clips] == [IDS[1]]


def test_captions_csv_and_video_without_caption(tmp_path):
    annotations = _lists(tmp_path / "msvd")
    (annotations / "captions.csv").write_text(f"video_id,caption\n{IDS[0]},a baby\n{IDS[1]},a man\n")
    root = touch_videos(tmp_path / "videos", [f"{i}.mp4" for i in IDS])
    with pytest.raises(DatasetError, match=f"{IDS[2]} has no caption"):
        load_dataset("msvd", annotations, root, "test")
    split = load_dataset("msvd", annotations, root, "test", skip_missing=True)
    assert [c.captions for c in split.clips] == [("a baby",)] and split.skipped == 1


def test_no_caption_file(tmp_path):
    annotations = _lists(tmp_path / "msvd")
    with pytest.raises(DatasetError, match="no caption file"):
        load_dataset("msvd", annotations, tmp_path, "test")
