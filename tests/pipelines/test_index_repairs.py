"""A scheduled `glscl index` mends a damaged index before it plans: nothing stays broken behind "unchanged"."""

import pytest

from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.media import make_clip
from tests.pipelines.decode_faults import must_not_decode
from tests.tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def build(tmp_path, model):
    videos, index = tmp_path / "videos", tmp_path / "index"
    for i in range(3):
        make_clip(videos / f"{i}.mp4", seconds=1, color=(70 * i, 120, 200))
    run_index(IndexJobConfig(paths=[str(videos)], index_dir=index, decode=DecodeConfig(workers=1)), model=model)
    return videos, index


def rerun(index, model, **kw):
    return run_index(IndexJobConfig(paths=[], index_dir=index, decode=DecodeConfig(workers=1)), model=model, **kw)


def test_deleted_search_codes_are_rebuilt_without_decoding(tmp_path, model):
    _, index = build(tmp_path, model)
    reader = IndexReader.open(index)
    (index / "shards" / reader.manifest.shards[0].codes).unlink()
    summary = rerun(index, model, decode_fn=must_not_decode)
    assert summary.repaired and summary.videos_embedded == 0
    repaired = IndexReader.open(index)
    assert repaired.key_index.ntotal == 3 and sorted(repaired.units.path) == sorted(reader.units.path)


def test_a_truncated_shard_is_dropped_and_only_its_videos_are_embedded_again(tmp_path, model):
    videos, index = build(tmp_path, model)
    make_clip(videos / "late.mp4", seconds=1, color=(250, 250, 0))
    rerun(index, model)  # a second shard holding only late.mp4
    shards = IndexReader.open(index).manifest.shards
    assert [s.rows for s in shards] == [3, 1]
    shard = index / "shards" / shards[1].name
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    summary = rerun(index, model)
    assert summary.repaired and summary.videos_embedded == 1 and summary.added == 1
    assert sorted(IndexReader.open(index).units.path) == sorted(str(p) for p in videos.glob("*.mp4"))


def test_a_garbled_manifest_falls_back_to_the_previous_generation(tmp_path, model):
    videos, index = build(tmp_path, model)
    make_clip(videos / "late.mp4", seconds=1, color=(250, 250, 0))
    rerun(index, model)
    (index / "manifest.json").write_text("{ garbled", encoding="utf-8")
    summary = rerun(index, model)  # no paths: the roots come from the previous manifest
    assert summary.repaired and summary.units == 4
    assert len(IndexReader.open(index).units) == 4
