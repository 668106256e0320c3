"""Two-stage search vs exhaustive exact scoring: top-10 agreement, warm per-query latency, memory; cold CLI time.

Usage: .venv/bin/python benchmarks/search_quality_latency.py [--units 10000 100000 1000000] [--queries 50]
       [--exhaustive-queries 10] [--cold-units 2000]

Features are synthetic but structured (units drawn around topic centres, frames around their
unit, concepts as fixed projections of the unit; queries near one frame of one unit) with the
ViT-B/32 GLSCL shapes D=512, T=12, K=8; the index is written and read by the real store and
scored by the real GLSCL code (`Searcher.rank`). Latency excludes model load and text encoding, and is
warm: the first WARMUP_QUERIES queries are run once before timing, so the FAISS file's pages are in
the page cache (right after writing a large index the kernel may still evict them once).
Memory is measured in a fresh process (so nothing of the builder is counted): its resident memory
after opening the index and answering one query, minus what it held before opening (model loaded).
Disk is every file of the index (with the previous generation's FAISS file, which a commit keeps
for readers) per unit.
Exhaustive scoring (the reference for the overlap) ranks the first --exhaustive-queries queries in one
batched pass over the units (reported per query); single-query exhaustive latency is timed on the first
--exhaustive-latency-queries of them (a pass over 1M units' features takes minutes on 2 cores).
The cold figure is the wall time of a `glscl search` subprocess (import, model load, index open, one
query) on a small synthetic index built for a tiny random-weight checkpoint, as the CLI tests do.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glscl_index.model.factory import create_random_model, load_model_and_fingerprint
from glscl_index.model.glscl import TextEmbedding
from glscl_index.model.keys import query_keys
from glscl_index.model.spec import ModelSpec
from glscl_index.search import SearchConfig, Searcher
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import UnitBatch
from glscl_index.store.writer import IndexWriter
from pipelines.embed_job import index_dims, model_config_record

D, T, K = 512, 12, 8
REPO = Path(__file__).resolve().parents[1]
TINY_ARCH = REPO / "tests" / "assets" / "tiny-clip.json"
COMMIT_EVERY = 100_000  # units per commit: each commit extends the FAISS index (docs/storage.md)
GENERATE_CHUNK = 20_000
WARMUP_QUERIES = 3


def synthetic_units(n, rng, projections, topics, fingerprint, start, frames_per_unit=T):
    """n units around random topic centres ``[C, D]``: frames ``[n, T, D]`` around their unit, concepts ``[n, K, D]``
    fixed projections ``[K, D, D]`` of it (float32 draws and one matmul, so 1M units take minutes, not hours)."""
    K, D = projections.shape[:2]
    T = frames_per_unit
    topic = rng.integers(0, len(topics), n)
    base = topics[topic] + 0.7 * rng.standard_normal((n, D), dtype=np.float32)
    frames = base[:, None, :] + 0.5 * rng.standard_normal((n, T, D), dtype=np.float32)
    frames *= 10.0 / np.linalg.norm(frames, axis=-1, keepdims=True)
    num_frames = rng.integers(4, T + 1, n).astype(np.int32)
    mask = np.arange(T)[None, :] < num_frames[:, None]
    frames *= mask[..., None]
    concepts = (base @ projections.reshape(K * D, D).T).reshape(n, K, D)
    concepts += 0.3 * rng.standard_normal((n, K, D), dtype=np.float32)
    concepts /= np.linalg.norm(concepts, axis=-1, keepdims=True)
    ids = np.array([f"v{start + i}" for i in range(n)], dtype=object)
    return UnitBatch(
        unit_id=np.array([f"{v}:0" for v in ids], dtype=object), video_id=ids, path=ids.copy(),
        size=np.zeros(n, np.int64), mtime_ns=np.zeros(n, np.int64), content_hash=ids.copy(),
        segment_index=np.zeros(n, np.int32), start_s=np.zeros(n, np.float32), end_s=np.full(n, 12, np.float32),
        num_frames=num_frames, timestamps_s=np.tile(np.arange(T, dtype=np.float32), (n, 1)) * mask,
        frame_features=frames.astype(np.float16), visual_concepts=concepts.astype(np.float16),
        fingerprint=fingerprint,
    )


def synthetic_queries(units: UnitBatch, rng, projections, count):
    rows = rng.integers(0, len(units), count)
    frames = units.frame_features[rows].astype(np.float32)
    pick = rng.integers(0, units.num_frames[rows])
    sentence = (frames[np.arange(count), pick] + 3.0 * rng.standard_normal((count, D))).astype(np.float32)
    base = (frames.sum(1) / units.num_frames[rows][:, None]).astype(np.float32)
    concepts = (base / 10 @ projections.reshape(K * D, D).T).reshape(count, K, D)
    concepts += 0.5 * rng.standard_normal((count, K, D)).astype(np.float32)
    concepts /= np.linalg.norm(concepts, axis=-1, keepdims=True)
    s, c = torch.from_numpy(sentence), torch.from_numpy(concepts)
    text = TextEmbedding(
        sentence=s, tokens=torch.zeros(count, 1, D), mask=torch.ones(count, 1, dtype=torch.bool), concepts=c
    )
    return text, query_keys(s, c, 0.5).numpy()


def measure(searcher, text, keys, config):
    latencies, hits = [], []
    for q in range(keys.shape[0]):
        one = text.rows(slice(q, q + 1))
        start = time.perf_counter()
        (ranked,) = searcher.rank(one, keys[q : q + 1], config)
        latencies.append(time.perf_counter() - start)
        hits.append([h.video_id for h in ranked])
    return np.array(latencies) * 1000, hits


def resident_mb() -> np.ndarray:
    """Current resident memory of this process, MB: [total, anonymous] (the rest is memory-mapped file
    pages, which the kernel can drop and read again)."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return np.array([int(fields[name].split()[0]) for name in ("VmRSS", "RssAnon")]) / 1024


