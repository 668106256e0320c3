"""`--engine ray` against the local engine on the same generated clips, on one local Ray instance with 2 CPUs.

Ray is an optional extra: without it these tests skip (the local engine's own tests do not need it).
"""

import logging
import os
import types
import uuid
from pathlib import Path

import numpy as np
import pytest

from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, IndexProgress, run_index
from tests.media import make_broken_files, make_clip
from tests.pipelines.decode_faults import crash_or_hang, must_not_decode
from tests.tiny import tiny_model

if os.environ.get("CI"):  # the test extra installs Ray: in CI a missing Ray is a failure, not a skip
    import ray
    import ray.data  # noqa: F401
else:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'glscl[distributed]')")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'glscl[distributed]')")

REPO = Path(__file__).resolve().parents[2]
# A local Ray instance takes ~45 s to start and warm here: the whole module is out of the fast loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance for the module (starting one costs ~6 s here); its workers import this checkout."""
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def job(videos, index, engine, **kw):
    # Short segments: the 5 s clip becomes 3 units, so the Ray engine has to gather a file's rows.
    return IndexJobConfig(
        paths=[str(videos)], index_dir=index, engine=engine, decode=DecodeConfig(workers=2, timeout_s=30),
        single_unit_max_s=2.0, segment_s=2.0, segment_overlap_s=0.0, **kw,
    )


def numbered_ids(monkeypatch):
    """Video ids 0000..., 0001... in plan order, so two runs over the same folder give the same ids."""
    counter = iter(range(1 << 30))
    monkeypatch.setattr("pipelines.index_plan.uuid", types.SimpleNamespace(uuid4=lambda: uuid.UUID(int=next(counter))))


@pytest.fixture(scope="module")
def both_indexes(tmp_path_factory, local_ray, model):
    """The same folder (good clips, a multi-unit clip, broken files, a decoder crash) indexed by each engine."""
    root = tmp_path_factory.mktemp("engines")
    videos = root / "videos"
    for i, seconds in enumerate((1, 2, 3)):
        make_clip(videos / f"clip{i}.mp4", seconds=seconds, color=(70 * i, 120, 200))
    make_clip(videos / "long.mp4", seconds=5, color=(200, 200, 40))
    make_clip(videos / "crash.mp4", seconds=1, color=(10, 10, 10))
    make_broken_files(videos / "broken")
    summaries = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for engine in ("local", "ray"):
            numbered_ids(monkeypatch)
            summaries[engine] = run_index(
                job(videos, root / engine, engine), model=model, decode_fn=crash_or_hang
            )
    return root, videos, summaries


def rows_by_unit(index):
    units = IndexReader.open(index).units
    order = np.argsort(units.unit_id)
    return units, order


def test_ray_index_equals_local_index(both_indexes):
    root, videos, summaries = both_indexes
    local, distributed = summaries["local"], summaries["ray"]
    assert (distributed.added, distributed.failed, distributed.frames_embedded) == (
        local.added, local.failed, local.frames_embedded
    )
    assert local.added == 4 and local.failed == 1 + 5  # crash.mp4 and the broken .mp4 files (.m4a is not scanned)

    catalogs = {engine: {e.path: e for e in IndexReader.open(root / engine).catalog} for engine in ("local", "ray")}
    assert catalogs["ray"].keys() == catalogs["local"].keys()
    for path, expected in catalogs["local"].items():
        got = catalogs["ray"][path]
        assert (got.status, got.error, got.video_id, got.units) == (
            expected.status, expected.error, expected.video_id, expected.units
        ), path
    assert "SIGSEGV" in catalogs["ray"][str(videos / "crash.mp4")].error
    assert catalogs["ray"][str(videos / "long.mp4")].units == 3

    (a, order_a), (b, order_b) = rows_by_unit(root / "local"), rows_by_unit(root / "ray")
    assert list(a.unit_id[order_a]) == list(b.unit_id[order_b])
    for column in ("video_id", "path", "content_hash", "segment_index", "start_s", "end_s", "num_frames"):
        assert list(getattr(a, column)[order_a]) == list(getattr(b, column)[order_b]), column
    np.testing.assert_array_equal(a.timestamps_s[order_a], b.timestamps_s[order_b])
    for column in ("frame_features", "visual_concepts"):
        np.testing.assert_allclose(
            np.asarray(getattr(a, column)[order_a], dtype=np.float32),
            np.asarray(getattr(b, column)[order_b], dtype=np.float32),
            atol=2e-3, rtol=1e-2, err_msg=column,
        )


def test_ray_rerun_decodes_nothing(both_indexes, model):
    root, videos, summaries = both_indexes
    summary = run_index(job(videos, root / "ray", "ray"), model=model, decode_fn=must_not_decode)
    assert summary.videos_embedded == 0 and summary.failed == 0
    assert summary.failed_not_retried == summaries["ray"].failed


class InterruptAfterFirstCommit(IndexProgress):
    """What Ctrl-C does to the driver: a KeyboardInterrupt in the middle of the run (once)."""

    def __init__(self):
        self.interrupted = False

    def committed(self, generation: int) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def test_interrupted_ray_run_then_rerun_completes_without_duplicates(tmp_path, local_ray, model):
    videos, index = tmp_path / "videos", tmp_path / "index"
    for i in range(6):
        make_clip(videos / f"v{i}.mp4", seconds=1 + i % 2, color=(40 * i, 60, 220 - 30 * i))
    # Rows come back a decode task's files at a time (4): the first commit comes before the last files are back.
    config = job(videos, index, "ray", commit_every=2)
    with pytest.raises(KeyboardInterrupt):
        run_index(config, progress=InterruptAfterFirstCommit(), model=model)
    kept = IndexReader.open(index)
    assert 1 <= len(set(kept.units.video_id)) < 6  # what was staged before Ctrl-C is committed, not more

    summary = run_index(config, model=model)
    units = IndexReader.open(index).units
    assert summary.added == 6 - len(set(kept.units.video_id))
    assert len(set(units.video_id)) == 6 and len(set(units.unit_id)) == len(units.unit_id)
    assert set(units.path) == {str(videos / f"v{i}.mp4") for i in range(6)}
