"""`glscl serve`: warm latency of `GET /api/search` over HTTP next to the in-process `Searcher.search`.

Usage: .venv/bin/python benchmarks/serve_latency.py [--units 10000 100000] [--queries 50]

The index is the synthetic one of benchmarks/search_quality_latency.py (its builder is imported: real
writer, real reader, ViT-B/32 GLSCL shapes, random weights), served by the real app (`create_app`) under
uvicorn on 127.0.0.1 in a thread and queried with a keep-alive HTTP client from this process. Both columns
include text encoding, FAISS candidates, the exact rerank and (HTTP only) JSON building, the request and the
response; neither includes loading the model. The first WARMUP_QUERIES queries are run once before timing, and
the two are timed alternately, query by query.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.search_quality_latency import D, K, T, build_index, create_random_model
from glscl_index.live_index import LiveIndex
from glscl_index.search import SearchConfig, Searcher
from glscl_index.serve import create_app
from glscl_index.serve.thumbnails import ThumbnailCache
from glscl_index.store.reader import IndexReader
from pipelines.embed_job import index_dims

WARMUP_QUERIES = 3
SUBJECTS = ("a man", "a woman", "two children", "a dog", "a cat", "a cyclist", "a chef", "a crowd", "a bird", "a car")
ACTIONS = ("cooking pasta", "running on a beach", "playing football", "jumping into a lake", "dancing at night",
           "climbing a wall", "reading a book", "crossing a street", "singing on a stage", "washing dishes")


def queries(count: int) -> list[str]:
    return [f"{SUBJECTS[i % 10]} {ACTIONS[(i // 10 + i) % 10]}, shot {i}" for i in range(count)]


def serve(app) -> tuple[uvicorn.Server, threading.Thread, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, port


def timed(calls, texts: list[str]) -> np.ndarray:
    """``[len(calls), len(texts)]`` ms; the calls alternate query by query, so a busy moment of a shared
    machine falls on both columns alike."""
    for text in texts[:WARMUP_QUERIES]:
        for call in calls:
            call(text)
    latencies = np.zeros((len(calls), len(texts)))
    for q, text in enumerate(texts):
        for c, call in enumerate(calls):
            start = time.perf_counter()
            call(text)
            latencies[c, q] = time.perf_counter() - start
    return latencies * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = create_random_model("ViT-B-32", trained=True)
    rng = np.random.default_rng(0)
    projections = np.linalg.qr(rng.standard_normal((K, D, D)).astype(np.float32))[0]
    topics = 2.0 * rng.standard_normal((max(args.units) // 20, D)).astype(np.float32)
    texts = queries(args.queries)
    print(f"# GLSCL shapes D={D} T={T} K={K}; {os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}; "
          f"{args.queries} queries, k=10, warm")
    print(f"{'units':>9} {'in-process p50 ms':>18} {'p95 ms':>8} {'GET /api/search p50 ms':>23} {'p95 ms':>8} "
          f"{'HTTP overhead p50 ms':>21}")
    for n in args.units:
        root = Path(tempfile.mkdtemp(prefix="glscl-serve-"))
        build_index(root, n, rng, projections, topics, index_dims(model), "synthetic")
        searcher = Searcher(IndexReader.open(root), model)
        app = create_app(LiveIndex.from_searcher(searcher), ThumbnailCache(root / "thumbnails"))
        server, thread, port = serve(app)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            def get(text: str) -> None:
                response = client.get("/api/search", params={"q": text, "k": 10})
                response.raise_for_status()
                assert len(response.json()["results"]) == 10

            in_process, http = timed([lambda text, s=searcher: s.search([text], SearchConfig(k=10)), get], texts)
        server.should_exit = True
        thread.join()
        p50, p95 = np.percentile(in_process, 50), np.percentile(in_process, 95)
        h50, h95 = np.percentile(http, 50), np.percentile(http, 95)
        print(f"{n:>9} {p50:>18.1f} {p95:>8.1f} {h50:>23.1f} {h95:>8.1f} {h50 - p50:>21.1f}", flush=True)
        del searcher, app
        shutil.rmtree(root)
    print("command: .venv/bin/python benchmarks/serve_latency.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
