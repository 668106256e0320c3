"""The candidate index: codes per segment, the kind chosen by size, the tuner's recall on clustered and
isotropic keys, tombstones, damage, and indexes written before segments had codes (formats 1-3)."""

import json
import time
from dataclasses import replace
from types import SimpleNamespace

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glscl_index.errors import IndexCorruptError
from glscl_index.store import ann, ann_state, shards, tuning_queries
from glscl_index.store.manifest import FORMAT_VERSION, Manifest, ShardRef, read_manifest
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry, IndexDims
from glscl_index.store.stats import index_stats
from glscl_index.store.unit_keys import UnitKeys
from tests.store.helpers import DIMS, assert_batches_equal, make_batch, open_writer

WIDE = IndexDims(frames=2, dim=64, concepts=0, key_dim=64)


def keys_of(units, dims=DIMS):
    return UnitKeys(units, dims)[:]


def keyed_batch(keys, prefix, seed):
    """Units whose derived keys are ``keys`` ``[n, 64]`` normalised (zero-shot keys are the mean frame)."""
    batch = make_batch(len(keys), video_prefix=prefix, seed=seed, dims=WIDE)
    batch.frame_features = np.repeat(keys[:, None, :], WIDE.frames, axis=1).astype(np.float16)
    batch.num_frames = np.full(len(keys), WIDE.frames, np.int32)
    return batch


def clustered_keys(n, seed):
    """Anisotropic, clustered keys: a shared mean direction, a power-law spectrum, 60 clusters of Zipf sizes."""
    rng = np.random.default_rng(seed)
    layout = np.random.default_rng(0)
    scales = (np.arange(1, WIDE.dim + 1) ** -0.8).astype(np.float32)
    centres = layout.standard_normal((60, WIDE.dim)).astype(np.float32) * scales * 3
    sizes = 1.0 / np.arange(1, 61)
    cluster = rng.choice(60, size=n, p=sizes / sizes.sum())
    mean = np.zeros(WIDE.dim, np.float32)
    mean[0] = 4.0
    return mean + centres[cluster] + rng.standard_normal((n, WIDE.dim)).astype(np.float32) * scales


def isotropic_keys(n, seed):
    return np.random.default_rng(seed).standard_normal((n, WIDE.dim)).astype(np.float32)


def held_out_recall(reader, queries):
    """Recall of the exact key top 10 among the candidates the searcher would rerank, on queries the tuner never saw."""
    keys = keys_of(reader.units, WIDE)
    exact = np.argsort(-(queries @ keys.T), axis=1)[:, :10]
    _, found = reader.search_keys(queries, max(200, reader.manifest.ann.candidates_for(len(reader.units))))
    return np.mean([len(set(e) & set(f)) / 10 for e, f in zip(exact, found, strict=False)])


def test_kind_follows_the_collection_size():
    assert ann_state.wanted_kind("auto", 29_000, 4608) == "flat"  # trained ViT-B/32: 256 MiB of float16 keys
    assert ann_state.wanted_kind("auto", 30_000, 4608) == "pqscan"
    assert ann_state.wanted_kind("auto", 260_000, 512) == "flat"  # zero-shot keys are 9x narrower
    assert ann_state.wanted_kind("flat16", 10**7, 4608) == "flat"  # older names keep their meaning
    assert ann_state.wanted_kind("pqscan", 10, 64) == "pqscan"
    assert ann_state.wanted_kind("auto", 20_000, 4608, current="pqscan") == "pqscan"  # back to flat below half only
    assert ann_state.wanted_kind("auto", 14_000, 4608, current="pqscan") == "flat"
    with pytest.raises(ValueError, match="unknown FAISS index type"):
        ann_state.resolve_choice("lsh")
    state = ann_state.AnnState(kind="pqscan", trained_units=1000, lists=16)
    assert not ann_state.needs_training(state, "pqscan", 8000) and ann_state.needs_training(state, "pqscan", 8001)
    assert ann_state.needs_training(replace(state, lists=0), "pqscan", 1000)  # an encoder from before lists


