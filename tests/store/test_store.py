"""Index storage: round trip, deletions and compaction, candidates vs brute force, lock, errors."""

import json
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from glscl_index.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
)
from glscl_index.store.check import COPY_DAMAGED, check_index
from glscl_index.store.manifest import read_previous_manifest
from glscl_index.store.merge_policy import MergePolicy
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry, IndexDims
from glscl_index.store.shards import as_stored
from glscl_index.store.unit_keys import UnitKeys
from tests.store.helpers import DIMS, assert_batches_equal, indexed, make_batch, open_writer


def test_round_trip_is_exact(tmp_path):
    batch = make_batch(10)
    with open_writer(tmp_path) as writer:
        writer.add_units(batch)
        writer.set_catalog_entries([CatalogEntry("/videos/x.mp4", 1, 2, "h", "v0", "indexed", "", 1, 3.0)])
        manifest = writer.commit()
    reader = IndexReader.open(tmp_path)
    assert manifest.generation == 2 and reader.manifest.generation == 2  # the rows, then their first tuning
    assert read_previous_manifest(tmp_path).live_units == 10 and read_previous_manifest(tmp_path).ann.recall == -1
    assert_batches_equal(reader.units, batch)
    assert reader.catalog[0].path == "/videos/x.mp4"


def test_zero_concepts_round_trip(tmp_path):
    dims = IndexDims(frames=4, dim=16, concepts=0, key_dim=16)
    batch = make_batch(5, dims=dims)
    with open_writer(tmp_path, dims=dims) as writer:
        writer.add_units(batch)
        writer.commit()
    assert IndexReader.open(tmp_path).units.visual_concepts.shape == (5, 0, 16)


def test_removed_videos_vanish_and_compaction_keeps_live_rows(tmp_path):
    batch = make_batch(20, units_per_video=2)
    with open_writer(tmp_path) as writer:
        writer.add_units(batch)
        writer.commit()
        writer.remove_videos([f"v{i}" for i in range(5)])  # 10 of 20 rows dead: over the compaction threshold
        manifest = writer.commit()
    reader = IndexReader.open(tmp_path)
    assert len(manifest.shards) == 1 and manifest.shards[0].dead == []  # rewritten without dead rows
    live = np.flatnonzero(~np.isin(batch.video_id, [f"v{i}" for i in range(5)]))
    assert_batches_equal(reader.units, batch.take(live))
    _, rows = reader.search_keys(UnitKeys(batch, DIMS)[:], 50)
    assert set(reader.units.video_id[rows[rows >= 0]]) <= set(batch.video_id[live])


def test_search_keys_matches_brute_force_across_shards(tmp_path):
    with open_writer(tmp_path) as writer:
        for seed in range(3):
            writer.add_units(make_batch(30, video_prefix=f"s{seed}-", seed=seed))
            writer.commit()
        writer.remove_videos(["s1-3"])
        writer.commit()
    reader = IndexReader.open(tmp_path)
    queries = np.random.default_rng(9).standard_normal((4, DIMS.key_dim)).astype(np.float32)
    scores, rows = reader.search_keys(queries, 10)
    # The flat index scans float16 keys; the exact rerank after it uses the float32 ones.
    brute = queries @ UnitKeys(reader.units, DIMS)[:].astype(np.float16).astype(np.float32).T
    expected = np.argsort(-brute, axis=1)[:, :10]
    assert [set(r) for r in rows] == [set(e) for e in expected]
    assert "s1-3" not in set(reader.units.video_id)
    _, everything = reader.search_keys(queries, 1000)
    assert everything.shape[1] == len(reader.units)


def _hold_lock(root, ready):
    held = open_writer(root)  # the lock lives as long as this writer object
    ready.set()
    time.sleep(60)
    held.close()


