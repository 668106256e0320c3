"""Approximate search over the global keys: codes per segment, one shared encoder, tuned on the collection.

Each segment stores its keys' codes (``shards/<segment>.<tag>.codes.npy``, uint8
``[rows, C]``, row i = the segment's row i, dead rows included) next to its rows. The
encoder the codes are in is named by the manifest (``AnnState``):
- ``flat``: the code is the float16 key itself (C = 2 G bytes); search scans every key.
  Used while the collection's float16 keys stay under FLAT_MAX_BYTES, where a scan is fast.
- ``pqscan``: one encoder (``ScanEncoder``, trained on a sample of the collection's keys, stored
  once as ``ann-*.npz``) shared by every segment. It projects a key on the top AXES principal axes
  of the keys' second moment (not centred, so inner products are kept). The code is the number of
  the nearest of ``lists`` centres of the first SCAN_AXES projections, a 4-bit product-quantiser
  code of their residual from it (64 bytes), then an 8-bit code of each of the AXES projections
  (512 bytes). A search scans the 4-bit codes of ``probes`` lists (the ones whose centres score best)
  with faiss's SIMD fast scan, scores its ``shortlist`` best by their 8-bit codes, and returns the
  best of those.
Residuals, not the projections themselves, are what the 4-bit codes hold: units of one tight cluster
then get distinct codes, where a global code gave them nearly the same one and a query by example
needed a shortlist four times longer at 1M units (docs/benchmarks.md). Lists cost recall only
when a search skips some; the tuner measures that, and visiting every list is one of its choices.
A reader adds every segment's codes to one in-memory index (``open_index``) and skips tombstoned
rows, so a commit writes codes for its new rows only.

The candidates only choose what the exact GLSCL rerank scores, so the tuner (``tune``) measures, for
queries made from the collection's own units (text-like ones and the units themselves,
store/tuning_queries.py), how many of each one's exact GLSCL top 10 are among the candidates, and
picks the cheapest (shortlist, candidate count) that keeps that recall, less two standard errors, at or above
RECALL_TARGET,
costing each setting by its measured search time and the measured time of scoring a candidate exactly.
Where no setting reaches it, every unit is scored (exhaustive, exact): slower, never wrong.
"""

from __future__ import annotations

import contextlib
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from glscl_index.atomic import atomic_write
from glscl_index.store.ann_state import (
    AXES,
    CANDIDATE_LADDER,
    FLAT,
    RECALL_TARGET,
    SHORTLIST_LADDER,
    AnnState,
    lists_for,
    probe_choices,
    scan_dims,
)
from glscl_index.store.shards import MADV_POPULATE_READ

SCAN_BITS = 4  # faiss's fast scan takes 4-bit codes only
TRAIN_ROWS = 50_000  # keys sampled to train the encoder
AXES_ROWS = 20_000  # of which the second moment is estimated from (G x G from M rows: M G^2 flops)
RANGE_MARGIN = 0.05  # the 8-bit range is widened by this fraction each side for units coded after training
ADD_CHUNK = 32768  # keys encoded at a time (bounds the float32 copy)
PARALLEL_MIN_ROWS = 4096  # fewer keys than this are encoded on one thread
# 8-bit codes refined at a time: a shortlist of every unit (isotropic keys at 1M) was gathered whole, twice
# (numpy's gather, then faiss's copy): ~1 GB per query at 512 bytes a code.
REFINE_CHUNK = 65_536
# Queries the tuner times one at a time for a setting's search cost: a search answers one query, and a batch
# shares the scan's work (at 1M units a batch of 100 took 12.3 ms a query where one query alone took 25.4 ms
# with every list visited, 10.8 vs 19.5 ms with a quarter: one-off timings): timed in batches, visiting more
# lists looked cheaper than it is.
LATENCY_QUERIES = 10


@dataclass
class ScanEncoder:
    """Keys ``[N, G]`` -> codes uint8 ``[N, scan_bytes + A]``: list number and 4-bit PQ code of the residual of the
    first SCAN_AXES projections, then one byte per projection on the A axes."""

    axes: np.ndarray  # float32 [G, A]: the top principal axes of the keys' second moment
    ivf: faiss.IndexIVFPQ  # lists and 4-bit product quantiser of the first ``ivf.d`` projections (trained, empty)
    low: np.ndarray  # float32 [A]: each projection's 8-bit range start
    step: np.ndarray  # float32 [A]: its 8-bit step

    @property
    def scan_bytes(self) -> int:
        return int(self.ivf.sa_code_size())

    @property
    def code_size(self) -> int:
        return self.scan_bytes + self.axes.shape[1]

    @property
    def lists(self) -> int:
        return int(self.ivf.nlist)

    def project(self, keys: np.ndarray) -> np.ndarray:
        """keys ``[N, G]`` -> projections float32 ``[N, A]``."""
        return np.ascontiguousarray(keys, dtype=np.float32) @ self.axes

    def encode(self, keys: np.ndarray) -> np.ndarray:
        projected = self.project(keys)
        scan = self.ivf.sa_encode(np.ascontiguousarray(projected[:, : self.ivf.d]))
        fine = np.clip(np.rint((projected - self.low) / self.step), 0, 255).astype(np.uint8)
        return np.concatenate([scan, fine], axis=1)