def test_codes_follow_segments_and_search_matches_brute_force_past_tombstones(tmp_path):
    with open_writer(tmp_path) as writer:
        for seed in range(3):
            writer.add_units(make_batch(30, video_prefix=f"s{seed}-", seed=seed))
            first = writer.commit()
        writer.remove_videos(["s0-1", "s1-3", "s2-29"])
        second = writer.commit()
    assert all(s.codes and (tmp_path / "shards" / s.codes).is_file() for s in second.shards)
    assert [s.codes for s in second.shards] == [s.codes for s in first.shards]  # deletes write no codes
    reader = IndexReader.open(tmp_path)
    assert len(reader.units) == 87 and not {"s0-1", "s1-3", "s2-29"} & set(reader.units.video_id)
    queries = np.random.default_rng(9).standard_normal((5, DIMS.key_dim)).astype(np.float32)
    _, rows = reader.search_keys(queries, 87)
    flat_keys = keys_of(reader.units).astype(np.float16).astype(np.float32)  # what the flat index scans
    expected = np.argsort(-(queries @ flat_keys.T), axis=1)
    assert [set(r) for r in rows[:, :10]] == [set(e) for e in expected[:, :10]]
    assert sorted(rows[0].tolist()) == list(range(87))  # every live row once, no dead one


def test_tombstoned_rows_never_come_back(tmp_path):
    """Removed units stay out through later commits, merges, a retrained encoder and a repair."""
    with open_writer(tmp_path, dims=WIDE) as writer:
        writer.add_units(keyed_batch(clustered_keys(300, 1), "a", 1))
        writer.commit()
        writer.remove_videos([f"a{i}" for i in range(0, 300, 3)])
        writer.commit()
        writer.policy = type(writer.policy)(segments_per_tier=2, floor_rows=1)
        for seed in range(3):  # merges, one of them of the segment with tombstones
            writer.add_units(keyed_batch(clustered_keys(50, 10 + seed), f"b{seed}-", seed))
            writer.commit()
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:  # every segment coded again
        writer.add_units(keyed_batch(clustered_keys(20, 30), "c", 3))
        manifest = writer.commit()
    assert manifest.ann.kind == "pqscan"
    reader = IndexReader.open(tmp_path)
    gone = {f"a{i}" for i in range(0, 300, 3)}
    assert not gone & set(reader.units.video_id) and len(reader.units) == 200 + 150 + 20
    _, rows = reader.search_keys(keys_of(reader.units, WIDE)[:50], len(reader.units))
    assert (rows < len(reader.units)).all() and not gone & set(reader.units.video_id[rows[rows >= 0]])


@pytest.mark.parametrize("family", [clustered_keys, isotropic_keys])
def test_the_tuner_reaches_its_recall_target(tmp_path, family):
    """A PQ scan forced on 4000 keys: the tuner's measured recall is >= 0.99, and so is the recall of its
    setting on queries it never saw. Clustered keys get there with a fraction of the collection as candidates."""
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(family(2500, 1), "a", 1))
        writer.commit()
        writer.add_units(keyed_batch(family(1500, 2), "b", 2))
        manifest = writer.commit()
    state = manifest.ann
    assert state.kind == "pqscan" and state.recall >= ann_state.RECALL_TARGET
    assert state.tuned_units == 2500  # measured at the first commit, again once the collection doubles
    reader = IndexReader.open(tmp_path)
    queries = family(200, 99)
    assert held_out_recall(reader, queries) >= 0.98  # 2000 held-out neighbours: a little sampling slack
    if family is clustered_keys:
        assert state.candidates <= 800 and state.shortlist < 4000



def test_a_commit_publishes_its_videos_before_the_tuning_they_make_due(tmp_path, monkeypatch):
    """The collection doubles: the commit's own generation (its rows coded in the encoder the index has, the old
    tuning) is published before the tuning starts, so a run that dies in the tuning keeps its videos, and the next
    run's commit, with nothing staged, does the tuning it left."""
    from glscl_index.store.segment_codes import SegmentCoder

    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(1200, 1), "a", 1))
        first = writer.commit()
    assert first.ann.tuned_units == 1200

    def dies(coder, manifest, encoder):
        raise RuntimeError("killed in the tuning")

    monkeypatch.setattr(SegmentCoder, "_tune", dies)
    added = keyed_batch(clustered_keys(1300, 2), "b", 2)
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(added)
        with pytest.raises(RuntimeError, match="killed"):
            writer.commit()
    published = read_manifest(tmp_path)
    assert published.generation == first.generation + 1 and published.live_units == 2500
    assert published.ann == first.ann  # same encoder, same tuning
    reader = IndexReader.open(tmp_path)
    _, rows = reader.search_keys(keys_of(added, WIDE)[:20], 10)
    assert list(reader.units.unit_id[rows[:, 0]]) == list(added.unit_id[:20])
    monkeypatch.undo()
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        tuned = writer.commit()
    assert tuned.generation == published.generation + 1 and tuned.ann.tuned_units == 2500
    assert tuned.ann.encoder == first.ann.encoder and tuned.ann.recall >= ann_state.RECALL_TARGET
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        assert writer.commit() == tuned  # nothing staged, nothing due

