"""Approximate search over the global keys: codes per segment, one shared encoder, tuned on the collection.

Each segment stores its keys' codes (``shards/<segment>.<tag>.codes.npy``, uint8
``[rows, C]``, row i = the segment's row i, dead rows included) next to its rows. The
encoder the codes are in is named by the manifest (``AnnState``):
- ``flat``: the code is the float16 key itself (C = 2 G bytes); search scans every key.
  Used while the collection's float16 keys stay under FLAT_MAX_BYTES, where a scan is fast.
- ``ivfpq``: one IVF-PQ encoder (a coarse quantizer and product-quantiser codebooks,
  trained on a sample of the collection's keys, stored once as ``ann-*.faiss``) shared by
  every segment; the code is the list number plus G / 16 bytes.
A reader adds every segment's codes to one in-memory index (``open_index``) and skips
tombstoned rows with an ID selector, so a commit writes codes for its new rows only.

The candidates only choose what the exact GLSCL rerank scores, so the tuner
(``tune``) measures, for queries made from the collection's own units (text-like ones and
the units themselves, store/tuning_queries.py), how many of each one's exact GLSCL top 10 are
among the candidates, and picks the cheapest (nprobe, candidate count) that keeps that recall at or
above RECALL_TARGET, costing each setting by its measured FAISS time and the measured time of
scoring a candidate exactly. Where no setting reaches it, every unit is scored (exhaustive,
exact): slower, never wrong.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from glscl_index.atomic import atomic_write
from glscl_index.store.ann_state import (
    CANDIDATE_LADDER,
    FLAT,
    IVFPQ,
    RETRAIN_GROWTH,
    TUNE_TARGET,
    AnnState,
)

TRAIN_POINTS_PER_LIST = 64
MIN_TRAIN_POINTS = 10_000  # PQ's 256 centroids per sub-quantizer want >= 39 x 256 points
MAX_TRAIN_POINTS = 100_000
ADD_CHUNK = 32768  # keys encoded at a time (bounds the float32 copy)
PARALLEL_MIN_ROWS = 4096  # fewer keys than this are encoded on one thread


def inverted_lists(num_units: int) -> int:
    """IVF list count: ~sqrt(N) / 2, at least 1. Fewer lists than the usual 4 sqrt(N) keep the
    assignment cost (lists x G per key) affordable on CPU at G = 4608; the tuner picks nprobe."""
    return max(1, int(math.sqrt(num_units) / 2))


def _pq_subvector(key_dim: int) -> int:
    """Dimensions per PQ sub-quantizer (one byte each): 16 where the width allows."""
    return next(width for width in (16, 8, 4, 2, 1) if key_dim % width == 0)


def train_encoder(sample: np.ndarray, num_units: int) -> faiss.Index:
    """A trained, empty IVF-PQ index for keys like ``sample`` ``[M, G]`` float32, sized for ``num_units``.

    Lists are sized for the collection it will grow to before the next training (RETRAIN_GROWTH).
    """
    key_dim = sample.shape[1]
    lists = min(inverted_lists(num_units * RETRAIN_GROWTH // 2), max(1, len(sample) // 39))
    index = faiss.index_factory(
        key_dim, f"IVF{lists},PQ{key_dim // _pq_subvector(key_dim)}", faiss.METRIC_INNER_PRODUCT
    )
    # Polysemous training reorders the codes for Hamming-distance filtering, which is not used here;
    # it is faiss's default and takes ten times longer than the training itself.
    ivfpq: Any = faiss.downcast_index(index)  # faiss's Python types do not know the subclasses' fields
    ivfpq.do_polysemous_training = False
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def training_rows(num_units: int, lists_hint: int | None = None) -> int:
    """How many keys to train an encoder on: 64 per list, at least 10k, at most 100k and N."""
    lists = lists_hint or inverted_lists(num_units * RETRAIN_GROWTH // 2)
    return min(num_units, min(MAX_TRAIN_POINTS, max(TRAIN_POINTS_PER_LIST * lists, MIN_TRAIN_POINTS)))


def encode(keys: np.ndarray, state: AnnState, encoder: faiss.Index | None) -> np.ndarray:
    """keys ``[N, G]`` -> codes uint8 ``[N, C]`` in ``state``'s encoder."""
    if state.kind == FLAT:
        return np.ascontiguousarray(keys, dtype=np.float16).view(np.uint8).reshape(len(keys), -1)
    if encoder is None:
        raise AssertionError("an IVF-PQ state needs its encoder")
    with _threads_for(len(keys)):
        return encoder.sa_encode(np.ascontiguousarray(keys, dtype=np.float32))


@contextmanager
def _threads_for(rows: int) -> Iterator[None]:
    """One OpenMP thread for small batches: faiss's per-call thread barriers cost more than the work then,
    and under CPU contention far more (measured: 100 IVF-PQ codes in 1.2 s on 2 threads, 0.06 s on 1)."""
    if rows >= PARALLEL_MIN_ROWS:
        yield
        return
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def code_file_name(segment: str, state: AnnState) -> str:
    """``shard-...-x.parquet`` -> ``shard-...-x.<tag>.codes.npy`` (under shards/)."""
    return f"{Path(segment).stem}.{state.tag}.codes.npy"


