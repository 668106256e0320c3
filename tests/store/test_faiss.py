"""The persisted FAISS index: file per generation, row order, damage, fallback, type choice, approximate recall;
format-1 indexes."""

import json

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glscl_index.errors import IndexCorruptError
from glscl_index.store import faiss_index, shards
from glscl_index.store.manifest import FORMAT_VERSION, Manifest, ShardRef
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry, IndexDims
from glscl_index.store.unit_keys import UnitKeys
from tests.store.helpers import DIMS, assert_batches_equal, make_batch, open_writer

WIDE = IndexDims(frames=2, dim=64, concepts=0, key_dim=64)


def keys_of(units, dims=DIMS):
    return UnitKeys(units, dims)[:]


def clustered_batch(n, seed, prefix="c"):
    """Units whose keys ``[n, 64]`` lie around 50 centres: every frame of a unit is its centre plus noise,
    so neighbours are meaningful, as with real keys."""
    rng = np.random.default_rng(seed)
    batch = make_batch(n, video_prefix=prefix, seed=seed, dims=WIDE)
    centres = np.random.default_rng(0).standard_normal((50, WIDE.dim)).astype(np.float32)
    keys = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, WIDE.dim)).astype(np.float32)
    batch.frame_features = np.repeat(keys[:, None, :], WIDE.frames, axis=1).astype(np.float16)
    return batch


def test_faiss_file_follows_generations_and_reader_row_order(tmp_path):
    with open_writer(tmp_path) as writer:
        for seed in range(3):
            writer.add_units(make_batch(30, video_prefix=f"s{seed}-", seed=seed))
            writer.commit()
        writer.remove_videos(["s0-1", "s2-5"])
        manifest = writer.commit()
    reader = IndexReader.open(tmp_path)
    assert manifest.faiss_file and (tmp_path / manifest.faiss_file).exists()
    stored = reader.key_index
    # Row i of the FAISS index is unit i of the reader: same keys, same order, dead units gone.
    assert np.array_equal(stored.reconstruct_n(0, stored.ntotal), keys_of(reader.units))
    assert {"s0-1", "s2-5"}.isdisjoint(set(reader.units.video_id))
    # Old generations' files are garbage-collected like old shards (the previous generation's is kept).
    previous = json.loads((tmp_path / "manifest.prev.json").read_text())["faiss_file"]
    assert {p.name for p in tmp_path.glob("faiss-*.index")} == {manifest.faiss_file, previous}


def test_missing_or_damaged_faiss_file_is_a_clear_error(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(20))
        manifest = writer.commit()
    path = tmp_path / manifest.faiss_file
    content = path.read_bytes()
    path.write_bytes(content[:50])
    with pytest.raises(IndexCorruptError, match="FAISS index .* is damaged"):
        IndexReader.open(tmp_path)
    path.unlink()
    with pytest.raises(IndexCorruptError, match=f"{manifest.faiss_file} named by the manifest is missing"):
        IndexReader.open(tmp_path)
    other = make_batch(5, seed=4)
    index = faiss.IndexFlatIP(DIMS.key_dim)
    index.add(keys_of(other))
    faiss.write_index(index, str(path))  # a readable index of the wrong size
    with pytest.raises(IndexCorruptError, match="holds 5 keys"):
        IndexReader.open(tmp_path)