def train_encoder(sample: np.ndarray) -> ScanEncoder:
    """A pqscan encoder for keys like ``sample`` ``[M, G]`` float32."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    key_dim = sample.shape[1]
    moment_rows = sample[np.linspace(0, len(sample) - 1, min(len(sample), AXES_ROWS)).astype(np.int64)]
    moment = (moment_rows.T @ moment_rows).astype(np.float64) / len(moment_rows)
    _, vectors = np.linalg.eigh(moment)  # ascending eigenvalues
    axes = np.ascontiguousarray(vectors[:, ::-1][:, : min(AXES, key_dim)], dtype=np.float32)
    projected = sample @ axes
    ivf = _scan_quantizer(scan_dims(key_dim), lists_for(len(sample)))
    ivf.train(np.ascontiguousarray(projected[:, : ivf.d]))
    low, high = projected.min(axis=0), projected.max(axis=0)
    margin = RANGE_MARGIN * (high - low)
    low, high = low - margin, high + margin
    step = np.where(high > low, (high - low) / 255, 1.0).astype(np.float32)
    return ScanEncoder(axes, ivf, low.astype(np.float32), step)


def _scan_quantizer(dims: int, lists: int) -> faiss.IndexIVFPQ:
    """An untrained ``lists``-list IVF with 4-bit PQ codes (two projections per sub-quantizer) of the residuals."""
    ivf = faiss.IndexIVFPQ(faiss.IndexFlatIP(dims), dims, lists, dims // 2, SCAN_BITS, faiss.METRIC_INNER_PRODUCT)
    ivf.by_residual = lists > 1
    return ivf


def encode(keys: np.ndarray, state: AnnState, encoder: ScanEncoder | None) -> np.ndarray:
    """keys ``[N, G]`` -> codes uint8 ``[N, C]`` in ``state``'s encoder."""
    if state.kind == FLAT:
        return np.ascontiguousarray(keys, dtype=np.float16).view(np.uint8).reshape(len(keys), -1)
    if encoder is None:
        raise AssertionError("a pqscan state needs its encoder")
    with _threads_for(len(keys)):
        return encoder.encode(keys)


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
    """The codes of one segment (memory-mapped: the scan part is copied into the search index, the rest is read
    for the shortlisted rows only).

    The map's page tables are filled now (MADV_POPULATE_READ): the shortlist touches thousands of rows
    scattered over the codes, and a first touch of each page costs a page fault (~25 us here; FileRows in
    store/schema.py). The codes are 578 bytes per unit, read whole at open anyway (the scan part)."""
    codes = np.load(path, mmap_mode="r", allow_pickle=False)
    mapping = getattr(codes, "_mmap", None)
    if mapping is not None and MADV_POPULATE_READ is not None:
        with contextlib.suppress(OSError, ValueError):  # kernels before 5.14 do not know the advice
            mapping.madvise(MADV_POPULATE_READ)
    return codes


def write_encoder(path: Path, encoder: ScanEncoder) -> None:
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as sink:
            np.savez(
                sink, axes=encoder.axes, low=encoder.low, step=encoder.step, ivf=faiss.serialize_index(encoder.ivf)
            )


def read_encoder(path: Path) -> ScanEncoder:
    """Raises FileNotFoundError, or ValueError when the file is not a whole encoder.

    An encoder written before lists (a flat 4-bit PQ, ``pq``) reads as one list without residuals: its codes are
    the same bytes, so its index is searched as before until the next commit trains a new one."""
    if not path.is_file():
        raise FileNotFoundError(2, "encoder file is missing", str(path))
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in ("axes", "low", "step")}
            quantizer = stored["ivf"] if "ivf" in stored.files else stored["pq"]
        scan = faiss.deserialize_index(quantizer)  # already the concrete class; downcasting it again frees it
    except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:  # numpy's, faiss's
        raise ValueError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'damaged'}") from exc
    if isinstance(scan, faiss.IndexPQ):
        scan = _one_list(scan)
    axes, low, step = arrays["axes"], arrays["low"], arrays["step"]
    width = (axes.shape[1],) if axes.ndim == 2 else None
    if not isinstance(scan, faiss.IndexIVFPQ) or low.shape != width or step.shape != width or scan.d > axes.shape[1]:
        raise ValueError("the encoder's parts do not fit together")
    return ScanEncoder(axes, scan, low, step)


