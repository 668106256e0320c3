"""DatasetSplit.pairs()/queries(): one text per caption, or one paragraph per clip."""

from __future__ import annotations

from glscl_index.data import Clip, DatasetSplit

CLIPS = [
    Clip("a", "/v/a.mp4", ("a dog runs.", "a dog plays.")),
    Clip("b", "/v/b.mp4", ("a cat sleeps.",), start_s=1.0, end_s=2.5),
]


def test_caption_pairs_and_queries():
    split = DatasetSplit("toy", CLIPS, paragraph=False)
    assert split.pairs() == [("a dog runs.", 0), ("a dog plays.", 0), ("a cat sleeps.", 1)]
    texts, caption_video = split.queries()
    assert texts == ["a dog runs.", "a dog plays.", "a cat sleeps."]
    assert caption_video.tolist() == [0, 0, 1]
    assert split.skipped == 0


def test_paragraph_pairs_and_queries():
    split = DatasetSplit("toy", CLIPS, paragraph=True)
    assert split.pairs() == [("a dog runs. a dog plays.", 0), ("a cat sleeps.", 1)]
    texts, caption_video = split.queries()
    assert texts == ["a dog runs. a dog plays.", "a cat sleeps."]
    assert caption_video.tolist() == [0, 1]
