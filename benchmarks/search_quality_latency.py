"""Two-stage search vs exhaustive exact scoring: top-10 agreement and warm per-query latency.

Usage: .venv/bin/python benchmarks/search_quality_latency.py [--units 10000 100000] [--queries 50]

Features are synthetic but structured (units drawn around topic centres, frames around their
unit, concepts as fixed projections of the unit; queries near one frame of one unit) with the
ViT-B/32 GLSCL shapes D=512, T=12, K=8; the index is written and read by the real store and
scored by the real GLSCL code (`Searcher.rank`). Latency excludes model load and text encoding.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glscl_index.model.checkpoint import create_random_model  # noqa: E402
from glscl_index.model.glscl import TextEmbedding  # noqa: E402
from glscl_index.model.keys import query_keys, video_keys  # noqa: E402
from glscl_index.search import SearchConfig, Searcher  # noqa: E402
from glscl_index.store.reader import IndexReader  # noqa: E402
from glscl_index.store.schema import UnitBatch  # noqa: E402
from glscl_index.store.writer import IndexWriter  # noqa: E402
from pipelines.index import index_dims  # noqa: E402

D, T, K = 512, 12, 8


def synthetic_units(n, rng, projections, topics, fingerprint, start):
    topic = rng.integers(0, len(topics), n)
    base = topics[topic] + 0.7 * rng.standard_normal((n, D)).astype(np.float32)
    frames = base[:, None, :] + 0.5 * rng.standard_normal((n, T, D)).astype(np.float32)
    frames *= 10.0 / np.linalg.norm(frames, axis=-1, keepdims=True)
    num_frames = rng.integers(4, T + 1, n).astype(np.int32)
    mask = np.arange(T)[None, :] < num_frames[:, None]
    frames *= mask[..., None]
    concepts = np.einsum("kde,ne->nkd", projections, base) + 0.3 * rng.standard_normal((n, K, D)).astype(np.float32)
    concepts /= np.linalg.norm(concepts, axis=-1, keepdims=True)
    keys = video_keys(torch.from_numpy(frames), torch.from_numpy(mask), torch.from_numpy(concepts), 0.5).numpy()
    ids = np.array([f"v{start + i}" for i in range(n)], dtype=object)
    return UnitBatch(
        unit_id=np.array([f"{v}:0" for v in ids], dtype=object), video_id=ids, path=ids.copy(),
        size=np.zeros(n, np.int64), mtime_ns=np.zeros(n, np.int64), content_hash=ids.copy(),
        segment_index=np.zeros(n, np.int32), start_s=np.zeros(n, np.float32), end_s=np.full(n, 12, np.float32),
        num_frames=num_frames, timestamps_s=np.tile(np.arange(T, dtype=np.float32), (n, 1)) * mask,
        frame_features=frames.astype(np.float16), visual_concepts=concepts.astype(np.float16),
        global_keys=keys, fingerprint=fingerprint,
    ), base


def synthetic_queries(units: UnitBatch, rng, projections, count):
    rows = rng.integers(0, len(units), count)
    frames = units.frame_features[rows].astype(np.float32)
    pick = rng.integers(0, units.num_frames[rows])
    sentence = (frames[np.arange(count), pick] + 3.0 * rng.standard_normal((count, D))).astype(np.float32)
    base = (frames.sum(1) / units.num_frames[rows][:, None]).astype(np.float32)
    concepts = np.einsum("kde,ne->nkd", projections, base / 10) + 0.5 * rng.standard_normal((count, K, D)).astype(np.float32)
    concepts /= np.linalg.norm(concepts, axis=-1, keepdims=True)
    s, c = torch.from_numpy(sentence), torch.from_numpy(concepts)
    text = TextEmbedding(sentence=s, tokens=torch.zeros(count, 1, D), mask=torch.ones(count, 1, dtype=torch.bool), concepts=c)
    return text, query_keys(s, c, 0.5).numpy()


def measure(searcher, text, keys, config):
    latencies, hits = [], []
    for q in range(keys.shape[0]):
        one = TextEmbedding(text.sentence[q : q + 1], text.tokens[q : q + 1], text.mask[q : q + 1], text.concepts[q : q + 1])
        start = time.perf_counter()
        (ranked,) = searcher.rank(one, keys[q : q + 1], config)
        latencies.append(time.perf_counter() - start)
        hits.append([h.video_id for h in ranked])
    return np.array(latencies) * 1000, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--exhaustive-queries", type=int, default=10)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = create_random_model("ViT-B-32", trained=True)
    rng = np.random.default_rng(0)
    projections = np.linalg.qr(rng.standard_normal((K, D, D)).astype(np.float32))[0]
    topics = 2.0 * rng.standard_normal((max(args.units) // 20, D)).astype(np.float32)
    print(f"# GLSCL shapes D={D} T={T} K={K}; {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}")
    print(f"{'units':>9} {'top10 overlap':>13} {'2-stage p50 ms':>15} {'p95 ms':>8} {'exhaustive p50 ms':>18} {'p95 ms':>8} {'speed-up':>8} {'RSS MB':>8} {'KB/unit':>8}")
    for n in args.units:
        root = Path(tempfile.mkdtemp(prefix="glscl-search-"))
        with IndexWriter.open(root, fingerprint="synthetic", model_config={}, dims=index_dims(model)) as writer:
            for start in range(0, n, 20_000):
                batch, _ = synthetic_units(min(20_000, n - start), rng, projections, topics, "synthetic", start)
                writer.add_units(batch)
                writer.commit()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reader = IndexReader.open(root)
        searcher = Searcher(reader, model)
        text, keys = synthetic_queries(reader.units, rng, projections, args.queries)
        searcher.rank(TextEmbedding(text.sentence[:1], text.tokens[:1], text.mask[:1], text.concepts[:1]), keys[:1], SearchConfig())
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fast_ms, fast_hits = measure(searcher, text, keys, SearchConfig(k=10))
        m = args.exhaustive_queries
        sub = TextEmbedding(text.sentence[:m], text.tokens[:m], text.mask[:m], text.concepts[:m])
        exact_ms, exact_hits = measure(searcher, sub, keys[:m], SearchConfig(k=10, exhaustive=True))
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fast_hits[:m], exact_hits)])
        rss_mb = max(rss_after - rss_before, 0) / 1024
        print(
            f"{n:>9} {overlap:>13.3f} {np.percentile(fast_ms, 50):>15.1f} {np.percentile(fast_ms, 95):>8.1f} "
            f"{np.percentile(exact_ms, 50):>18.1f} {np.percentile(exact_ms, 95):>8.1f} "
            f"{np.percentile(exact_ms, 50) / np.percentile(fast_ms, 50):>8.1f} {rss_mb:>8.0f} {rss_mb * 1024 / n:>8.1f}"
        )
        del searcher, reader
    print("command: .venv/bin/python benchmarks/search_quality_latency.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