SHARP = IndexDims(frames=6, dim=32, concepts=0, key_dim=32)


def unrelated_frames_batch(n, seed):
    """Units of six unrelated random frames of norm 10 (a CLIP frame's): with tau = 3 the GIM weights are nearly
    one-hot, so a unit's exact score follows its best frame while its key is the mean of all six."""
    batch = make_batch(n, video_prefix="u", seed=seed, dims=SHARP)
    frames = np.random.default_rng(seed).standard_normal((n, SHARP.frames, SHARP.dim)).astype(np.float32)
    batch.frame_features = (10 * frames / np.linalg.norm(frames, axis=-1, keepdims=True)).astype(np.float16)
    batch.num_frames = np.full(n, SHARP.frames, np.int32)
    return batch


def test_the_tuner_measures_the_exact_glscl_top_10_not_the_keys(tmp_path):
    """Where the key does not predict the exact score, the tuner's truth is the GLSCL top 10 (attention pooling):
    no cheap candidate count holds it, so the search scores every unit. Measured on the keys themselves, the
    flat index has recall 1 with the default 200 candidates, which agree with exhaustive search on about half."""
    with open_writer(tmp_path, dims=SHARP) as writer:
        writer.add_units(unrelated_frames_batch(1500, 1))
        state = writer.commit().ann
    assert state.kind == "flat" and state.candidates_for(1500) >= 1500 and state.recall == 1.0
    assert index_stats(tmp_path).search_index.startswith("exhaustive")  # what `glscl info` says
    reader = IndexReader.open(tmp_path)
    units = reader.units
    scoring = tuning_queries.Scoring.of({})
    held_out = tuning_queries.make_queries(units, 50, scoring, seed=123, cosine=0.3)
    truth = tuning_queries.exact_top(held_out, units, np.arange(len(units)), scoring, 10)
    _, default_candidates = reader.search_keys(held_out.keys, 200)
    assert ann.candidate_recall(default_candidates, truth) < 0.9  # what the previous, key-space tuner accepted


def test_missing_or_damaged_codes_are_a_clear_error(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(10))
        manifest = writer.commit()
    path = tmp_path / "shards" / manifest.shards[0].codes
    path.write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="damaged.*glscl check --repair"):
        IndexReader.open(tmp_path)
    path.unlink()
    with pytest.raises(IndexCorruptError, match=f"{manifest.shards[0].codes} named by the manifest is missing"):
        IndexReader.open(tmp_path)


def test_format_1_index_with_parquet_shard_is_read_and_upgraded(tmp_path):
    """An index written before format 2 (Parquet shard with a stored key column, no FAISS file) is searched,
    then extended by a writer, which codes its old segment."""
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
    assert upgraded.format_version == FORMAT_VERSION and all(s.codes for s in upgraded.shards)
    reader = IndexReader.open(tmp_path)
    assert len(reader.units) == 16
    _, rows = reader.search_keys(keys_of(reader.units), 1)
    assert np.array_equal(rows[:, 0], np.arange(16))