def test_second_writer_is_refused_until_the_holder_dies(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(tmp_path, ready))
    holder.start()
    assert ready.wait(30)
    with pytest.raises(IndexLockedError, match=str(holder.pid)):
        open_writer(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    open_writer(tmp_path).close()


def test_fingerprint_mismatch_and_rebuild(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(3))
        writer.commit()
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        open_writer(tmp_path, fingerprint="other")
    with pytest.raises(IndexMismatchError):
        IndexReader.open(tmp_path, expected_fingerprint="other")
    with open_writer(tmp_path, fingerprint="other", rebuild=True) as writer:
        assert len(IndexReader.open(tmp_path).units) == 3  # old generation readable until the commit
        batch = make_batch(2, video_prefix="n")
        batch.fingerprint = "other"
        writer.add_units(batch)
        writer.commit()
    reader = IndexReader.open(tmp_path)
    assert reader.manifest.fingerprint == "other" and len(reader.units) == 2


def test_missing_and_damaged_indexes(tmp_path):
    with pytest.raises(IndexNotFoundError):
        IndexReader.open(tmp_path / "nothing")
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(3))
        manifest = writer.commit()
    shard = tmp_path / "shards" / manifest.shards[0].name
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(IndexCorruptError, match="damaged"):
        IndexReader.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{garbled")
    with pytest.raises(IndexCorruptError, match="manifest.json"):
        IndexReader.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"generation": 1}))
    with pytest.raises(IndexCorruptError):
        IndexReader.open(tmp_path)


def _commit_forever(root, marker_start):
    writer = open_writer(root)
    marker = marker_start
    while True:
        writer.remove_videos(list(set(IndexReader.open(root).units.video_id)))
        writer.add_units(make_batch(8, video_prefix=f"g{marker}", units_per_video=8, marker=float(marker)))
        writer.set_catalog_entries(
            [CatalogEntry("/videos/only.mp4", marker, 0, "h", f"g{marker}", "indexed", "", 8, 0.0)]
        )
        writer.commit()
        marker += 1


@pytest.mark.slow
def test_sigkill_during_commits_leaves_a_consistent_generation(tmp_path):
    """Kill a writer that commits in a tight loop at random instants; every survivor opens consistently."""
    rng = np.random.default_rng(0)
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(8, video_prefix="g0", units_per_video=8, marker=0.0))
        writer.set_catalog_entries([CatalogEntry("/videos/only.mp4", 0, 0, "h", "g0", "indexed", "", 8, 0.0)])
        writer.commit()
    marker = 1
    for _ in range(6):
        child = multiprocessing.Process(target=_commit_forever, args=(tmp_path, marker))
        child.start()
        time.sleep(float(rng.uniform(0.3, 1.2)))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        reader = IndexReader.open(tmp_path)
        units = reader.units
        assert len(units) == 8, "one generation holds exactly one video of 8 units"
        (video,) = set(units.video_id)
        generation_marker = int(video[1:-1])  # ids are f"g{marker}{video index 0}"
        # Every row of the generation carries the same marker, and the catalog agrees with the rows.
        means = np.asarray(units.frame_features, dtype=np.float32).mean(axis=(1, 2))
        written = make_batch(8, video_prefix="g", units_per_video=8, marker=float(generation_marker))
        expected = as_stored(written.frame_features).astype(np.float32).mean(axis=(1, 2))
        np.testing.assert_allclose(means, expected, rtol=1e-6)
        assert reader.catalog[0].size == generation_marker
        marker = generation_marker + 1000
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([CatalogEntry("/videos/other.mp4", 1, 0, "h", "x", "failed", "bad", 0, 0.0)])
        writer.commit()
    assert not list(tmp_path.glob("**/*.tmp")), "the next writer removes crashed writers' temp files"


def _read_repeatedly(root, seconds, errors):
    end = time.time() + seconds
    while time.time() < end:
        try:
            reader = IndexReader.open(root)
            means = np.asarray(reader.units.frame_features, dtype=np.float32).mean(axis=(1, 2))
            if len(reader.units) != 8 or np.ptp(np.round(means)) != 0:
                errors.put(f"mixed generation: {len(reader.units)} units, {sorted(set(reader.units.video_id))}")
        except Exception as exc:  # any failure to read is what this test looks for
            errors.put(repr(exc))