def _open_and_search(root: str) -> np.ndarray:
    """In a fresh process: resident memory growth ``[total, anonymous]`` MB from opening the index at
    ``root`` and answering one (random) query, the model being loaded before the baseline."""
    torch.set_grad_enabled(False)
    model = create_random_model("ViT-B-32", trained=True)
    rng = np.random.default_rng(1)
    sentence = torch.from_numpy(rng.standard_normal((1, D)).astype(np.float32))
    concepts = torch.nn.functional.normalize(
        torch.from_numpy(rng.standard_normal((1, K, D)).astype(np.float32)), dim=-1
    )
    text = TextEmbedding(
        sentence=sentence, tokens=torch.zeros(1, 1, D), mask=torch.ones(1, 1, dtype=torch.bool), concepts=concepts
    )
    before = resident_mb()
    searcher = Searcher(IndexReader.open(root), model)
    searcher.rank(text, query_keys(sentence, concepts, 0.5).numpy(), SearchConfig())
    return resident_mb() - before


def reader_memory_mb(root: Path) -> np.ndarray:
    """``[total, anonymous]`` MB a fresh reader process holds for the index at ``root`` (see module docstring)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_open_and_search, (str(root),))


def build_index(root, n, rng, projections, topics, dims, fingerprint, model_config=None):
    """Write n synthetic units through the real writer, committing every COMMIT_EVERY units."""
    with IndexWriter.open(root, fingerprint=fingerprint, model_config=model_config or {}, dims=dims) as writer:
        for start in range(0, n, GENERATE_CHUNK):
            count = min(GENERATE_CHUNK, n - start)
            writer.add_units(synthetic_units(count, rng, projections, topics, fingerprint, start, dims.frames))
            if (start + GENERATE_CHUNK) % COMMIT_EVERY == 0 or start + GENERATE_CHUNK >= n:
                writer.commit()


def cold_cli_seconds(units: int, rng, runs: int = 3) -> float:
    """Median wall time of `glscl search` in a fresh process over a small index of a tiny checkpoint."""
    work = Path(tempfile.mkdtemp(prefix="glscl-cold-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    glscl = [sys.executable, "-m", "cli.app"]
    subprocess.run([*glscl, "checkpoint", "random", str(work / "ck"), "--model", str(TINY_ARCH), "--decoder-ffn", "64"],
                   check=True, capture_output=True, env=env, cwd=REPO)
    spec = ModelSpec(checkpoint=str(work / "ck"))
    model, fingerprint = load_model_and_fingerprint(spec)
    dims = index_dims(model)
    projections = np.linalg.qr(rng.standard_normal((dims.concepts, dims.dim, dims.dim)).astype(np.float32))[0]
    topics = 2.0 * rng.standard_normal((max(units // 20, 1), dims.dim)).astype(np.float32)
    build_index(work / "index", units, rng, projections, topics, dims, fingerprint, model_config_record(model, spec))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*glscl, "search", "a man cooking pasta", "--index", str(work / "index"), "--json"],
                       check=True, capture_output=True, env=env, cwd=REPO)
        times.append(time.perf_counter() - start)
    shutil.rmtree(work)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--exhaustive-queries", type=int, default=10)
    parser.add_argument("--exhaustive-latency-queries", type=int, default=3)
    parser.add_argument(
        "--cold-units", type=int, default=2000, help="units of the small index for the cold CLI time (0: skip)"
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = create_random_model("ViT-B-32", trained=True)
    rng = np.random.default_rng(0)
    projections = np.linalg.qr(rng.standard_normal((K, D, D)).astype(np.float32))[0]
    topics = 2.0 * rng.standard_normal((max(args.units) // 20, D)).astype(np.float32)
    print(f"# GLSCL shapes D={D} T={T} K={K}; {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}")
    print(
        f"# overlap: first {args.exhaustive_queries} of {args.queries} queries vs exhaustive (batched); "
        f"exhaustive single-query latency: first {args.exhaustive_latency_queries}"
    )
    print(
        f"{'units':>9} {'faiss':>6} {'top10 overlap':>13} {'2-stage p50 ms':>15} {'p95 ms':>8} "
        f"{'exhaustive p50 ms':>18} {'p95 ms':>8} {'batched ms/q':>12} {'speed-up':>8} {'RSS MB':>8} "
        f"{'KB/unit':>8} {'anon MB':>8} {'KB/unit':>8} {'disk KB/unit':>12} {'build s':>8}"
    )
    for n in args.units:
        root = Path(tempfile.mkdtemp(prefix="glscl-search-"))
        start = time.perf_counter()
        build_index(root, n, rng, projections, topics, index_dims(model), "synthetic")
        build_s = time.perf_counter() - start
        disk_kb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1024 / n
        rss_mb, anon_mb = reader_memory_mb(root)
        reader = IndexReader.open(root)
        searcher = Searcher(reader, model)
        text, keys = synthetic_queries(reader.units, rng, projections, args.queries)
        for q in range(WARMUP_QUERIES):
            searcher.rank(text.rows(slice(q, q + 1)), keys[q : q + 1], SearchConfig())
        fast_ms, fast_hits = measure(searcher, text, keys, SearchConfig(k=10))
        m, single = args.exhaustive_queries, args.exhaustive_latency_queries
        sub = text.rows(slice(0, m))
        start = time.perf_counter()
        exact_hits = [
            [h.video_id for h in hits] for hits in searcher.rank(sub, keys[:m], SearchConfig(k=10, exhaustive=True))
        ]
        batched_ms = (time.perf_counter() - start) * 1000 / m
        exact_ms, _ = measure(searcher, sub, keys[:single], SearchConfig(k=10, exhaustive=True))
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fast_hits[:m], exact_hits, strict=False)])
        kind = reader.manifest.ann.kind
        print(
            f"{n:>9} {kind:>6} {overlap:>13.3f} {np.percentile(fast_ms, 50):>15.1f} {np.percentile(fast_ms, 95):>8.1f} "
            f"{np.percentile(exact_ms, 50):>18.1f} {np.percentile(exact_ms, 95):>8.1f} {batched_ms:>12.1f} "
            f"{np.percentile(exact_ms, 50) / np.percentile(fast_ms, 50):>8.1f} "
            f"{rss_mb:>8.0f} {rss_mb * 1024 / n:>8.1f} "
            f"{anon_mb:>8.0f} {anon_mb * 1024 / n:>8.1f} {disk_kb:>12.1f} {build_s:>8.0f}",
            flush=True,
        )
        del searcher, reader
        shutil.rmtree(root)
    if args.cold_units:
        print(f"cold `glscl search` (new process, tiny checkpoint, {args.cold_units} units, median of 3): "
              f"{cold_cli_seconds(args.cold_units, rng):.2f} s")
    print("command: .venv/bin/python benchmarks/search_quality_latency.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