def test_index_without_faiss_file_builds_one_in_memory(tmp_path):
    """Format-1 indexes name no FAISS file: the reader builds it from the units' keys."""
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(40))
        writer.commit()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["faiss_file"] = ""
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    reader = IndexReader.open(tmp_path)
    keys = keys_of(reader.units)
    _, rows = reader.search_keys(keys[:5], 3)
    assert rows[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_auto_type_fits_the_size():
    assert faiss_index.choose_type(100_000, 512, "auto") == "flat"
    assert faiss_index.choose_type(1_000_000, 512, "auto") == "flat"  # zero-shot ViT-B/32 keys: 2 GiB
    assert faiss_index.choose_type(100_000, 4608, "auto") == "flat"
    assert faiss_index.choose_type(500_000, 4608, "auto") == "flat16"
    assert faiss_index.choose_type(1_000_000, 4608, "auto") == "flat16"  # trained ViT-B/32 keys: 9.2 GB
    assert faiss_index.choose_type(3_000_000, 4608, "auto") == "ivfpq"
    assert faiss_index.choose_type(10, 4608, "ivf") == "ivf"
    assert faiss_index.choose_type(10, 4608, "hnsw") == "hnsw"
    with pytest.raises(ValueError, match="unknown FAISS index type"):
        faiss_index.choose_type(10, 16, "lsh")


@pytest.mark.parametrize(("kind", "threshold"), [("flat16", 0.99), ("hnsw", 0.95), ("ivf", 0.9)])
def test_approximate_types_recall_against_flat(tmp_path, kind, threshold):
    """Forced approximate type on 4000 clustered keys, built in two commits (the second extends the
    first's index): recall@10 of its top-200 candidates against exact flat search stays above threshold."""
    with open_writer(tmp_path, dims=WIDE, faiss_type=kind) as writer:
        writer.add_units(clustered_batch(2500, seed=1, prefix="a"))
        writer.commit()
        writer.add_units(clustered_batch(1500, seed=2, prefix="b"))
        writer.commit()
    reader = IndexReader.open(tmp_path)
    assert faiss_index.kind_of(reader.key_index) == kind and reader.key_index.ntotal == 4000
    keys = keys_of(reader.units, WIDE)
    queries = keys[::40] + 0.3 * np.random.default_rng(5).standard_normal((100, WIDE.key_dim)).astype(np.float32)
    exact = np.argsort(-(queries @ keys.T), axis=1)[:, :10]
    _, candidates = reader.search_keys(queries, 200)
    recall = np.mean([len(set(e) & set(c)) / 10 for e, c in zip(exact, candidates, strict=False)])
    assert recall >= threshold, f"{kind} recall@10 in 200 candidates = {recall:.3f}"


def test_format_1_index_with_parquet_shard_is_read_and_upgraded(tmp_path):
    """An index written before format 2 (Parquet shard with a stored key column, no FAISS file) is searched,
    then extended by a writer."""
    old = make_batch(12, video_prefix="old")
    table = pa.Table.from_batches([shards._record_batch(old, shards.shard_schema(DIMS))])
    stored_keys = np.random.default_rng(3).standard_normal(12 * DIMS.key_dim).astype(np.float32)
    table = table.append_column("global_keys", pa.FixedSizeListArray.from_arrays(stored_keys, DIMS.key_dim))
    (tmp_path / "shards").mkdir()
    pq.write_table(table, tmp_path / "shards" / "shard-000001-a.parquet")
    manifest = Manifest(
        1, "fp", {"m": 1}, DIMS, "auto", [ShardRef("shard-000001-a.parquet", 12, [3])], "", format_version=1
    )
    (tmp_path / "manifest.json").write_text(manifest.to_json())
    reader = IndexReader.open(tmp_path)
    assert_batches_equal(reader.units, old.take(np.array([i for i in range(12) if i != 3])))
    assert reader.search_keys(keys_of(old)[:1], 1)[1][0, 0] == 0
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(5, video_prefix="new", seed=1))
        upgraded = writer.commit()
    reader = IndexReader.open(tmp_path)
    assert upgraded.format_version == FORMAT_VERSION and upgraded.faiss_file and len(reader.units) == 16
    assert np.array_equal(reader.key_index.reconstruct_n(0, 16), keys_of(reader.units))


def test_catalog_only_commit_reuses_the_faiss_file(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(4))
        first = writer.commit()
        writer.set_catalog_entries([CatalogEntry("/x.mp4", 0, 0, "", "", "failed", "empty file (0 bytes)", 0, 0.0)])
        second = writer.commit()
    assert second.generation == first.generation + 1
    assert second.faiss_file == first.faiss_file and (tmp_path / first.faiss_file).is_file()


def test_format_2_faiss_file_is_not_used_and_is_replaced_at_the_next_commit(tmp_path):
    """Format-2 FAISS files hold keys scaled the old way: readers build the index from the units instead,
    and the next commit (even a catalog-only one) writes a format-3 file."""
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(20))
        written = writer.commit()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 2
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    stale = faiss.IndexFlatIP(DIMS.key_dim)
    stale.add(np.random.default_rng(8).standard_normal((20, DIMS.key_dim)).astype(np.float32))
    faiss.write_index(stale, str(tmp_path / written.faiss_file))
    reader = IndexReader.open(tmp_path)
    assert np.array_equal(reader.key_index.reconstruct_n(0, 20), keys_of(reader.units))
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([CatalogEntry("/x.mp4", 0, 0, "", "", "failed", "empty file (0 bytes)", 0, 0.0)])
        upgraded = writer.commit()
    assert upgraded.format_version == FORMAT_VERSION and upgraded.faiss_file != written.faiss_file
    reader = IndexReader.open(tmp_path)
    assert np.array_equal(reader.key_index.reconstruct_n(0, 20), keys_of(reader.units))