def test_format_3_index_opens_and_is_upgraded_at_the_next_commit(tmp_path):
    """Format 3: one FAISS file per generation, no codes, one catalog file. Searched with derived keys, then
    the next commit (even a catalog-only one) codes every segment and drops the old FAISS file."""
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(20))
        writer.set_catalog_entries([CatalogEntry("/videos/v0.mp4", 1000, 7, "hv0", "v0", "indexed", "", 1, 1.0)])
        writer.commit()
    document = json.loads((tmp_path / "manifest.json").read_text())
    for shard in document["shards"]:
        (tmp_path / "shards" / shard.pop("codes")).unlink()
    for key in ("ann", "catalog_deltas", "catalog_delta_rows"):
        document.pop(key)
    document.update(format_version=3, faiss_file="faiss-000001-abc.index", faiss_type="flat16")
    (tmp_path / "faiss-000001-abc.index").write_bytes(b"a format-3 FAISS file")
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    reader = IndexReader.open(tmp_path)
    _, rows = reader.search_keys(keys_of(reader.units), 1)
    assert np.array_equal(rows[:, 0], np.arange(20)) and [e.path for e in reader.catalog] == ["/videos/v0.mp4"]
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([CatalogEntry("/x.mp4", 0, 0, "", "", "failed", "empty file (0 bytes)", 0, 0.0)])
        upgraded = writer.commit()
    assert upgraded.format_version == FORMAT_VERSION and all(s.codes for s in upgraded.shards)
    assert not (tmp_path / "faiss-000001-abc.index").exists()
    reader = IndexReader.open(tmp_path)
    assert sorted(e.path for e in reader.catalog) == ["/videos/v0.mp4", "/x.mp4"]
    _, rows = reader.search_keys(keys_of(reader.units), 1)
    assert np.array_equal(rows[:, 0], np.arange(20))


def test_a_damaged_pqscan_encoder_is_a_clear_error_and_repair_trains_it_again(tmp_path):
    from glscl_index.store.check import check_index, repair_index

    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(400, 1), "a", 1))
        manifest = writer.commit()
    encoder = tmp_path / manifest.ann.encoder
    assert manifest.ann.kind == "pqscan" and encoder.suffix == ".npz"
    read = ann.read_encoder(encoder)
    assert read.lists == manifest.ann.lists > 1
    assert read.scan_bytes == ann_state.scan_bytes(WIDE.key_dim, manifest.ann.lists)  # what `glscl info` counts
    encoder.write_bytes(encoder.read_bytes()[:1000])
    with pytest.raises(IndexCorruptError, match=f"search encoder {encoder.name} is damaged.*glscl check --repair"):
        IndexReader.open(tmp_path)
    assert [p.path for p in check_index(tmp_path, deep=False).problems] == [encoder.name]
    repaired = repair_index(tmp_path)
    assert repaired.healthy and repaired.generation is not None
    reader = IndexReader.open(tmp_path)
    assert reader.manifest.ann.kind == "pqscan" and reader.manifest.ann.encoder != encoder.name
    _, rows = reader.search_keys(keys_of(reader.units, WIDE)[:5], 5)
    assert np.array_equal(rows[:, 0], np.arange(5))


def test_an_index_coded_as_ivfpq_is_searched_and_coded_again_as_pqscan(tmp_path):
    """Indexes written before the PQ scan replaced IVF-PQ: their codes are ignored (keys derived, exact scan) and
    the next commit codes every segment in a pqscan encoder."""
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(300, 1), "a", 1))
        writer.commit()
    document = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / document["ann"]["encoder"]).unlink()
    document["ann"].update(kind="ivfpq", encoder="ann-000001-old.faiss", nprobe=8)
    document["faiss_type"] = "ivfpq"
    (tmp_path / "ann-000001-old.faiss").write_bytes(b"an IVF-PQ encoder")
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    reader = IndexReader.open(tmp_path)
    _, rows = reader.search_keys(keys_of(reader.units, WIDE)[:5], 1)
    assert np.array_equal(rows[:, 0], np.arange(5))
    with open_writer(tmp_path, dims=WIDE, faiss_type="ivfpq") as writer:
        writer.add_units(keyed_batch(clustered_keys(20, 2), "b", 2))
        manifest = writer.commit()
    assert manifest.ann.kind == "pqscan" and manifest.ann.encoder.endswith(".npz")
    assert all(s.codes.split(".")[-3] == manifest.ann.tag for s in manifest.shards)
    reader = IndexReader.open(tmp_path)
    _, rows = reader.search_keys(keys_of(reader.units, WIDE), 1)
    assert np.array_equal(rows[:, 0], np.arange(320))


