"""Segments: a commit writes only what it changes; merges follow the tiered policy, never disturb an open
reader, and a SIGKILL during a merge, a segment's commit or the catalog's transaction loses nothing committed
(a commit's merge comes after its own generation is published: a SIGKILL there keeps that one too)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from glscl_index.store.check import check_index
from glscl_index.store.manifest import ShardRef, read_manifest, read_previous_manifest
from glscl_index.store.merge_policy import MergePolicy
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.unit_keys import UnitKeys
from tests.store.helpers import DIMS, make_batch, open_writer

REPO = Path(__file__).resolve().parents[2]
EAGER = MergePolicy(segments_per_tier=2, floor_rows=1)  # two segments of a tier merge at once


def entry(path, video_id, units=1):
    return CatalogEntry(path, 1000, 7, f"h{video_id}", video_id, "indexed", "", units, 1.0)


def build(root, segments=3, rows=10):
    with open_writer(root) as writer:
        writer.policy = MergePolicy(segments_per_tier=100)  # no merge while building
        for seed in range(segments):
            batch = make_batch(rows, video_prefix=f"s{seed}-", seed=seed)
            writer.add_units(batch)
            writer.set_catalog_entries([entry(p, v) for p, v in zip(batch.path, batch.video_id, strict=False)])
            writer.commit()
    return read_manifest(root)


def snapshot(root):
    files = (p for p in root.rglob("*") if p.is_file() and p.name != "writer.lock")
    return {p.relative_to(root): (p.stat().st_mtime_ns, p.stat().st_ino) for p in files}


def ranked(reader, queries):
    _, rows = reader.search_keys(queries, 10)
    return reader.units.unit_id[rows], np.asarray(reader.units.frame_features[rows[:, 0]])


def test_the_policy_merges_a_full_tier_and_segments_with_many_dead_rows():
    policy = MergePolicy(segments_per_tier=4, floor_rows=100)
    small = [ShardRef(f"s{i}", 100, []) for i in range(3)]
    assert policy.select(small) == []
    assert policy.select([*small, ShardRef("s3", 150, [])]) == [*small, ShardRef("s3", 150, [])]
    big = [ShardRef(f"b{i}", 400, []) for i in range(3)]  # tier 1: 400-1599 rows
    assert policy.select([*big, *small]) == []
    doomed = ShardRef("d", 100, list(range(31)))
    assert policy.select([*big, doomed]) == [doomed]
    assert policy.tier(99) == 0 and policy.tier(400) == 1 and policy.tier(1600) == 2


def test_a_commit_writes_only_its_new_segment_and_its_catalog_rows(tmp_path):
    before_manifest = build(tmp_path)
    before = snapshot(tmp_path)
    with open_writer(tmp_path) as writer:
        batch = make_batch(2, video_prefix="new", seed=9)
        writer.add_units(batch)
        writer.set_catalog_entries([entry(p, v) for p, v in zip(batch.path, batch.video_id, strict=False)])
        writer.remove_videos(["s0-3"])
        manifest = writer.commit()
    after = snapshot(tmp_path)
    changed = {name for name, stamp in after.items() if before.get(name) != stamp}
    new_shard = manifest.shards[-1]
    assert not new_shard.copy  # two rows: no Arrow copy (store/merge_policy.py)
    assert changed == {
        Path("manifest.json"), Path("manifest.prev.json"), Path("shards") / new_shard.name,
        Path("shards") / new_shard.codes, Path(manifest.catalog),  # the catalog's database, changed in place
    }
    assert manifest.catalog == before_manifest.catalog
    assert manifest.shards[0].dead == [3] and len(IndexReader.open(tmp_path).units) == 31


def test_a_reader_open_during_a_merge_keeps_answering_from_its_generation(tmp_path):
    build(tmp_path, segments=4)
    reader = IndexReader.open(tmp_path)
    queries = np.random.default_rng(3).standard_normal((4, DIMS.key_dim)).astype(np.float32)
    ids, features = ranked(reader, queries)
    with open_writer(tmp_path) as writer:
        writer.policy = EAGER
        writer.remove_videos(["s1-0"])
        merged = writer.commit()
        writer.add_units(make_batch(3, video_prefix="late", seed=7))
        writer.commit()  # the merged-away segments are no longer named by any manifest: deleted
    assert len(merged.shards) < 4
    assert not any((tmp_path / "shards" / s.name).exists() for s in reader.manifest.shards)
    again_ids, again_features = ranked(reader, queries)
    assert np.array_equal(again_ids, ids) and np.array_equal(again_features, features)
    assert len(reader.catalog) == 40
    fresh = IndexReader.open(tmp_path)
    assert len(fresh.units) == 42 and "s1-0" not in set(fresh.units.video_id)


KILLER = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from glscl_index.store import catalog as catalog_module
from glscl_index.store import writer as writer_module
from glscl_index.store import segment_codes
from glscl_index.store.merge_policy import MergePolicy
from glscl_index.store.schema import CatalogEntry
from tests.store.helpers import make_batch, open_writer

root, moment = sys.argv[1], sys.argv[2]
calls = []

def die():
    os.kill(os.getpid(), signal.SIGKILL)

original_write_shard = writer_module.write_shard
shards = []
def write_shard(path, batches, dims, copy=True):
    shards.append(path)
    dying = moment == "segment" or (moment == "merge" and len(shards) == 2)
    def rows():
        for batch in batches:
            yield batch
            if dying:
                die()  # half-way: the first batch is in the temp files
    return original_write_shard(path, rows(), dims, copy)
writer_module.write_shard = write_shard

original_write_codes = segment_codes.ann.write_codes
def write_codes(path, codes):
    original_write_codes(path, codes)
    if moment == "codes":
        die()
segment_codes.ann.write_codes = write_codes

original_row = catalog_module._row
def row(*args):
    calls.append("row")
    if moment == "catalog" and calls.count("row") == 2:
        die()  # inside the catalog's transaction: its updates are made, its inserts not, nothing committed
    return original_row(*args)
catalog_module._row = row

original_publish = writer_module.publish_manifest
def publish_manifest(*args):
    if moment == "publish":
        die()
    original_publish(*args)
writer_module.publish_manifest = publish_manifest

with open_writer(root) as writer:
    writer.policy = MergePolicy(segments_per_tier=2, floor_rows=1)
    writer.add_units(make_batch(4, video_prefix="new", seed=5))
    writer.add_units(make_batch(4, video_prefix="new2", seed=6))
    writer.remove_videos(["s0-1"])
    writer.set_catalog_entries(
        [CatalogEntry(f"/videos/{{v}}.mp4", 1, 7, "h", v, "indexed", "", 1, 1.0)
         for v in ("new0", "new1", "new2", "new3", "new20", "new21", "new22", "new23")]
        + [CatalogEntry("/videos/s1-0.mp4", 2, 8, "h2", "s1-0", "indexed", "", 1, 2.0)]
    )
    writer.remove_catalog_paths(["/videos/s0-1.mp4"])
    writer.commit()
print("not killed")
"""


