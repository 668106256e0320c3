"""Isolated decoding: a worker killed by a signal, a hang and a memory blow-up fail one file each."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glscl_index.errors import CorruptVideoError, DecodeCrashError, DecodeTimeoutError
from glscl_index.video.decode import DecodedVideo
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.workers import DecodeConfig, DecodePool
from tests.media import make_broken_files, make_clip
from tests.video.faults import allocate_too_much, crash_or_hang

SAMPLING = SamplingConfig(image_size=32)
REPO = Path(__file__).resolve().parents[2]


def copies(tmp_path, names):
    clip = make_clip(tmp_path / "source.mp4", seconds=1)
    paths = []
    for name in names:
        shutil.copy(clip, tmp_path / f"{name}.mp4")
        paths.append(str(tmp_path / f"{name}.mp4"))
    return paths


def test_many_files_in_submission_order(tmp_path):
    paths = [str(make_clip(tmp_path / f"{i:02d}.mp4", seconds=1, color=(10 * i, 0, 0))) for i in range(12)]
    broken = make_broken_files(tmp_path / "broken")
    paths.insert(5, str(broken["text"]))
    with DecodePool(DecodeConfig(workers=2, max_in_flight=3), SAMPLING) as pool:
        results = list(pool.imap(iter(paths)))
    assert [p for p, _ in results] == paths
    outcomes = dict(results)
    assert isinstance(outcomes[str(broken["text"])], CorruptVideoError)
    assert sum(isinstance(r, DecodedVideo) for r in outcomes.values()) == 12
    assert all(r.path == p for p, r in results if isinstance(r, DecodedVideo))


@pytest.mark.slow
def test_crash_kill_hang_and_bug_fail_alone(tmp_path):
    paths = copies(tmp_path, ["a", "crash", "b", "hang", "c", "killed", "d", "bug", "e"])
    with DecodePool(DecodeConfig(workers=2, timeout_s=2), SAMPLING, decode_fn=crash_or_hang) as pool:
        results = dict(pool.imap(paths))
    assert list(results) == paths
    crash, hang, killed, bug = (results[p] for p in (paths[1], paths[3], paths[5], paths[7]))
    assert isinstance(crash, DecodeCrashError) and str(crash) == "decoder crashed (SIGSEGV)"
    assert isinstance(killed, DecodeCrashError) and "SIGKILL" in str(killed)
    assert isinstance(hang, DecodeTimeoutError) and str(hang) == "decoding took longer than 2 s"
    assert type(bug) is CorruptVideoError and str(bug) == "decoding failed: unexpected multi-line failure"
    for good in paths[0::2]:
        assert isinstance(results[good], DecodedVideo), results[good]


def test_memory_limit_fails_the_file_and_the_pool_goes_on(tmp_path):
    paths = copies(tmp_path, ["a", "b"])
    with DecodePool(DecodeConfig(workers=1, memory_limit_mb=512), SAMPLING, decode_fn=allocate_too_much) as pool:
        results = list(pool.imap(paths))
    for _, result in results:
        assert isinstance(result, CorruptVideoError) and "memory" in str(result)


def test_stopping_early_cancels_the_rest(tmp_path):
    paths = copies(tmp_path, [f"v{i}" for i in range(6)])
    with DecodePool(DecodeConfig(workers=1, max_in_flight=2), SAMPLING) as pool:
        first = next(iter(pool.imap(paths)))
    assert first[0] == paths[0] and isinstance(first[1], DecodedVideo)


def test_default_config():
    cfg = DecodeConfig()
    assert cfg.workers >= 1 and cfg.in_flight == 2 * cfg.workers
    assert DecodeConfig(workers=2, max_in_flight=5).in_flight == 5


def test_submission_is_bounded(tmp_path):
    paths = copies(tmp_path, [f"v{i}" for i in range(8)])
    pulled = []

    def source():
        for path in paths:
            pulled.append(path)
            yield path

    with DecodePool(DecodeConfig(workers=1, max_in_flight=2), SAMPLING) as pool:
        results = pool.imap(source())
        next(results)
        assert len(pulled) == 2  # the first result was yielded once two files were in flight
        assert len(list(results)) == 7


SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
if __name__ != "__main__":  # a worker re-running the parent's script (and everything it imports)
    open({marker!r}, "a").write(__name__ + "\\n")
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.workers import DecodeConfig, DecodePool
if __name__ == "__main__":
    with DecodePool(DecodeConfig(workers=2), SamplingConfig(image_size=32)) as pool:
        print(type(next(pool.imap([{clip!r}]))[1]).__name__)
"""


def test_workers_do_not_rerun_the_parents_script(tmp_path):
    # `glscl` and the benchmarks import torch at the top; re-running that in each
    # worker cost seconds of CPU before the first frame (CPython gh-126631).
    clip, marker = copies(tmp_path, ["a"])[0], tmp_path / "reran"
    script = tmp_path / "parent.py"
    script.write_text(SCRIPT.format(repo=str(REPO), marker=str(marker), clip=clip))
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "DecodedVideo"
    assert not marker.exists(), marker.read_text()