def _one_list(pq: faiss.IndexPQ) -> faiss.IndexIVFPQ:
    """A flat PQ as a one-list IVF without residuals (faiss writes no list number for one list: the same codes)."""
    ivf = _scan_quantizer(pq.d, 1)
    ivf.quantizer.add(np.zeros((1, pq.d), np.float32))
    faiss.copy_array_to_vector(faiss.vector_to_array(pq.pq.centroids), ivf.pq.centroids)
    ivf.is_trained = True
    return ivf


class SearchIndex:
    """Every segment's codes; rows are physical ids (segment base + row), dead ones skipped.

    ``search`` returns physical ids; the reader maps them to its live rows.
    """

    def __init__(
        self, index: Any, state: AnnState, dead: np.ndarray, encoder: ScanEncoder | None = None,
        fine: FineCodes | None = None,
    ):
        self.index = index  # flat: fp16 scalar-quantizer index; pqscan: IVF-PQ fast-scan index
        self.state = state
        self.encoder = encoder
        self.fine = fine  # pqscan: the 8-bit codes [physical, A], read for shortlisted rows only
        self.dead = np.ascontiguousarray(dead, dtype=np.int64)
        self.alive = np.ones(index.ntotal, bool)
        self.alive[self.dead] = False
        self.live = index.ntotal - len(self.dead)
        inner = faiss.IDSelectorBatch(self.dead) if len(self.dead) else None
        self._keep = (inner, faiss.IDSelectorNot(inner)) if inner is not None else None
        self._refine = _refiner(encoder) if encoder is not None else None

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def search(
        self, queries: np.ndarray, n: int, shortlist: int | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """queries ``[Q, G]`` -> (scores ``[Q, n']``, physical ids ``[Q, n']``), best first; -1 ids pad.

        pqscan: the best ``shortlist`` units by their 4-bit codes in the ``probes`` best lists (defaults: the tuned
        ones; shortlist at least ``n``), then the best ``n`` of those by their 8-bit codes."""
        n = max(1, min(n, self.live))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.state.kind == FLAT:
            params = faiss.SearchParameters()
            if self._keep is not None:
                params.sel = self._keep[1]
            return self.index.search(queries, n, params=params)
        shortlist = max(n, shortlist or self.state.shortlist_for(self.live) or SHORTLIST_LADDER[-1])
        return self._scan(queries, n, shortlist, probes or self.state.probes or self.index.nlist)

    def _scan(self, queries: np.ndarray, n: int, shortlist: int, probes: int) -> tuple[np.ndarray, np.ndarray]:
        if self.encoder is None or self.fine is None or self._refine is None:
            raise AssertionError("a pqscan index needs its encoder and 8-bit codes")
        projected = self.encoder.project(queries)
        params = faiss.SearchParametersIVF()
        params.nprobe = min(probes, self.index.nlist)
        # The fast scan takes no ID selector: ask for as many more as there are dead rows, and drop those.
        wanted = min(self.ntotal, min(shortlist, self.live) + len(self.dead))
        _, found = self.index.search(np.ascontiguousarray(projected[:, : self.encoder.ivf.d]), wanted, params=params)
        scores = np.full((len(queries), n), -np.inf, np.float32)
        ids = np.full((len(queries), n), -1, np.int64)
        for q in range(len(queries)):  # one query's shortlist at a time
            rows = found[q][found[q] >= 0]
            rows = np.sort(rows[self.alive[rows]][:shortlist])  # ascending: the memory-mapped codes read forwards
            best_scores, best = self._refine_rows(projected[q : q + 1], rows, n)
            scores[q, : len(best)], ids[q, : len(best)] = best_scores, best
        return scores, ids

    def _refine_rows(self, query: np.ndarray, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` of physical ``rows`` ``[S]`` (ascending) by their 8-bit codes for ``query`` ``[1, A]``:
        (scores, rows), best first, REFINE_CHUNK rows' codes in memory at a time."""
        assert self._refine is not None and self.fine is not None
        if not len(rows):
            return np.zeros(0, np.float32), rows
        found_scores, found_rows = [], []
        for start in range(0, len(rows), REFINE_CHUNK):
            chunk = rows[start : start + REFINE_CHUNK]
            # faiss scores the 8-bit codes (SIMD, no float copy of them): 6 ms for 25,600 rows where numpy's
            # float copy and product took 14 ms (a one-off timing at 1M units). The codes are gathered straight
            # into the index's own buffer, not copied into it after.
            self._refine.codes.resize(chunk.size * self.fine.width)
            self.fine.gather(chunk, faiss.rev_swig_ptr(self._refine.codes.data(), self._refine.codes.size()))
            self._refine.ntotal = len(chunk)
            chunk_scores, best = self._refine.search(query, min(n, len(chunk)))
            kept = best[0] >= 0
            found_scores.append(chunk_scores[0][kept])
            found_rows.append(chunk[best[0][kept]])
        if len(found_scores) == 1:
            return found_scores[0], found_rows[0]
        merged_scores, merged_rows = np.concatenate(found_scores), np.concatenate(found_rows)
        order = np.argsort(-merged_scores, kind="stable")[:n]
        return merged_scores[order], merged_rows[order]


class FineCodes:
    """The segments' 8-bit codes ``[physical, A]`` uint8: views of their memory-mapped code files, one per segment."""

    def __init__(self, parts: list[np.ndarray], width: int):
        self.parts = parts
        self.width = width
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self._tensors: list[Any] | None = None

    def gather(self, ascending: np.ndarray, out: np.ndarray) -> None:
        """Write rows ``ascending`` ``[S]`` (sorted physical ids) into ``out`` (``S * A`` bytes), in that order.

        torch's row gather copies on both cores: 2.5-4.5 ms for a 25,800-row shortlist at 1M units where numpy's
        fancy indexing took 6.3 ms and ``np.take(out=)`` 200 ms (one-off timings). torch is imported by the first
        search, which a writer makes only when it tunes, after it scored candidates with torch anyway."""
        import torch

        if self._tensors is None:
            with warnings.catch_warnings():  # the maps are read-only and stay so: torch only reads them here
                warnings.simplefilter("ignore", UserWarning)
                self._tensors = [torch.from_numpy(part) for part in self.parts]
        target = torch.from_numpy(out.reshape(len(ascending), self.width))
        bounds = np.searchsorted(ascending, self.starts)
        for part in np.flatnonzero(bounds[1:] > bounds[:-1]).tolist():
            first, last = int(bounds[part]), int(bounds[part + 1])
            local = torch.from_numpy(ascending[first:last] - self.starts[part])
            torch.index_select(self._tensors[part], 0, local, out=target[first:last])


def _refiner(encoder: ScanEncoder) -> faiss.IndexScalarQuantizer:
    """An empty faiss 8-bit index whose codes mean what the encoder's 8-bit codes mean (low + step x code): faiss
    decodes a code c of a dimension as vmin + (c + 0.5) / 255 x vdiff."""
    refine = faiss.IndexScalarQuantizer(
        encoder.axes.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    trained = np.concatenate([encoder.low - 0.5 * encoder.step, 255 * encoder.step]).astype(np.float32)
    faiss.copy_array_to_vector(trained, refine.sq.trained)
    refine.is_trained = True
    return refine


def open_index(
    state: AnnState, encoder: ScanEncoder | None, codes: list[np.ndarray], key_dim: int, dead: np.ndarray
) -> SearchIndex:
    """One searchable index over the segments' ``codes`` (in manifest order) skipping physical ids ``dead``."""
    index: Any
    if state.kind == FLAT:
        index = faiss.IndexScalarQuantizer(key_dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        for part in codes:
            if len(part):
                index.add_sa_codes(np.ascontiguousarray(part))
        return SearchIndex(index, state, dead)
    if encoder is None:
        raise AssertionError("a pqscan state needs its encoder")
    ivf: Any = faiss.clone_index(encoder.ivf)  # an IndexIVFPQ; faiss's stubs know only the base class
    scan = encoder.scan_bytes
    for part in codes:
        if len(part):
            ivf.add_sa_codes(np.ascontiguousarray(part[:, :scan]))  # ids follow on: physical ids
    # Plain ndarray views of the maps: indexing a np.memmap makes a memmap of each result, 0.2 ms a part.
    fine = FineCodes([np.asarray(part)[:, scan:] for part in codes], encoder.axes.shape[1])
    # faiss's fast scan takes its codes from a filled IVF-PQ (adding codes to it directly is not supported).
    return SearchIndex(faiss.IndexIVFPQFastScan(ivf), state, dead, encoder, fine)


@dataclass
class Tuning:
    probes: int
    shortlist: int
    candidates: int
    recall: float
    queries: int


def tune(index: SearchIndex, groups: list[tuple[np.ndarray, np.ndarray]], rerank_seconds: float) -> Tuning:
    """The cheapest (probes, shortlist, candidates) whose candidates hold RECALL_TARGET of the truth in every group:
    the lower bound of the recall measured on the group's queries (``recall_bound``) at or above it.

    ``groups``: (queries ``[S, G]``, their truth ``[S, k]`` physical ids) per kind of query. Cost = the measured
    seconds of one query's search (``one_query_seconds``) + candidates x ``rerank_seconds`` (the measured exact
    scoring of one candidate). Where no setting reaches the target, the search must score every unit: candidates =
    the live count, which the searcher runs as exhaustive scoring (exact, recall 1).
    """
    queries = sum(len(q) for q, _ in groups)
    every = np.concatenate([q for q, _ in groups])
    timed = every[:: max(1, len(every) // LATENCY_QUERIES)][:LATENCY_QUERIES]
    # Over half the collection is left to exhaustive scoring: it reads every unit in order, where a rerank of half of
    # them would read as much at random.
    counts = [c for c in CANDIDATE_LADDER if 2 * c <= index.live] or [CANDIDATE_LADDER[0]]
    visits, shortlists = [0], [0]
    if index.state.kind != FLAT:
        visits = probe_choices(index.index.nlist)
        shortlists = [s for s in SHORTLIST_LADDER if s < index.live] + [index.live]
    best: tuple[float, Tuning] | None = None
    for probes in visits:
        for shortlist in shortlists:
            usable = [c for c in counts if not shortlist or c <= shortlist]
            found = [index.search(q, max(usable), shortlist, probes)[1] for q, _ in groups]
            seconds = one_query_seconds(index, timed, max(usable), shortlist, probes)
            ranks = [truth_ranks(f, truth) for f, (_, truth) in zip(found, groups, strict=True)]
            reached = next((c for c in usable if all(recall_bound(r, c)[1] >= RECALL_TARGET for r in ranks)), None)
            if reached is not None:
                cost = seconds + reached * rerank_seconds
                if best is None or cost < best[0]:
                    recall = min(recall_bound(r, reached)[0] for r in ranks)
                    best = (cost, Tuning(probes, shortlist, reached, recall, queries))
            if reached == usable[0] or (best is not None and seconds >= best[0]):
                # A longer shortlist scans more: it cannot need fewer candidates than the fewest, and its search
                # alone already costs what the best setting does (at 1M units the whole collection's took minutes).
                break
    return best[1] if best is not None else Tuning(0, index.live, index.live, 1.0, queries)


def one_query_seconds(index: SearchIndex, queries: np.ndarray, n: int, shortlist: int, probes: int) -> float:
    """Median seconds of a search of one of ``queries`` ``[L, G]`` on its own, as the searcher asks."""
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.search(query[None], n, shortlist, probes)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))


def truth_ranks(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Where each of ``truth``'s ids ``[S, k]`` first appears among its query's ``found`` ids ``[S, n]``: positions
    ``[S, k]``, n where absent, -1 where ``truth`` pads."""
    hits = truth[:, :, None] == found[:, None, :]
    ranks = np.where(hits.any(axis=2), hits.argmax(axis=2), found.shape[1])
    return np.where(truth >= 0, ranks, -1)


def recall_bound(ranks: np.ndarray, candidates: int) -> tuple[float, float]:
    """(recall, its lower bound) of the truth among the first ``candidates`` found (``ranks`` from ``truth_ranks``):
    the mean over the queries of each one's fraction, and that mean less two of its standard errors.

    The bound, not the mean, must reach the target: misses come in bunches (a query whose top 10 lies off its
    shortlist misses several), so 100 queries' 1,000 neighbours measure recall less surely than 1,000 draws; at
    1M clustered units two samples of the tuner's queries gave 0.986 (a one-off run) and 0.996 for the same 280
    candidates."""
    real = ranks >= 0
    counted = real.any(axis=1)
    if not counted.any():
        return 1.0, 1.0
    per_query = ((ranks < candidates) & real).sum(axis=1)[counted] / real.sum(axis=1)[counted]
    mean = float(per_query.mean())
    if len(per_query) < 2:
        return mean, mean
    return mean, mean - 2 * float(per_query.std(ddof=1)) / float(np.sqrt(len(per_query)))


def candidate_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's ``truth`` ids ``[S, k]`` (-1 pads) among its ``found`` ids ``[S, n]``."""
    return recall_bound(truth_ranks(found, truth), found.shape[1])[0]
