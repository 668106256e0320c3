"""--commit-every is a promise: a crash loses at most that many videos, whatever the model batch size."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glscl_index.errors import IndexNotFoundError
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, IndexProgress, run_index
from tests.media import make_clip
from tests.tiny import tiny_model

REPO = Path(__file__).resolve().parents[2]


class CountCommits(IndexProgress):
    def __init__(self):
        self.done, self.at_commit, self.upkeeps = 0, [], []

    def advance(self, path, frames, failed):
        self.done += 1

    def committed(self, generation):
        self.at_commit.append(self.done)

    def upkeep(self, what):
        self.upkeeps.append((self.done, what))


def test_commits_come_every_n_videos_even_when_the_model_batch_is_not_full(tmp_path):
    for i in range(7):
        make_clip(tmp_path / "videos" / f"{i}.mp4", seconds=1, color=(30 * i, 100, 200))
    progress = CountCommits()
    config = IndexJobConfig(
        paths=[str(tmp_path / "videos")], index_dir=tmp_path / "index", commit_every=2, batch_frames=100_000,
        decode=DecodeConfig(workers=1),
    )
    summary = run_index(config, progress=progress, model=tiny_model())
    assert progress.at_commit == [2, 4, 6, 7]
    # The search is tuned after the first commit and again once the collection doubled, each time as a
    # generation of its own after the commit's: 4 commits, 2 upkeeps.
    assert progress.upkeeps == [(2, "tuning the search on 2 units"), (4, "tuning the search on 4 units")]
    assert summary.generation == 6 and IndexReader.open(tmp_path / "index").manifest.ann.tuned_units == 4


WRITER = """
import sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.tiny import tiny_model
from tests.pipelines.decode_faults import crash_or_hang
if __name__ == "__main__":
    config = IndexJobConfig(
        paths=[{videos!r}], index_dir=Path({index!r}), decode=DecodeConfig(workers=1, timeout_s=3600),
        commit_every=2, batch_frames=100000,
    )
    run_index(config, model=tiny_model(), decode_fn=crash_or_hang)
"""


def committed_units(index):
    try:
        return len(IndexReader.open(index).units)
    except IndexNotFoundError:
        return 0


@pytest.mark.slow
def test_sigkill_after_n_videos_keeps_them_although_no_batch_filled(tmp_path):
    videos, index = tmp_path / "videos", tmp_path / "index"
    for i in range(4):
        make_clip(videos / f"{i}-ok.mp4", seconds=1, color=(50 * i, 100, 200))
    make_clip(videos / "9-hang.mp4", seconds=1, color=(250, 250, 250))  # the decoder hangs here for an hour
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO), videos=str(videos), index=str(index)))
    # Its own process group, so the kill also takes the decode worker stuck in the hang.
    child = subprocess.Popen([sys.executable, str(script)], cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while committed_units(index) < 4 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert committed_units(index) == 4  # all four good videos survived the kill