def write_codes(path: Path, codes: np.ndarray) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as sink:
            np.save(sink, codes, allow_pickle=False)


def read_codes(path: Path) -> np.ndarray:
    """The codes of one segment (memory-mapped: they are copied once into the search index)."""
    return np.load(path, mmap_mode="r", allow_pickle=False)


def write_encoder(path: Path, encoder: faiss.Index) -> None:
    with atomic_write(path) as tmp:
        faiss.write_index(encoder, str(tmp))


def read_encoder(path: Path) -> faiss.Index:
    """Raises FileNotFoundError, or RuntimeError when faiss cannot read it."""
    if not path.is_file():
        raise FileNotFoundError(2, "encoder file is missing", str(path))
    return faiss.read_index(str(path))


class SearchIndex:
    """Every segment's codes in one FAISS index; rows are physical ids (segment base + row), dead ones skipped.

    ``search`` returns physical ids; the reader maps them to its live rows.
    """

    def __init__(self, index: faiss.Index, state: AnnState, dead: np.ndarray):
        self.index = index
        self.state = state
        self._inner = faiss.IDSelectorBatch(np.ascontiguousarray(dead, dtype=np.int64)) if len(dead) else None
        self._selector = faiss.IDSelectorNot(self._inner) if self._inner is not None else None
        self.live = index.ntotal - len(dead)

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, n: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """queries ``[Q, G]`` -> (scores ``[Q, n']``, physical ids ``[Q, n']``), best first; -1 ids pad."""
        n = max(1, min(n, self.live))
        params: Any = faiss.SearchParametersIVF() if self.state.kind == IVFPQ else faiss.SearchParameters()
        if self.state.kind == IVFPQ:
            params.nprobe = nprobe or self.state.nprobe or 1
        if self._selector is not None:
            params.sel = self._selector
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), n, params=params)


def open_index(
    state: AnnState, encoder: faiss.Index | None, codes: list[np.ndarray], key_dim: int, dead: np.ndarray
) -> SearchIndex:
    """One searchable index over the segments' ``codes`` (in manifest order) skipping physical ids ``dead``."""
    index: Any
    if state.kind == FLAT:
        index = faiss.IndexScalarQuantizer(key_dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for part in codes:
            if len(part):
                index.add_sa_codes(np.ascontiguousarray(part))
    else:
        if encoder is None:
            raise AssertionError("an IVF-PQ state needs its encoder")
        index = faiss.clone_index(encoder)
        base = 0
        for part in codes:
            if len(part):
                index.add_sa_codes(np.ascontiguousarray(part), np.arange(base, base + len(part), dtype=np.int64))
            base += len(part)
    return SearchIndex(index, state, dead)


@dataclass
class Tuning:
    nprobe: int
    candidates: int
    recall: float
    queries: int


def tune(index: SearchIndex, groups: list[tuple[np.ndarray, np.ndarray]], rerank_seconds: float) -> Tuning:
    """The cheapest (nprobe, candidates) whose candidates hold >= TUNE_TARGET of the truth in every group.

    ``groups``: (queries ``[S, G]``, their truth ``[S, k]`` physical ids) per kind of query. Cost = measured FAISS
    seconds per query + candidates x ``rerank_seconds`` (the measured exact scoring of one candidate). Where no
    setting reaches the target, the search must score every unit: candidates = the live count, which the
    searcher runs as exhaustive scoring (exact, recall 1).
    """
    lists = faiss.extract_index_ivf(index.index).nlist if index.state.kind == IVFPQ else 1
    probes = sorted({min(lists, 2**i) for i in range(int(math.log2(lists)) + 2)})
    queries = sum(len(q) for q, _ in groups)
    best: tuple[float, Tuning] | None = None
    for candidates in CANDIDATE_LADDER:
        if candidates >= index.live and candidates != CANDIDATE_LADDER[0]:
            break
        for nprobe in probes:
            if best is not None and nprobe >= best[1].nprobe and candidates > best[1].candidates:
                break  # a setting reached the target with fewer probes and candidates: only fewer probes can beat it
            started = time.perf_counter()
            recall = min(candidate_recall(index.search(q, candidates, nprobe)[1], truth) for q, truth in groups)
            seconds = (time.perf_counter() - started) / queries
            if recall >= TUNE_TARGET:
                cost = seconds + candidates * rerank_seconds
                if best is None or cost < best[0]:
                    best = (cost, Tuning(nprobe, candidates, recall, queries))
                break
    return best[1] if best is not None else Tuning(lists, index.live, 1.0, queries)


def candidate_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's ``truth`` ids ``[S, k]`` (-1 pads) among its ``found`` ids ``[S, n]``."""
    real = truth >= 0
    if not real.any():
        return 1.0
    hits = (truth[:, :, None] == found[:, None, :]).any(axis=2)
    return float(hits[real].mean())