def test_a_pqscan_index_from_before_lists_is_searched_and_coded_again_with_lists(tmp_path):
    """An encoder written before the scan codes had lists (a flat 4-bit PQ) reads as one list: its codes are
    searched as they are, and the next commit trains an encoder with lists and codes every segment again."""
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(300, 1), "a", 1))
        manifest = writer.commit()
    current = ann.read_encoder(tmp_path / manifest.ann.encoder)
    keys = keys_of(IndexReader.open(tmp_path).units, WIDE)
    projected = current.project(keys)
    dims = current.ivf.d
    flat_pq = faiss.IndexPQ(dims, dims // 2, 4, faiss.METRIC_INNER_PRODUCT)
    flat_pq.train(np.ascontiguousarray(projected[:, :dims]))
    np.savez(
        tmp_path / manifest.ann.encoder, axes=current.axes, low=current.low, step=current.step,
        pq=faiss.serialize_index(flat_pq),
    )
    fine = current.encode(keys)[:, current.scan_bytes :]
    old_codes = np.concatenate([flat_pq.sa_encode(np.ascontiguousarray(projected[:, :dims])), fine], axis=1)
    segment = manifest.shards[0]
    ann.write_codes(tmp_path / "shards" / segment.codes, old_codes)
    document = json.loads((tmp_path / "manifest.json").read_text())
    for name in ("lists", "probes"):
        del document["ann"][name]
    (tmp_path / "manifest.json").write_text(json.dumps(document))

    reader = IndexReader.open(tmp_path)
    assert reader.key_index.encoder.lists == 1
    _, rows = reader.search_keys(keys[:20], 1)
    assert np.array_equal(rows[:, 0], np.arange(20))
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(20, 2), "b", 2))
        upgraded = writer.commit()
    assert upgraded.ann.lists > 1 and upgraded.ann.encoder != manifest.ann.encoder
    assert all(s.codes.split(".")[-3] == upgraded.ann.tag for s in upgraded.shards)
    reader = IndexReader.open(tmp_path)
    _, rows = reader.search_keys(keys_of(reader.units, WIDE), 1)
    assert np.array_equal(rows[:, 0], np.arange(320))


def test_the_refinement_in_chunks_keeps_the_best_of_the_whole_shortlist(tmp_path, monkeypatch):
    """A shortlist refined a chunk of 8-bit codes at a time (bounded memory) gives what one pass over it gives."""
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(400, 2), "a", 2))
        writer.remove_videos(["a5", "a77"])
        writer.commit()
    queries = clustered_keys(6, 40)
    reader = IndexReader.open(tmp_path)
    assert reader.manifest.ann.kind == "pqscan"
    whole_scores, whole = reader.search_keys(queries, 30, shortlist=398)
    monkeypatch.setattr(ann, "REFINE_CHUNK", 17)
    chunked_scores, chunked = reader.search_keys(queries, 30, shortlist=398)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(chunked_scores, whole_scores)
    assert (whole >= 0).all() and len({tuple(sorted(r)) for r in whole}) > 1


class ScriptedIndex:
    """A stand-in for SearchIndex whose search puts each query's 10 true ids at chosen ranks among its candidates,
    the later ones only past a shortlist of ``full_from``, and takes longer the longer its shortlist."""

    def __init__(self, ranks: np.ndarray, full_from: int, live: int = 200_000, lists: int = 16):
        self.ranks, self.full_from, self.live = ranks, full_from, live  # ranks: [S, 10] positions of the truth
        self.state = ann_state.AnnState(kind=ann_state.PQSCAN)
        self.index = SimpleNamespace(nlist=lists)  # the tuner reads its list count only
        self.calls: list[tuple[int, int]] = []

    def search(self, queries, n, shortlist=None, probes=None):
        self.calls.append((probes, shortlist))
        ids = np.arange(len(queries) * n).reshape(len(queries), n) + 10_000  # no true id among the others
        for q, ranks in enumerate(self.ranks[: len(queries)]):  # one query alone: the tuner times it
            reached = ranks if shortlist >= self.full_from else ranks * 10
            for t, rank in enumerate(reached):
                if rank < n:
                    ids[q, rank] = q * 10 + t
        time.sleep(shortlist * 1e-6)  # a longer shortlist searches longer
        return np.zeros(ids.shape, np.float32), ids


