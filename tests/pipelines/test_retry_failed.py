"""Files that failed before: skipped while unchanged, decoded again with retry_failed or once they change."""

import functools
import os

import pytest

from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.media import make_broken_files, make_clip
from tests.pipelines.decode_faults import log_decodes, must_not_decode, old_decoder
from tests.tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def job(videos, index, **kw):
    return IndexJobConfig(paths=[str(videos)], index_dir=index, decode=DecodeConfig(workers=1, timeout_s=30), **kw)


def catalog(index):
    return {e.path: e for e in IndexReader.open(index).catalog}


def decoded(log_path):
    """Paths decoded so far, one line each, as logged by ``log_decodes``."""
    return log_path.read_text().splitlines() if log_path.exists() else []


@pytest.fixture
def one_good_one_truncated(tmp_path, model):
    """A folder indexed once: good.mp4 indexed, truncated.mp4 recorded as failed."""
    videos, index = tmp_path / "videos", tmp_path / "index"
    make_clip(videos / "good.mp4", seconds=1)
    os.rename(make_broken_files(tmp_path / "broken")["truncated"], videos / "truncated.mp4")
    summary = run_index(job(videos, index), model=model)
    assert (summary.added, summary.failed) == (1, 1)
    return videos, index


def test_unchanged_failed_file_is_counted_not_decoded(one_good_one_truncated, model):
    videos, index = one_good_one_truncated
    before = catalog(index)[str(videos / "truncated.mp4")]

    summary = run_index(job(videos, index), model=model, decode_fn=must_not_decode)

    assert (summary.failed, summary.failed_not_retried, summary.unchanged) == (0, 1, 2)
    assert catalog(index)[str(videos / "truncated.mp4")] == before  # same reason, same indexed_at


def test_retry_failed_decodes_only_the_failed_file_again(one_good_one_truncated, model, tmp_path):
    videos, index = one_good_one_truncated
    before = catalog(index)[str(videos / "truncated.mp4")]
    log = tmp_path / "decoded.log"

    summary = run_index(
        job(videos, index, retry_failed=True), model=model, decode_fn=functools.partial(log_decodes, str(log))
    )

    assert decoded(log) == [str(videos / "truncated.mp4")]
    assert (summary.failed, summary.failed_not_retried, summary.unchanged) == (1, 0, 1)
    after = catalog(index)[str(videos / "truncated.mp4")]
    assert after.status == "failed" and after.indexed_at > before.indexed_at
    assert after.video_id == before.video_id


def test_retry_succeeds_after_the_decoder_is_fixed(tmp_path, model):
    videos, index = tmp_path / "videos", tmp_path / "index"
    make_clip(videos / "new-codec.mp4", seconds=1)
    run_index(job(videos, index), model=model, decode_fn=old_decoder)
    assert catalog(index)[str(videos / "new-codec.mp4")].error == "unsupported codec"

    summary = run_index(job(videos, index, retry_failed=True), model=model)

    assert (summary.added, summary.updated, summary.failed) == (1, 0, 0)
    assert catalog(index)[str(videos / "new-codec.mp4")].status == "indexed"
    assert set(IndexReader.open(index).units.path) == {str(videos / "new-codec.mp4")}


def test_broken_file_replaced_by_a_good_one_is_indexed_without_the_flag(one_good_one_truncated, model):
    videos, index = one_good_one_truncated
    path = videos / "truncated.mp4"
    stat = path.stat()
    make_clip(path, seconds=2, color=(20, 200, 20))  # new content, new size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # and a later mtime, even on coarse clocks

    summary = run_index(job(videos, index), model=model)

    assert (summary.added, summary.failed, summary.failed_not_retried) == (1, 0, 0)
    entry = catalog(index)[str(path)]
    assert entry.status == "indexed" and entry.error == ""
    assert set(IndexReader.open(index).units.path) == {str(videos / "good.mp4"), str(path)}
