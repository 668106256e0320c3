"""FAISS over the global keys (inner product), with the index type chosen by collection size."""

from __future__ import annotations

import faiss
import numpy as np

FLAT_LIMIT = 1_000_000  # exact search is cheap enough up to here
FAISS_TYPES = ("auto", "flat", "hnsw")


def choose_type(num_units: int, requested: str) -> str:
    if requested not in FAISS_TYPES:
        raise ValueError(f"unknown FAISS index type {requested!r}; use one of {', '.join(FAISS_TYPES)}")
    if requested != "auto":
        return requested
    return "flat" if num_units <= FLAT_LIMIT else "hnsw"


def build_index(keys: np.ndarray, faiss_type: str) -> faiss.Index:
    """keys float32 ``[N, G]`` -> a searchable inner-product index (on GPU when faiss-gpu sees one)."""
    dim = keys.shape[1]
    kind = choose_type(len(keys), faiss_type)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 256
    else:
        index = faiss.IndexFlatIP(dim)
    if kind == "flat" and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(np.ascontiguousarray(keys, dtype=np.float32))
    return index


def search(index: faiss.Index, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """queries ``[Q, G]`` -> (scores ``[Q, n']``, rows ``[Q, n']``), best first, n' = min(n, N)."""
    n = min(n, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), n)
