"""The indexing job end to end on generated messy folders, with a tiny random-weight model."""

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glscl_index.embedding import VideoEmbedder
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.media import make_clip, make_messy_folder
from tests.pipelines.decode_faults import crash_or_hang, decode_then_touch
from tests.pipelines.decode_faults import must_not_decode as _must_not_decode
from tests.tiny import tiny_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def job(videos, index, **kw):
    return IndexJobConfig(
        paths=[str(videos)], index_dir=index, decode=DecodeConfig(workers=2, timeout_s=kw.pop("timeout", 30)), **kw
    )


def catalog(index):
    return {e.path: e for e in IndexReader.open(index).catalog}


def test_messy_folder_good_indexed_broken_recorded(tmp_path, model):
    made = make_messy_folder(tmp_path / "videos")
    summary = run_index(job(tmp_path / "videos", tmp_path / "index"), model=model)
    entries = catalog(tmp_path / "index")
    for good in made["good"]:
        assert entries[str(good)].status == "indexed", entries[str(good)]
    broken_in_folder = [b for b in made["broken"] if b.suffix in (".mp4",)]
    for bad in broken_in_folder:
        assert entries[str(bad)].status == "failed" and entries[str(bad)].error
    assert summary.added == len(made["good"]) and summary.failed == len(broken_in_folder)
    reader = IndexReader.open(tmp_path / "index")
    assert set(reader.units.path) == {str(g) for g in made["good"]}
    assert not any("/." in p for p in entries)


def test_rerun_decodes_nothing_and_changes_are_exact(tmp_path, model):
    videos, index = tmp_path / "videos", tmp_path / "index"
    for name, color in (("a", (200, 0, 0)), ("b", (0, 200, 0)), ("c", (0, 0, 200)), ("d", (200, 200, 0))):
        make_clip(videos / f"{name}.mp4", color=color)
    run_index(job(videos, index), model=model)
    before = catalog(index)

    # Re-run time against the first run is a benchmark figure (benchmarks/index_throughput.py);
    # here: nothing is decoded or embedded again.
    summary = run_index(job(videos, index), model=model, decode_fn=_must_not_decode)
    assert summary.videos_embedded == 0 and summary.unchanged == 4 and summary.failed == 0

    os.utime(videos / "a.mp4", ns=(1, 10**18))  # touch: same content
    make_clip(videos / "b.mp4", color=(255, 255, 255), seconds=2)  # replace: new content
    (videos / "c.mp4").unlink()  # delete
    os.rename(videos / "d.mp4", videos / "renamed.mp4")  # move
    summary = run_index(job(videos, index), model=model)
    after = catalog(index)
    assert (summary.updated, summary.removed, summary.moved, summary.videos_embedded) == (1, 1, 1, 1)
    assert after[str(videos / "a.mp4")].mtime_ns == 10**18
    assert after[str(videos / "a.mp4")].video_id == before[str(videos / "a.mp4")].video_id
    assert after[str(videos / "b.mp4")].content_hash != before[str(videos / "b.mp4")].content_hash
    assert str(videos / "c.mp4") not in after
    assert after[str(videos / "renamed.mp4")].video_id == before[str(videos / "d.mp4")].video_id
    units = IndexReader.open(index).units
    assert set(units.path) == {str(videos / n) for n in ("a.mp4", "b.mp4", "renamed.mp4")}


@pytest.mark.slow
def test_worker_killed_by_signal_and_hang_fail_alone(tmp_path, model):
    videos = tmp_path / "videos"
    for i, name in enumerate(("ok1", "crash", "ok2", "hang", "ok3")):
        make_clip(videos / f"{name}.mp4", seconds=1, color=(40 * i, 90, 160))  # distinct: same content is one video
    summary = run_index(job(videos, tmp_path / "index", timeout=3), model=model, decode_fn=crash_or_hang)
    entries = catalog(tmp_path / "index")
    assert "SIGSEGV" in entries[str(videos / "crash.mp4")].error
    assert "longer than" in entries[str(videos / "hang.mp4")].error
    for name in ("ok1", "ok2", "ok3"):
        assert entries[str(videos / f"{name}.mp4")].status == "indexed"
    assert summary.failed == 2 and summary.added == 3


def test_workers_keep_decoding_while_the_model_embeds(tmp_path, model, monkeypatch):
    # The first video's forward pass waits until the second video is decoded; with
    # one file in flight, only a pipeline that keeps taking decoded files while
    # the model works gets there (a synchronous one gives up after 10 s).
    videos, marker = tmp_path / "videos", tmp_path / "second-decoded"
    make_clip(videos / "1-first.mp4", seconds=1, color=(200, 40, 40))
    make_clip(videos / "2-second.mp4", seconds=1, color=(40, 40, 200))
    original, overlapped = VideoEmbedder.embed, []

    def embed_once_second_is_decoded(self, frames, counts):
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        overlapped.append(marker.exists())
        return original(self, frames, counts)

    monkeypatch.setattr(VideoEmbedder, "embed", embed_once_second_is_decoded)
    config = IndexJobConfig(
        paths=[str(videos)],
        index_dir=tmp_path / "index",
        batch_frames=1,
        decode=DecodeConfig(workers=1, max_in_flight=1),
    )
    summary = run_index(
        config, model=model, decode_fn=functools.partial(decode_then_touch, str(marker), "2-second.mp4")
    )
    assert summary.added == 2 and overlapped[0]


WRITER = """
import sys, time
sys.path.insert(0, {repo!r})
from pathlib import Path
import glscl_index.embedding as embedding
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.tiny import tiny_model
original = embedding.VideoEmbedder.embed
def slow(self, frames, counts):
    time.sleep(0.3)
    return original(self, frames, counts)
embedding.VideoEmbedder.embed = slow
if __name__ == "__main__":
    config = IndexJobConfig(
        paths=[{videos!r}], index_dir=Path({index!r}), decode=DecodeConfig(workers=1), commit_every=2, batch_frames=1
    )
    run_index(config, model=tiny_model())
"""


@pytest.mark.slow
def test_sigkill_mid_run_keeps_last_generation_and_next_run_finishes(tmp_path, model):
    videos, index = tmp_path / "videos", tmp_path / "index"
    for i in range(3):
        make_clip(videos / f"first{i}.mp4", seconds=1, color=(60 * i, 100, 200))
    run_index(job(videos, index), model=model)
    before = IndexReader.open(index)
    for i in range(12):
        make_clip(videos / f"more{i:02d}.mp4", seconds=1, color=(10 * i, 200, 50))
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO), videos=str(videos), index=str(index)))
    child = subprocess.Popen([sys.executable, str(script)], cwd=REPO)
    deadline = time.monotonic() + 120
    while IndexReader.open(index).manifest.generation < before.manifest.generation + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    survivor = IndexReader.open(index)
    assert survivor.manifest.generation >= before.manifest.generation + 2
    assert len(survivor.units) < 15  # killed before the end
    assert set(before.units.path) <= set(survivor.units.path)
    summary = run_index(job(videos, index), model=model)
    assert summary.added == 15 - len(survivor.units)
    assert len(IndexReader.open(index).units) == 15
