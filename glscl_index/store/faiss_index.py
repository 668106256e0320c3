"""FAISS over the global keys (inner product): built by the writer at commit, stored as one file per generation.

The type fits the collection (``choose_type``): exact flat search while its
float32 keys stay small, then flat search over float16 keys (exact up to
float16 rounding, half the memory), then IVF with product-quantised codes
when even that is too much; IVF with 8-bit scalar-quantised codes by override.
Flat types come first because IVF's candidates can miss much of the exhaustive
top 10 on hard key distributions (measured in docs/benchmarks.md): correct before fast.
HNSW is offered by override (it keeps every float32 key and its build is slow on
CPU at ViT-B/32 key widths, so ``auto`` never picks it). Approximate types only
feed candidates to the exact rerank, which is what keeps the final ranking exact.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from glscl_index.atomic import atomic_write

FAISS_TYPES = ("auto", "flat", "flat16", "hnsw", "ivf", "ivfpq")
# Flat scans N x G float32 keys per query and holds them in memory: 2 GiB is ~116k units of
# ViT-B/32 trained keys (G = 4608), ~1M zero-shot ones (G = 512); beyond, IVF answers faster.
FLAT_MAX_BYTES = 2 << 30
# Flat over float16 keys: 16 GiB is ~1.86M trained ViT-B/32 units (memory-mapped, scanned per query).
FLAT16_MAX_BYTES = 16 << 30
# IVF-SQ8 holds N x G bytes (4.6 GB for 1M trained ViT-B/32 units); beyond this, PQ codes (G / 16 bytes per unit).
SQ8_MAX_BYTES = 8 << 30
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 256
ADD_CHUNK = 32768  # keys per add() call: bounds the float32 copy of memory-mapped keys
TRAIN_POINTS_PER_LIST = 64
MIN_TRAIN_POINTS = 10_000  # PQ's 256 centroids per sub-quantizer want >= 39 x 256 points
MMAP_MIN_BYTES = 256 << 20  # files this big are memory-mapped rather than read


def choose_type(num_units: int, key_dim: int, requested: str) -> str:
    """``requested`` (one of FAISS_TYPES) -> the concrete type for ``num_units`` keys of width ``key_dim``."""
    if requested not in FAISS_TYPES:
        raise ValueError(f"unknown FAISS index type {requested!r}; use one of {', '.join(FAISS_TYPES)}")
    if requested != "auto":
        return requested
    if num_units * key_dim * 4 <= FLAT_MAX_BYTES:
        return "flat"
    return "flat16" if num_units * key_dim * 2 <= FLAT16_MAX_BYTES else "ivfpq"


def inverted_lists(num_units: int) -> int:
    """IVF list count: ~sqrt(N) / 2, at least 1. Fewer lists than the usual 4 sqrt(N) keep the
    assignment cost (lists x G per key) affordable on CPU at G = 4608; nprobe scales with it."""
    return max(1, int(math.sqrt(num_units) / 2))


def probes(lists: int) -> int:
    """Lists visited per query: 1/8 of them, at least 8 (see docs/storage.md for what that recalls)."""
    return min(lists, max(8, lists // 8))


def new_index(kind: str, num_units: int, key_dim: int) -> faiss.Index:
    """An empty (untrained for IVF types) inner-product index of a concrete ``kind``."""
    lists = inverted_lists(num_units)
    factory = {
        "flat": "Flat",
        "flat16": "SQfp16",
        "hnsw": f"HNSW{HNSW_NEIGHBOURS}",
        "ivf": f"IVF{lists},SQ8",
        "ivfpq": f"IVF{lists},PQ{key_dim // _pq_subvector(key_dim)}",
    }[kind]
    return faiss.index_factory(key_dim, factory, faiss.METRIC_INNER_PRODUCT)


def _pq_subvector(key_dim: int) -> int:
    """Dimensions per PQ sub-quantizer (one byte each): 16 where the width allows."""
    return next(width for width in (16, 8, 4, 2, 1) if key_dim % width == 0)


def kind_of(index: faiss.Index) -> str:
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    if isinstance(index, faiss.IndexScalarQuantizer):
        return "flat16"
    return "flat"


def reusable(previous: faiss.Index | None, kind: str, num_units: int) -> bool:
    """A previous generation's index can be extended when it is of the same type and, for IVF, was
    trained with a list count within 2x of what ``num_units`` calls for."""
    if previous is None or kind_of(previous) != kind:
        return False
    if kind in ("ivf", "ivfpq"):
        lists = faiss.extract_index_ivf(previous).nlist
        return inverted_lists(num_units) / 2 <= lists <= inverted_lists(num_units) * 2
    return True


def build_index(keys, faiss_type: str, previous: faiss.Index | None = None, kept_rows: int = 0) -> faiss.Index:
    """keys ``[N, G]`` float32 (array or StackedRows) -> a searchable index whose row i is key i.

    ``previous`` (the last generation's index, CPU, writable) is reused when
    ``reusable``: its first ``kept_rows`` rows are the first rows of ``keys``
    (units appended since) and only the rest is added; kept_rows = 0 keeps only
    its training (IVF centroids and codebooks) when rows were removed or moved.
    """
    num_units, key_dim = keys.shape
    kind = choose_type(num_units, key_dim, faiss_type)
    if previous is not None and reusable(previous, kind, num_units) and (kept_rows or kind in ("ivf", "ivfpq")):
        index = previous
        if kept_rows == 0:
            index.reset()
    else:
        index, kept_rows = new_index(kind, num_units, key_dim), 0
        if not index.is_trained:
            ivf = faiss.try_extract_index_ivf(index)
            index.train(_training_sample(keys, ivf.nlist if ivf is not None else 1))
    for start in range(kept_rows, num_units, ADD_CHUNK):
        index.add(np.ascontiguousarray(keys[start : start + ADD_CHUNK], dtype=np.float32))
    _configure(index)
    return index


def _training_sample(keys, lists: int) -> np.ndarray:
    """An evenly spread sample of keys ``[M, G]``: 64 per IVF list (faiss wants >= 39), at least 10k, at most N."""
    count = min(len(keys), max(TRAIN_POINTS_PER_LIST * lists, MIN_TRAIN_POINTS))
    rows = np.linspace(0, len(keys) - 1, count).astype(np.int64)
    return np.ascontiguousarray(keys[rows], dtype=np.float32)


def _configure(index: faiss.Index) -> None:
    """Search-time parameters (stored in the file too, but set again so older files get current values)."""
    kind = kind_of(index)
    if kind == "hnsw":
        hnsw: Any = faiss.downcast_index(index)  # faiss's Python types do not know the subclasses
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind in ("ivf", "ivfpq"):
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = probes(ivf.nlist)


def write_index(index: faiss.Index, path: Path) -> None:
    """Write atomically: the file appears whole or not at all."""
    with atomic_write(path) as tmp:
        faiss.write_index(index, str(tmp))


def read_index(path: Path) -> faiss.Index:
    """Load a stored index (memory-mapped when large); raises FileNotFoundError or RuntimeError (damaged)."""
    size = path.stat().st_size
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if size >= MMAP_MIN_BYTES else 0
    index = faiss.read_index(str(path), flags)
    _configure(index)
    return index


def to_gpu(index: faiss.Index) -> faiss.Index:
    """Flat and IVF-SQ8 indexes move to every GPU faiss-gpu sees; HNSW and wide PQ have no GPU version."""
    if kind_of(index) in ("flat", "ivf") and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0:
        return faiss.index_cpu_to_all_gpus(index)
    return index


def search(index: faiss.Index, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """queries ``[Q, G]`` -> (scores ``[Q, n']``, rows ``[Q, n']``), best first, n' = min(n, N); -1 rows pad."""
    n = min(n, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), n)
