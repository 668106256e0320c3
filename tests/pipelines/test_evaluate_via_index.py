"""`glscl eval --via-index` measures the real two-stage path: a video FAISS misses ranks after the candidates."""

import os

import pytest

from glscl_index.search import SearchConfig, Searcher
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.evaluate import two_stage_ranks
from pipelines.index import IndexJobConfig, run_index
from tests.media import make_clip
from tests.tiny import tiny_model

CAPTIONS = ["a red square", "a green square", "a blue square", "a yellow square", "a white square"]


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("via-index")
    colors = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (220, 220, 20), (230, 230, 230)]
    for i, color in enumerate(colors):
        make_clip(root / "videos" / f"{i}.mp4", seconds=1, color=color)
    model = tiny_model()
    run_index(
        IndexJobConfig(paths=[str(root / "videos")], index_dir=root / "index", decode=DecodeConfig(workers=1)),
        model=model,
    )
    return Searcher(IndexReader.open(root / "index"), model), [
        os.path.realpath(root / "videos" / f"{i}.mp4") for i in range(5)
    ]


def test_with_every_unit_a_candidate_ranks_are_the_exhaustive_ones(searcher):
    search, targets = searcher
    ranks, fallbacks = two_stage_ranks(search, CAPTIONS, targets, num_videos=5, candidates=1000)
    text, keys = search.encode_queries(CAPTIONS)
    exhaustive = search.rank(text, keys, SearchConfig(k=5, exhaustive=True))
    expected = [
        next(n for n, hit in enumerate(hits, 1) if hit.video_path == t)
        for hits, t in zip(exhaustive, targets, strict=False)
    ]
    assert fallbacks == 0 and ranks.tolist() == expected


def test_a_video_outside_the_candidates_ranks_after_them(searcher):
    search, targets = searcher
    ranks, fallbacks = two_stage_ranks(search, CAPTIONS, targets, num_videos=5, candidates=1)
    text, keys = search.encode_queries(CAPTIONS)
    reached = [hits[0].video_path for hits in search.rank(text, keys, SearchConfig(k=5, candidates=1))]
    missed = [i for i in range(5) if reached[i] != targets[i]]
    assert fallbacks == len(missed) >= 1  # the random tiny model's first candidate is rarely the caption's video
    assert all(ranks[i] >= 2 for i in missed) and all(ranks[i] == 1 for i in range(5) if i not in missed)
