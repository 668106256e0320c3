"""Shared by the store tests: random unit batches, a writer with a fixed fake model, a small damaged-able index."""

import numpy as np

from glscl_index.store.merge_policy import MergePolicy
from glscl_index.store.schema import CatalogEntry, IndexDims, UnitBatch
from glscl_index.store.shards import as_stored
from glscl_index.store.writer import IndexWriter

DIMS = IndexDims(frames=4, dim=16, concepts=3, key_dim=64)


def make_batch(n, video_prefix="v", seed=0, units_per_video=1, dims=DIMS, marker=0.0):
    rng = np.random.default_rng(seed)
    videos = np.array([f"{video_prefix}{i // units_per_video}" for i in range(n)], dtype=object)
    segments = np.array([i % units_per_video for i in range(n)], dtype=np.int32)
    return UnitBatch(
        unit_id=np.array([f"{v}:{s}" for v, s in zip(videos, segments, strict=False)], dtype=object), video_id=videos,
        path=np.array([f"/videos/{v}.mp4" for v in videos], dtype=object),
        size=np.full(n, 1000, np.int64), mtime_ns=np.full(n, 7, np.int64),
        content_hash=np.array([f"h{v}" for v in videos], dtype=object), segment_index=segments,
        start_s=segments.astype(np.float32) * 20, end_s=segments.astype(np.float32) * 20 + 30,
        num_frames=rng.integers(1, dims.frames + 1, n).astype(np.int32),
        timestamps_s=rng.random((n, dims.frames)).astype(np.float32),
        frame_features=(rng.standard_normal((n, dims.frames, dims.dim)) + marker).astype(np.float16),
        visual_concepts=rng.standard_normal((n, dims.concepts, dims.dim)).astype(np.float16),
        fingerprint="fp",
    )


def open_writer(root, **kw):
    return IndexWriter.open(
        root, fingerprint=kw.pop("fingerprint", "fp"), model_config={"m": 1}, dims=kw.pop("dims", DIMS), **kw
    )


def assert_batches_equal(a, b):
    """Equal rows; features equal as stored (int8 codes x a float16 scale per vector, store/shards.py)."""
    for name in ("unit_id", "video_id", "path", "size", "mtime_ns", "content_hash", "segment_index", "start_s",
                 "end_s", "num_frames", "timestamps_s"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("frame_features", "visual_concepts"):
        assert np.array_equal(as_stored(getattr(a, name)), as_stored(getattr(b, name))), name


QUERIES = np.random.default_rng(5).standard_normal((6, DIMS.key_dim)).astype(np.float32)


def indexed(prefix, count, units_per_video=2):
    return [
        CatalogEntry(
            f"/videos/{prefix}{i}.mp4", 1000, 7, f"h{prefix}{i}", f"{prefix}{i}", "indexed", "", units_per_video, 1.0
        )
        for i in range(count)
    ]


def video_a4_again():
    """Two new units of video a4 (the file changed and was embedded again)."""
    batch = make_batch(2, video_prefix="a", seed=1, units_per_video=2)
    batch.video_id = np.array(["a4", "a4"], dtype=object)
    batch.unit_id = np.array(["a4:0", "a4:1"], dtype=object)
    batch.path = np.array(["/videos/a4.mp4"] * 2, dtype=object)
    batch.content_hash = np.array(["ha4"] * 2, dtype=object)
    return batch


def build_index(root, copy_min_rows=0):
    """Shard A: videos a0-a4 (a4's rows dead, re-indexed into B); shard B: a4 and b0-b3; then a catalog-only commit.

    manifest.prev.json is then the same units as manifest.json, with a catalog lacking the failed file. Both shards
    have Arrow copies unless ``copy_min_rows`` (store/merge_policy.py) says they are too small.
    """
    with open_writer(root) as writer:
        writer.policy = MergePolicy(copy_min_rows=copy_min_rows)
        writer.add_units(make_batch(10, video_prefix="a", units_per_video=2))
        writer.set_catalog_entries(indexed("a", 5))
        writer.commit()
        writer.remove_videos(["a4"])  # 2 of 10 rows dead: below the compaction threshold, shard A stays
        writer.add_units(video_a4_again())
        writer.add_units(make_batch(8, video_prefix="b", seed=2, units_per_video=2))
        writer.set_catalog_entries(indexed("b", 4))
        writer.commit()
        writer.set_catalog_entries([CatalogEntry("/videos/broken.mp4", 5, 7, "", "", "failed", "not a video", 0, 1.0)])
        return writer.commit()