@pytest.mark.slow
def test_reader_sees_whole_generations_while_writer_commits(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(8, video_prefix="g0", units_per_video=8, marker=0.0))
        writer.commit()
    errors = multiprocessing.Queue()
    reader = multiprocessing.Process(target=_read_repeatedly, args=(tmp_path, 3.0, errors))
    writer = multiprocessing.Process(target=_commit_forever, args=(tmp_path, 1))
    reader.start()
    writer.start()
    reader.join()
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    assert errors.empty(), errors.get()


def test_shards_are_parquet_with_a_mapped_copy_that_is_only_a_copy(tmp_path):
    import pyarrow.parquet as pq

    with open_writer(tmp_path) as writer:
        writer.policy = MergePolicy(copy_min_rows=5)
        writer.add_units(make_batch(5))
        manifest = writer.commit()
    shard = tmp_path / "shards" / manifest.shards[0].name
    assert shard.suffix == ".parquet" and shard.with_suffix(".arrow").is_file()
    table = pq.read_table(shard)  # the record: any Parquet reader sees every column
    assert table.num_rows == 5 and {"frame_features", "visual_concepts", "fingerprint"} <= set(table.column_names)
    assert "global_keys" not in table.column_names  # derived from the features (store/unit_keys.py)
    expected = np.asarray(IndexReader.open(tmp_path).units.frame_features)
    for damage in ("truncate", "remove"):
        copy = shard.with_suffix(".arrow")
        if damage == "truncate":
            copy.write_bytes(copy.read_bytes()[:64])
        else:
            copy.unlink()
        np.testing.assert_array_equal(np.asarray(IndexReader.open(tmp_path).units.frame_features), expected)


def test_stacked_rows_read_any_row_order_across_float16_and_int8_parts():
    from glscl_index.store.schema import StackedRows
    from glscl_index.store.shards import quantize

    rng = np.random.default_rng(3)
    old = rng.standard_normal((5, 3, 4)).astype(np.float16)  # a format-3 part: float16, no scales
    values = rng.standard_normal((7, 3, 4)).astype(np.float32)
    codes, scales = quantize(values)
    live = np.array([0, 2, 3, 4, 5, 6, 8, 9, 11])  # physical rows kept (dead ones skipped)
    stacked = StackedRows([old, codes], live, scales=[None, scales])
    expected = np.concatenate([old.astype(np.float32), codes.astype(np.float32) * scales[..., None]])[live]
    for order in (np.arange(9), np.array([8, 0, 5, 1, 7, 2]), np.array([3, 3, 0]), np.array([], np.int64)):
        np.testing.assert_array_equal(stacked[order], expected[order])
    np.testing.assert_array_equal(stacked[-1], expected[-1])


def test_features_are_read_from_the_files_with_the_same_values_as_through_the_maps(tmp_path):
    """A reader reads candidate rows from the shards' Arrow copies with pread (no page faults), across segments,
    in any order and in runs of adjacent rows, and gets what the memory maps hold; a shard without its copy
    is read into memory and still answers."""
    from glscl_index.store.schema import StackedRows

    with open_writer(tmp_path) as writer:
        writer.policy = MergePolicy(copy_min_rows=40)
        for seed in range(3):
            writer.add_units(make_batch(40, video_prefix=f"s{seed}-", seed=seed))
            writer.commit()
        writer.add_units(make_batch(6, video_prefix="small-", seed=4))  # under copy_min_rows: no copy
        writer.remove_videos(["s1-3", "s2-0", "small-1"])
        manifest = writer.commit()
    assert [s.copy for s in manifest.shards] == [True, True, True, False]
    assert not (tmp_path / "shards" / manifest.shards[3].name).with_suffix(".arrow").exists()
    assert all(p.kind != COPY_DAMAGED for p in check_index(tmp_path).problems)  # no catalog here: its problem only
    units = IndexReader.open(tmp_path).units
    assert len(units) == 123
    for name in ("frame_features", "visual_concepts"):
        column = getattr(units, name)
        assert column.files is not None  # the pread path is the one searched, beside the small segment's rows
        through_maps = StackedRows(column.parts, column._rows, scales=column.scales)
        assert through_maps.files is None
        rng = np.random.default_rng(7)
        for rows in (np.arange(len(units)), rng.permutation(len(units))[:50], np.array([100, 3, 4, 5, 3, 122, 118])):
            np.testing.assert_array_equal(column[rows], through_maps[rows])
    (tmp_path / "shards" / manifest.shards[0].name).with_suffix(".arrow").unlink()
    reopened = IndexReader.open(tmp_path).units
    np.testing.assert_array_equal(np.asarray(reopened.frame_features), np.asarray(units.frame_features))


