"""Readers on the real benchmark annotation files (skipped without the shared fixtures).

The videos are empty placeholder files named after the annotated ids.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from glscl_index.data import load_dataset
from glscl_index.errors import DatasetError
from tests.data.helpers import touch_videos

ANNOTATIONS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "annotations"
needs_fixtures = pytest.mark.skipif(not ANNOTATIONS.is_dir(), reason="shared fixtures absent")
LSMDC_FILE = "LSMDC16_challenge_1000_publictect.csv"


def _msrvtt_test_ids() -> list[str]:
    lines = (ANNOTATIONS / "msrvtt" / "MSRVTT_JSFUSION_test.csv").read_text().splitlines()[1:]
    return [line.split(",")[2] for line in lines]


@needs_fixtures
def test_msrvtt_1k_a_test(tmp_path):
    root = touch_videos(tmp_path / "videos", [f"{i}.mp4" for i in _msrvtt_test_ids()])
    split = load_dataset("msrvtt", ANNOTATIONS / "msrvtt", root, "test")
    assert split.name == "msrvtt/test" and not split.paragraph
    assert len(split.clips) == 1000 and split.skipped == 0
    first = split.clips[0]
    assert first.video_id == "video9770"
    assert first.captions == ("a person is connecting something to system",)
    assert first.video_path == str(root / "video9770.mp4")
    assert split.clips[1].captions == ("a little girl does gymnastics",)
    assert split.clips[-1].captions == ("bearded guy in grey tshirt talking to the camera",)
    texts, caption_video = split.queries()
    assert len(texts) == 1000 and caption_video.tolist() == list(range(1000))


@needs_fixtures
def test_msrvtt_test_accepts_the_csv_file_itself(tmp_path):
    root = touch_videos(tmp_path / "videos", [f"{i}.avi" for i in _msrvtt_test_ids()])
    split = load_dataset("msrvtt", ANNOTATIONS / "msrvtt" / "MSRVTT_JSFUSION_test.csv", root, "test")
    assert len(split.clips) == 1000 and split.clips[0].video_path.endswith("video9770.avi")


@needs_fixtures
def test_missing_videos_error_and_skip(tmp_path):
    ids = _msrvtt_test_ids()
    root = touch_videos(tmp_path / "videos", [f"{i}.mp4" for i in ids[3:]])
    with pytest.raises(DatasetError) as error:
        load_dataset("msrvtt", ANNOTATIONS / "msrvtt", root, "test")
    message = str(error.value)
    assert "\n" not in message
    assert "3 of 1000 videos missing" in message
    assert "video9770, video9771, video7020" in message
    split = load_dataset("msrvtt", ANNOTATIONS / "msrvtt", root, "test", skip_missing=True)
    assert len(split.clips) == 997 and split.skipped == 3
    assert "video9770" not in {clip.video_id for clip in split.clips}


@needs_fixtures
@pytest.mark.slow
def test_msrvtt_train_9k_with_generated_data_json(tmp_path):
    annotations = tmp_path / "msrvtt"
    annotations.mkdir()
    shutil.copy(ANNOTATIONS / "msrvtt" / "MSRVTT_train.9k.csv", annotations)
    train_ids = (annotations / "MSRVTT_train.9k.csv").read_text().split()[1:]
    assert len(train_ids) == 9000
    extra = "video9770"  # a 1k-A test video: in the data json, not in the 9k split
    assert extra not in train_ids
    data = {
        "videos": [{"video_id": v} for v in [*train_ids, extra]],
        "sentences": [
            {"video_id": v, "caption": f"{v} caption {k}", "sen_id": n}
            for n, (v, k) in enumerate((v, k) for k in range(2) for v in [*train_ids, extra])
        ],
    }
    (annotations / "MSRVTT_data.json").write_text(json.dumps(data))
    root = touch_videos(tmp_path / "videos", [f"{v}.mp4" for v in [*train_ids, extra]])
    split = load_dataset("msrvtt", annotations, root, "train")
    assert len(split.clips) == 9000 and len(split.pairs()) == 18000
    assert split.clips[0].video_id == "video0"
    assert split.clips[0].captions == ("video0 caption 0", "video0 caption 1")
    assert extra not in {clip.video_id for clip in split.clips}


@needs_fixtures
def test_didemo_test_paragraphs(tmp_path):
    items = json.loads((ANNOTATIONS / "didemo" / "test_data.json").read_text())
    names = sorted({item["video"] for item in items})
    # Half as annotated (.m4v, .mpg, ...), half re-encoded to <stem>.mp4.
    files = [n if i % 2 else n.rsplit(".", 1)[0] + ".mp4" for i, n in enumerate(names)]
    root = touch_videos(tmp_path / "videos", files)
    split = load_dataset("didemo", ANNOTATIONS / "didemo", root, "test")
    assert split.paragraph
    assert len(split.clips) == 1037 and split.skipped == 0
    assert sum(len(clip.captions) for clip in split.clips) == len(items) == 4021
    first = split.clips[0]
    assert first.video_id == "26292851@N04_4253489686_265c3c8051"
    assert first.captions[:2] == (
        "someone kicks the bug towards some rocks.",
        "a man in a red shirt stomps on a centipede.",
    )
    texts, caption_video = split.queries()
    assert len(texts) == 1037 and caption_video.tolist() == list(range(1037))
    assert texts[0].startswith("someone kicks the bug towards some rocks. a man in a red shirt stomps")
    # names ending in a bare "." are found as <stem>.mp4 or as annotated
    odd = next(clip for clip in split.clips if clip.video_id == "58792004@N06_8544469262_fd25eddb2e")
    assert Path(odd.video_path).exists()


@needs_fixtures
def test_lsmdc_test_flat_and_movie_folders(tmp_path):
    lines = (ANNOTATIONS / "lsmdc" / LSMDC_FILE).read_text().splitlines()
    ids = [line.split("\t")[0] for line in lines]
    files = [f"{i}.avi" if n % 2 else f"{i.rsplit('_', 1)[0]}/{i}.avi" for n, i in enumerate(ids)]
    root = touch_videos(tmp_path / "videos", files)
    split = load_dataset("lsmdc", ANNOTATIONS / "lsmdc", root, "test")
    assert len(split.clips) == 1000 and split.skipped == 0
    first = split.clips[0]
    assert first.video_id == "3086_UGLY_TRUTH_00.23.23.000-00.23.28.886"
    assert first.captions == ("SOMEONE stands below, hands on her hips.",)
    assert first.video_path == str(root / "3086_UGLY_TRUTH" / f"{first.video_id}.avi")
    assert first.start_s is None and first.end_s is None
    assert split.clips[1].video_path == str(root / f"{split.clips[1].video_id}.avi")


@needs_fixtures
def test_lsmdc_malformed_row(tmp_path):
    good = (ANNOTATIONS / "lsmdc" / LSMDC_FILE).read_text().splitlines()[:2]
    path = tmp_path / LSMDC_FILE
    path.write_text("\n".join([*good, "only\tthree\tfields"]) + "\n")
    root = touch_videos(tmp_path / "videos", [line.split("\t")[0] + ".mp4" for line in good])
    with pytest.raises(DatasetError, match=r"1 malformed annotation row.*:3:"):
        load_dataset("lsmdc", path, root, "test")
    split = load_dataset("lsmdc", path, root, "test", skip_missing=True)
    assert len(split.clips) == 2 and split.skipped == 1


@needs_fixtures
def test_activitynet_val_1_paragraphs(tmp_path):
    videos = json.loads((ANNOTATIONS / "activitynet" / "val_1.json").read_text())
    # Half named as annotated (v_<id>), half without the "v_" prefix.
    files = [f"{k}.mp4" if i % 2 else f"{k[2:]}.mkv" for i, k in enumerate(videos)]
    root = touch_videos(tmp_path / "videos", files)
    split = load_dataset("activitynet", ANNOTATIONS / "activitynet", root, "test")
    assert split.paragraph and split.name == "activitynet/test"
    assert len(split.clips) == 4917 and split.skipped == 0
    assert sum(len(clip.captions) for clip in split.clips) == 17505
    first = split.clips[0]
    assert first.video_id == "v_uqiMw7tQ1Cc" and first.video_path == str(root / "uqiMw7tQ1Cc.mkv")
    assert first.paragraph == (
        "A weight lifting tutorial is given. "
        "The coach helps the guy in red with the proper body placement and lifting technique."
    )
    assert split.pairs()[0] == (first.paragraph, 0)
