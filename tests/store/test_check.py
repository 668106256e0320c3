"""check_index / repair_index: each kind of damage is reported and repaired without re-embedding; searches as before."""

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from glscl_index.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError
from glscl_index.store import check
from glscl_index.store.check import check_index, repair_index
from glscl_index.store.lock import WriterLock
from glscl_index.store.manifest import read_manifest
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry
from tests.cli.helpers import REPO
from tests.store.helpers import QUERIES, build_index, indexed, open_writer


def search(root):
    """(unit ids [Q, 10], scores [Q, 10]) of the store's FAISS search, as a searcher would use them."""
    reader = IndexReader.open(root)
    scores, rows = reader.search_keys(QUERIES, 10)
    return reader.units.unit_id[rows], scores


@pytest.fixture
def index(tmp_path):
    manifest = build_index(tmp_path)
    assert check_index(tmp_path).healthy
    return tmp_path, manifest, search(tmp_path)


def truncate(path, keep=None):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if keep is None else keep])


def assert_repaired(root, kind, before):
    report = check_index(root, deep=False)
    assert [p.kind for p in report.problems][:1] == [kind], report.problems
    assert [p.kind for p in check_index(root).problems][:1] == [kind]
    repaired = repair_index(root)
    assert repaired.repaired and repaired.healthy, repaired
    assert check_index(root).healthy
    units, scores = search(root)
    np.testing.assert_array_equal(units, before[0])
    np.testing.assert_allclose(scores, before[1], rtol=1e-6)
    return repaired


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_damaged_search_codes_are_written_again_from_the_shards(index, damage):
    root, manifest, before = index
    codes = root / "shards" / manifest.shards[0].codes
    if damage == "delete":
        codes.unlink()
    else:
        truncate(codes)
    with pytest.raises(IndexCorruptError, match=f"run `glscl check --repair --index {root}`"):
        IndexReader.open(root)
    report = assert_repaired(root, check.FAISS_DAMAGED, before)
    after = read_manifest(root)
    assert after.generation == manifest.generation + 1 and after.shards[0].codes == manifest.shards[0].codes
    assert (root / "shards" / after.shards[0].codes).is_file()
    assert [s.name for s in after.shards] == [s.name for s in manifest.shards] and after.catalog == manifest.catalog
    assert report.generation == after.generation


def test_truncated_arrow_copy_is_written_again_from_its_shard(index):
    root, manifest, before = index
    copy = root / "shards" / manifest.shards[0].name.replace(".parquet", ".arrow")
    truncate(copy, keep=64)
    report = assert_repaired(root, check.COPY_DAMAGED, before)
    assert report.generation is None and read_manifest(root).generation == manifest.generation  # only a copy
    assert copy.stat().st_size > 64