def kill_writer(root, moment):
    script = KILLER.format(repo=str(REPO))
    args = [sys.executable, "-c", script, str(root), moment]
    killed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stdout + killed.stderr


def swept(root):
    """No temp file, and no file that neither the published nor the previous generation names."""
    on_disk = {f"shards/{n}" for n in os.listdir(root / "shards")}
    named = read_manifest(root).files() | read_previous_manifest(root).files()
    return not list(root.rglob("*.tmp")) and on_disk <= named


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["segment", "codes", "catalog", "publish"])
def test_sigkill_during_a_commit_loses_nothing_committed(tmp_path, moment):
    committed = build(tmp_path, segments=2)
    reader = IndexReader.open(tmp_path)
    order = np.argsort(reader.units.unit_id)
    before = reader.units.unit_id[order], UnitKeys(reader.units, DIMS)[:][order]
    catalog = reader.catalog
    kill_writer(tmp_path, moment)
    assert read_manifest(tmp_path) == committed
    assert check_index(tmp_path).healthy
    reader = IndexReader.open(tmp_path)
    order = np.argsort(reader.units.unit_id)
    assert np.array_equal(reader.units.unit_id[order], before[0])
    np.testing.assert_array_equal(UnitKeys(reader.units, DIMS)[:][order], before[1])
    assert reader.catalog == catalog
    with open_writer(tmp_path) as writer:  # the next run commits, and sweeps what the dead one left
        assert sorted(writer.catalog.values(), key=lambda e: e.path) == catalog  # the dead commit's rows are gone
        writer.policy = EAGER
        writer.add_units(make_batch(2, video_prefix="after", seed=8))
        writer.commit()
    assert swept(tmp_path)
    assert len(IndexReader.open(tmp_path).units) == 22 and IndexReader.open(tmp_path).catalog == catalog


@pytest.mark.slow
def test_sigkill_during_a_merge_keeps_the_commit_published_before_it(tmp_path):
    committed = build(tmp_path, segments=2)
    kill_writer(tmp_path, "merge")  # the merge is the commit's upkeep, after its own generation
    published = read_manifest(tmp_path)
    assert published.generation == committed.generation + 1 and check_index(tmp_path).healthy
    reader = IndexReader.open(tmp_path)
    videos = set(reader.units.video_id)
    assert len(reader.units) == 20 - 1 + 8 and "s0-1" not in videos and {"new0", "new3", "new20"} <= videos
    catalog = {e.path: e for e in reader.catalog}
    assert "/videos/s0-1.mp4" not in catalog and catalog["/videos/s1-0.mp4"].size == 2 and "/videos/new3.mp4" in catalog
    with open_writer(tmp_path) as writer:  # nothing staged: the next run's commit does the merge the dead one left
        writer.policy = EAGER
        merged = writer.commit()
    assert merged.generation == published.generation + 1 and len(merged.shards) < len(published.shards)
    assert swept(tmp_path)
    again = IndexReader.open(tmp_path)
    assert sorted(again.units.unit_id) == sorted(reader.units.unit_id) and again.catalog == reader.catalog