def test_a_reader_whose_maps_are_populated_copies_the_same_rows_from_them(tmp_path, monkeypatch):
    """Once a reader's Arrow copies are mapped page by page (a server's reader), candidate rows are copied from the
    maps instead of read with pread, with the same values, also while only some copies are done; copies over half
    the machine's memory are left to pread."""
    with open_writer(tmp_path) as writer:
        writer.policy = MergePolicy(copy_min_rows=40)
        for seed in range(3):
            writer.add_units(make_batch(40, video_prefix=f"s{seed}-", seed=seed))
            writer.commit()
        writer.add_units(make_batch(6, video_prefix="small-", seed=4))  # no copy: held in memory
        writer.remove_videos(["s1-3", "s2-0"])
        writer.commit()
    units = IndexReader.open(tmp_path).units
    expected = {name: np.asarray(getattr(units, name)) for name in ("frame_features", "visual_concepts")}
    reader = IndexReader.open(tmp_path)
    files = reader.units.frame_features.open_files
    assert len(files) == 3 and not any(f.populated for f in files)
    rows = np.array([120, 3, 4, 5, 3, 41, 80, 79, 118, 0])
    files[1].populate()  # one copy done, the others still read with pread
    assert [f.populated for f in files] == [False, True, False]
    preads = []
    monkeypatch.setattr(os, "preadv", lambda fd, buffers, at: preads.append(at) or real_preadv(fd, buffers, at))
    for name in ("frame_features", "visual_concepts"):
        np.testing.assert_array_equal(getattr(reader.units, name)[rows], expected[name][rows])
    assert preads  # the unpopulated copies' rows
    reader.populate_maps().join()
    assert all(f.populated for f in files)
    preads.clear()
    for name in ("frame_features", "visual_concepts"):
        column = getattr(reader.units, name)
        np.testing.assert_array_equal(column[rows], expected[name][rows])
        np.testing.assert_array_equal(np.asarray(column), expected[name])
    assert not preads  # every row from a map or the small segment's memory
    monkeypatch.setattr(os, "sysconf", lambda name: 1 if name == "SC_PHYS_PAGES" else 4096)
    assert IndexReader.open(tmp_path).populate_maps() is None


real_preadv = os.preadv


def test_info_counts_the_rows_of_segments_without_a_copy_in_reader_memory(tmp_path):
    """A small segment's int8 features are held by the reader (no Arrow copy to map): `glscl info` counts them."""
    from glscl_index.store.stats import index_stats

    memory = {}
    for copy_min_rows in (0, 1000):
        with open_writer(tmp_path / str(copy_min_rows)) as writer:
            writer.policy = MergePolicy(copy_min_rows=copy_min_rows)
            writer.add_units(make_batch(12))
            writer.set_catalog_entries(indexed("v", 12, units_per_video=1))
            writer.commit()
        memory[copy_min_rows] = index_stats(tmp_path / str(copy_min_rows)).memory_bytes
    assert memory[1000] - memory[0] == 12 * (DIMS.frames + DIMS.concepts) * DIMS.dim