def test_deep_check_finds_an_arrow_copy_that_differs_from_its_shard(index):
    root, manifest, before = index
    copy = root / "shards" / manifest.shards[1].name.replace(".parquet", ".arrow")
    table = pa.ipc.open_file(pa.py_buffer(copy.read_bytes())).read_all()  # not mapped: the file is rewritten below
    features = table.column("frame_features").combine_chunks()
    flipped = pa.FixedSizeListArray.from_arrays(pc.negate(features.flatten()), features.type.list_size)
    table = table.set_column(table.schema.get_field_index("frame_features"), "frame_features", flipped)
    with pa.OSFile(str(copy), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    assert check_index(root, deep=False).healthy  # same rows and columns: only reading them tells
    [problem] = check_index(root).problems
    assert str(problem) == f"{copy.relative_to(root)}: differs from its shard in the rows from 0 on"
    assert repair_index(root, deep=True).healthy and check_index(root).healthy
    np.testing.assert_array_equal(search(root)[0], before[0])


def test_garbled_manifest_falls_back_to_the_previous_one(index):
    root, manifest, before = index
    (root / "manifest.json").write_text('{"generation": 3, "shards": [')
    with pytest.raises(IndexCorruptError, match="glscl check --repair"):
        IndexReader.open(root)
    report = assert_repaired(root, check.MANIFEST_DAMAGED, before)
    assert "manifest.prev.json" in report.repaired[0]
    restored = IndexReader.open(root)
    assert restored.manifest.generation == manifest.generation + 1  # prev (n - 1) + 2: the lost number is skipped
    # The lost generation only recorded the failed file: it is gone from the catalog, so the next run retries it.
    assert sorted(e.path for e in restored.catalog) == sorted(e.path for e in indexed("a", 5) + indexed("b", 4))


def test_deleted_catalog_is_rebuilt_from_the_shards(index):
    root, manifest, before = index
    (root / manifest.catalog).unlink()
    with pytest.raises(IndexCorruptError):
        IndexReader.open(root)
    assert_repaired(root, check.CATALOG_DAMAGED, before)
    catalog = {e.path: e for e in IndexReader.open(root).catalog}
    for expected in indexed("a", 5) + indexed("b", 4):
        entry = catalog.pop(expected.path)
        assert (entry.video_id, entry.size, entry.mtime_ns, entry.content_hash, entry.status, entry.units) == (
            expected.video_id, expected.size, expected.mtime_ns, expected.content_hash, "indexed", expected.units
        )
    assert catalog == {}  # the failed file was only in the lost catalog: the next run retries it


def test_truncated_shard_is_dropped_with_its_videos_catalog_entries(index):
    root, manifest, _ = index
    truncate(root / "shards" / manifest.shards[0].name)
    with pytest.raises(IndexCorruptError, match="glscl check --repair"):
        IndexReader.open(root)
    problems = check_index(root, deep=False).problems
    assert [(p.kind, p.loses_units) for p in problems] == [(check.SHARD_DAMAGED, True)]
    report = repair_index(root)
    assert report.healthy and check_index(root).healthy
    reader = IndexReader.open(root)
    lost = {f"a{i}" for i in range(4)}
    # a4 had only dead rows in the damaged shard: its live units and catalog entry stay.
    assert set(reader.units.video_id) == {"a4", "b0", "b1", "b2", "b3"}
    assert {e.video_id for e in reader.catalog if e.status == "indexed"} == {"a4", "b0", "b1", "b2", "b3"}
    assert not lost & {e.video_id for e in reader.catalog}
    assert "/videos/broken.mp4" in {e.path for e in reader.catalog}  # failed entries are kept
    _, rows = reader.search_keys(QUERIES, 100)
    assert rows.shape[1] == len(reader.units) == 10


def test_deep_check_matches_catalog_and_units(index):
    root, manifest, before = index
    with open_writer(root) as writer:
        writer.set_catalog_entries(indexed("ghost", 1))  # an indexed entry whose video has no units
        writer.remove_catalog_paths(["/videos/b0.mp4"])  # units without an entry
        writer.commit()
    assert check_index(root, deep=False).healthy  # the quick check reads no rows
    assert [p.kind for p in check_index(root).problems] == [check.CATALOG_MISMATCH] * 2
    report = repair_index(root, deep=True)
    assert report.healthy and check_index(root).healthy
    catalog = {e.path: e for e in IndexReader.open(root).catalog}
    assert "/videos/ghost0.mp4" not in catalog and catalog["/videos/b0.mp4"].video_id == "b0"
    np.testing.assert_array_equal(search(root)[0], before[0])


def test_units_whose_path_has_a_newer_entry_are_marked_dead(index):
    root, _, _ = index
    with open_writer(root) as writer:  # the catalog says b0.mp4 failed since; its old units were left behind
        writer.set_catalog_entries([CatalogEntry("/videos/b0.mp4", 9, 9, "", "", "failed", "not a video", 0, 2.0)])
        writer.commit()
    assert [p.kind for p in check_index(root).problems] == [check.CATALOG_MISMATCH]
    report = repair_index(root, deep=True)
    assert report.healthy and any("marked 2 stale units dead" in action for action in report.repaired)
    reader = IndexReader.open(root)
    assert "b0" not in set(reader.units.video_id) and len(reader.units) == 16
    assert {e.path: e.status for e in reader.catalog}["/videos/b0.mp4"] == "failed"


def test_healthy_repair_is_a_no_op_and_respects_the_lock(index):
    root, manifest, _ = index
    report = repair_index(root)
    assert (report.found, report.repaired, report.generation) == ([], [], None)
    lock = WriterLock(root)
    lock.acquire()
    try:
        with pytest.raises(IndexLockedError):
            repair_index(root)
        (root / "shards" / manifest.shards[0].codes).unlink()
        assert repair_index(root, lock_held=True).generation == manifest.generation + 1  # a writer holding the lock
    finally:
        lock.release()
    assert check_index(root).healthy


def test_unrecoverable_and_missing_indexes(tmp_path):
    with pytest.raises(IndexNotFoundError):
        check_index(tmp_path / "none")
    with pytest.raises(IndexNotFoundError):
        repair_index(tmp_path / "none")
    build_index(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    (tmp_path / "manifest.prev.json").write_text("{")
    assert [p.kind for p in check_index(tmp_path).problems] == [check.MANIFEST_DAMAGED] * 2
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        repair_index(tmp_path)


def test_check_does_not_import_torch():
    code = "import sys, cli.check_command, glscl_index.store.check; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