def test_the_tuner_takes_the_fewest_candidates_that_hold_the_target_and_stops_lengthening_the_shortlist():
    """The truth's last 1.2% sits at rank 299: the tuner takes 340 candidates (the ladder's next step), not the
    400 a doubling ladder gave; and it stops lengthening the shortlist at the first whose search alone costs more
    than the best setting found (at 1M units it went on to the whole collection, which took minutes)."""
    rng = np.random.default_rng(0)
    ranks = np.stack([rng.permutation(290)[:10] for _ in range(100)])  # distinct ranks within a query
    ranks[:12, 0] = 299  # 12 of 1000, one in each of 12 queries: recall 0.988 below 300 candidates
    truth = np.arange(1000).reshape(100, 10)
    index = ScriptedIndex(ranks, full_from=3200)
    tuning = ann.tune(index, [(np.zeros((100, 4), np.float32), truth)], rerank_seconds=1e-9)
    assert (tuning.shortlist, tuning.candidates, tuning.recall) == (3200, 340, 1.0)
    assert list(dict.fromkeys(index.calls))[:3] == [(16, 1600), (16, 3200), (16, 6400)]
    assert max(s for _, s in index.calls) == 6400  # not 12800 ... 200000, for any number of lists visited


class BatchingIndex(ScriptedIndex):
    """Every setting finds the truth. One query alone takes longer the more lists it visits; a batch that visits
    every list costs least a query (a batch shares the scan's work across its queries, and the more the lists the
    more it shares)."""

    def search(self, queries, n, shortlist=None, probes=None):
        self.calls.append((probes, shortlist))
        ids = np.tile(np.arange(n), (len(queries), 1))
        if len(queries) > 1:
            time.sleep(20e-3 if probes == 16 else 30e-3)
        else:
            time.sleep(probes * 2e-4)
        return np.zeros(ids.shape, np.float32), ids


def test_the_tuner_costs_a_setting_by_the_search_of_one_query():
    """The searcher asks one query at a time: of settings that all hold the target, the tuner takes the one whose
    single query is fastest (1 list of 16), not the one whose batch costs least a query (all 16 lists)."""
    truth = np.tile(np.arange(10), (100, 1))
    index = BatchingIndex(np.zeros((100, 10), np.int64), full_from=0, lists=16)
    tuning = ann.tune(index, [(np.zeros((100, 4), np.float32), truth)], rerank_seconds=1e-9)
    assert (tuning.probes, tuning.shortlist, tuning.candidates) == (1, 1600, 200)
    assert {p for p, _ in index.calls} == {16, 4, 1}


def test_a_state_tuned_by_an_older_tuner_is_tuned_again_at_the_next_commit(tmp_path):
    """A manifest whose tuning predates the tuner's versions (the doubling candidate ladder) is searched with its
    recorded setting, and the next commit measures it again, however little it adds."""
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(1200, 1), "a", 1))
        assert writer.commit().ann.tuner == ann_state.TUNER_VERSION
    document = json.loads((tmp_path / "manifest.json").read_text())
    del document["ann"]["tuner"]
    document["ann"]["candidates"] = 800
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    reader = IndexReader.open(tmp_path)
    assert reader.manifest.ann.tuner == 1 and reader.manifest.ann.candidates_for(1200) == 800
    with open_writer(tmp_path, dims=WIDE, faiss_type="pqscan") as writer:
        writer.add_units(keyed_batch(clustered_keys(5, 2), "b", 2))
        state = writer.commit().ann
    assert state.tuner == ann_state.TUNER_VERSION and state.tuned_units == 1205 and state.recall >= 0.99


def test_the_recall_bound_holds_bunched_misses_to_account():
    """Five misses of 1,000 neighbours pass the target when they are five queries' one miss each, and fail it when
    one query misses all five: the tuner's sample then says less about the next query."""
    spread = np.zeros((100, 10), np.int64)
    spread[:5, 0] = 50
    bunched = np.zeros((100, 10), np.int64)
    bunched[0, :5] = 50
    for ranks in (spread, bunched):
        recall, _ = ann.recall_bound(ranks, 50)
        assert recall == pytest.approx(0.995)
    assert ann.recall_bound(spread, 50)[1] >= ann_state.RECALL_TARGET > ann.recall_bound(bunched, 50)[1]
    padded = np.where(np.arange(10) < 4, spread, -1)  # a query's truth padded with -1: only real ids count
    assert ann.recall_bound(padded, 60) == (1.0, 1.0)
