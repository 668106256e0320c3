"""The index at scale (issue 11): commit cost, first-run I/O, search latency and agreement, memory, disk.

Usage: .venv/bin/python benchmarks/index_scale.py [--units 10000 100000 1000000] [--keys clustered isotropic]
       [--queries 30] [--exhaustive-queries 10] [--seed 0] [--skip-first-run] [--warm-cache] [--commits 1]
    [--out DIR [--reuse]]

For each key family (benchmarks/scale_keys.py: "clustered" like CLIP, "isotropic" the worst case) and
each size N, with the ViT-B/32 GLSCL shapes D=512, T=12, K=8 and a random-weight model:
(b) first run: N one-unit videos written through the real IndexWriter with their catalog entries and a
    commit every 100 videos, as `glscl index --commit-every 100` does: wall time (the time spent
    generating the synthetic units excluded), bytes written (/proc/self/io write_bytes, the bytes this process
    dirtied in the page cache: files later replaced count too), the final index size (every file
    under the index directory) and written / size. --skip-first-run builds the index with a commit
    every 100k units instead and prints no (b) figures.
(c) search: --queries queries near random units of the index (scale_keys.KeyFamily.queries), warm
    (the first 3 are run once before timing), ranked one at a time by Searcher.rank, text encoding
    excluded: p50/p95 ms; and the mean top-10 agreement (overlap of the video ids) with exhaustive
    exact scoring (SearchConfig(exhaustive=True)) over the first --exhaustive-queries of them.
    --warm-cache reads the files a search reads (Arrow copies, codes) once before, so they are in the page
    cache, and maps the copies' pages (IndexReader.populate_maps), as for a long-running server (glscl serve,
    the Python API) on a machine with the memory for them; without it a search may wait on the disk for
    every candidate (several ms per read on this machine's virtual disk).
(d) the resident memory of a fresh process that opens the index and answers one query, above what it
    held with the model loaded (search_quality_latency.reader_memory_mb), and disk per unit.
(a) a nightly run, after (c): a new writer opens the N-unit index, adds 100 one-unit videos and
    their catalog entries, and commits: open wall time; commit wall time (IndexWriter.publish_changes:
    the generation that makes the new videos searchable); the wall time of the upkeep published after
    it when the commit made one due (IndexWriter.upkeep: a merge, store/merge_policy.py, a new encoder or
    a new tuning, store/segment_codes.py; 0 when none was); bytes written by both (write_bytes) and the
    size of the files they created or changed. --commits C > 1 makes the same writer commit C times (100
    new videos each) and prints the median and the largest commit time, and the count and largest of the
    upkeeps: work that a commit does now and then shows there.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# glscl_index first: it sets OMP_WAIT_POLICY before torch and faiss start their OpenMP runtimes, as the CLI does.
import glscl_index  # noqa: E402, F401, I001
import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.scale_keys import FAMILIES, GENERATE_CHUNK, VIT_B32, KeyFamily
from benchmarks.search_quality_latency import WARMUP_QUERIES, measure, reader_memory_mb
from glscl_index.model.factory import create_random_model
from glscl_index.search import SearchConfig, Searcher
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry, UnitBatch
from glscl_index.store.writer import IndexWriter

THREADS = 2
FIRST_RUN_COMMIT_EVERY = 100  # videos, `glscl index --commit-every` default
BULK_COMMIT_EVERY = 100_000  # units per commit when the first run is skipped (as search_quality_latency builds)
NIGHTLY_VIDEOS = 100
FINGERPRINT = "synthetic"
MB = 1 << 20


@dataclass
class Build:
    seconds: float  # writing only (data generation excluded)
    written: int  # bytes (write_bytes)
    commits: int


@dataclass
class Nightly:
    open_s: float
    files: int  # bytes of the files the first commit created or changed
    series: list[Commit]  # every commit of the run, the first included

    @property
    def commit_s(self) -> float:
        return self.series[0].seconds

    @property
    def upkeep_s(self) -> float:
        return self.series[0].upkeep_s

    @property
    def written(self) -> int:
        """Bytes (write_bytes) of the first commit."""
        return self.series[0].written


@dataclass
class Commit:
    seconds: float  # publishing the change (IndexWriter.publish_changes): the new videos are searchable after it
    upkeep_s: float  # the upkeep published after it (IndexWriter.upkeep: a merge, a new encoder, a new tuning)
    written: int  # bytes (write_bytes) of both
    upkept: bool  # the upkeep published a generation


def ann_description(reader: IndexReader) -> str:
    """The store's candidate index as the manifest records it: kind, tuned lists visited, shortlist and candidates,
    measured recall."""
    state = reader.manifest.ann
    scan = ""
    if state.kind == "pqscan":
        scan = f" probes {state.probes or state.lists}/{state.lists} shortlist {state.shortlist_for(len(reader.units))}"
    candidates = SearchConfig().candidate_count(state.candidates_for(len(reader.units)))
    return (
        f"{state.kind}{scan} cand {candidates} recall {state.recall:.3f} "
        f"(at {state.tuned_units}); {len(reader.manifest.shards)} segments"
    )


def written_bytes() -> int:
    """Bytes this process has caused to be written to storage so far (dirtied page-cache pages included)."""
    with open("/proc/self/io") as io:
        return int(dict(line.split(":") for line in io)["write_bytes"])


def file_states(root: Path) -> dict[Path, tuple[int, int]]:
    """(size, mtime ns) of every file under ``root``."""
    stats = {f: f.stat() for f in root.rglob("*") if f.is_file()}
    return {f: (st.st_size, st.st_mtime_ns) for f, st in stats.items()}


def disk_bytes(root: Path) -> int:
    return sum(size for size, _ in file_states(root).values())


def catalog_entries(units: UnitBatch) -> list[CatalogEntry]:
    """One indexed catalog entry per unit (every synthetic video is one unit)."""
    now = time.time()
    return [
        CatalogEntry(path=str(path), size=int(size), mtime_ns=int(mtime), content_hash=str(digest),
                     video_id=str(video), status="indexed", error="", units=1, indexed_at=now)
        for path, size, mtime, digest, video in zip(
            units.path, units.size, units.mtime_ns, units.content_hash, units.video_id, strict=True
        )
    ]


def open_writer(root: Path, model_config: dict) -> IndexWriter:
    return IndexWriter.open(root, fingerprint=FINGERPRINT, model_config=model_config, dims=VIT_B32)


def build(root: Path, family: KeyFamily, commit_every: int, model_config: dict) -> Build:
    """Stream the family's units into a new index at ``root``, committing every ``commit_every`` videos."""
    written, start, commits, pending, generating = written_bytes(), time.perf_counter(), 0, 0, 0.0
    chunks = family.chunks()
    with open_writer(root, model_config) as writer:
        while True:
            drawn = time.perf_counter()
            chunk = next(chunks, None)
            generating += time.perf_counter() - drawn
            if chunk is None:
                break
            first = 0
            while first < len(chunk):
                last = min(first + commit_every - pending, len(chunk))
                videos = chunk.take(np.arange(first, last))
                writer.add_units(videos)
                writer.set_catalog_entries(catalog_entries(videos))
                pending, first = pending + last - first, last
                if pending == commit_every:
                    writer.commit()
                    commits, pending = commits + 1, 0
        if pending:
            writer.commit()
            commits += 1
    return Build(time.perf_counter() - start - generating, written_bytes() - written, commits)


def nightly(root: Path, family: KeyFamily, model_config: dict, commits: int) -> Nightly:
    """A run that adds NIGHTLY_VIDEOS new one-unit videos to the index and commits, ``commits`` times (new ids each
    time: they follow the index's live units); the changed files are those of the first commit."""
    before = file_states(root)
    start = time.perf_counter()
    series: list[Commit] = []
    with open_writer(root, model_config) as writer:
        opened = time.perf_counter()
        for at in range(commits):
            committed = writer.manifest
            assert committed is not None  # an index the run built
            videos = family.units(committed.live_units, NIGHTLY_VIDEOS)
            writer.add_units(videos)
            writer.set_catalog_entries(catalog_entries(videos))
            written, began = written_bytes(), time.perf_counter()
            changed_generation = writer.publish_changes().generation
            published = time.perf_counter()
            upkept = writer.upkeep().generation > changed_generation
            series.append(Commit(
                published - began, time.perf_counter() - published, written_bytes() - written, upkept
            ))
            if at == 0:
                changed = sum(size for f, (size, mtime) in file_states(root).items() if before.get(f) != (size, mtime))
    return Nightly(opened - start, changed, series)


def series_line(name: str, n: int, series: list[Commit]) -> str:
    """Median and largest commit of a --commits run, and the upkeeps some of them made due."""
    seconds = np.array([c.seconds for c in series])
    written = np.array([c.written for c in series]) / MB
    upkeeps = [c.upkeep_s for c in series if c.upkept]
    return (
        f"{name:>9} {n:>8} | (a) {len(series)} commits of {NIGHTLY_VIDEOS} videos: commit s median "
        f"{np.median(seconds):.3f} max {seconds.max():.3f}; {len(upkeeps)} upkeeps after them, s max "
        f"{max(upkeeps, default=0):.3f}; MB written (commit and upkeep) median {np.median(written):.1f} "
        f"max {written.max():.1f}"
    )


def read_searched_files(root: Path) -> int:
    """Read once the files a search reads from (the shards' Arrow copies and the codes), so the page cache holds
    them as it does for a reader that has been answering queries for a while; the bytes read."""
    total = 0
    for path in sorted([*(root / "shards").glob("*.arrow"), *(root / "shards").glob("*.codes.npy")]):
        with open(path, "rb") as source:
            while chunk := source.read(16 << 20):
                total += len(chunk)
    return total


def search(root: Path, family: KeyFamily, model, queries: int, exhaustive_queries: int, populate: bool):
    """(ANN description, warm latencies ms [queries], mean top-10 agreement with exhaustive scoring).

    ``populate``: map the Arrow copies' pages first, as a server's reader does (IndexReader.populate_maps)."""
    reader = IndexReader.open(root)
    started = time.perf_counter()
    populating = reader.populate_maps() if populate else None
    if populating is not None:
        populating.join()
    mapped = f"; maps populated in {time.perf_counter() - started:.1f} s" if populating is not None else ""
    searcher = Searcher(reader, model)
    text, keys, _ = family.queries(reader.units, queries, model.config.local_weight)
    for q in range(min(WARMUP_QUERIES, queries)):
        searcher.rank(text.rows(slice(q, q + 1)), keys[q : q + 1], SearchConfig(k=10))
    latency_ms, hits = measure(searcher, text, keys, SearchConfig(k=10))
    m = exhaustive_queries
    exact = searcher.rank(text.rows(slice(0, m)), keys[:m], SearchConfig(k=10, exhaustive=True))
    agreement = np.mean([
        len(set(fast) & {h.video_id for h in slow}) / 10 for fast, slow in zip(hits[:m], exact, strict=True)
    ])
    return ann_description(reader) + mapped, latency_ms, float(agreement), int8_effect(searcher, family, text, m)


def int8_effect(searcher: Searcher, family: KeyFamily, text, queries: int) -> str:
    """Scores of the first chunk's units from the index (int8 features) against their float16 originals:
    largest |difference| over the queries, the scores' standard deviation, and top-10 agreement of the two."""
    original = family.units(0, min(family.num_units, GENERATE_CHUNK))
    reader = searcher.reader
    row_of = {unit: row for row, unit in enumerate(reader.units.unit_id)}
    rows = np.array([row_of[u] for u in original.unit_id])
    stored = searcher._unit_tensors(rows)
    frames = torch.from_numpy(np.asarray(original.frame_features, dtype=np.float32))
    mask = torch.from_numpy(original.frame_mask())
    concepts = torch.from_numpy(np.asarray(original.visual_concepts, dtype=np.float32))
    gaps, spreads, agree = [], [], []
    for q in range(queries):
        exact = searcher._score_one(text, q, (frames, mask, concepts))[0]
        quantised = searcher._score_one(text, q, stored)[0]
        gaps.append(np.abs(exact - quantised).max())
        spreads.append(exact.std())
        agree.append(len(set(np.argsort(-exact)[:10]) & set(np.argsort(-quantised)[:10])) / 10)
    return (
        f"int8 vs float16 features on {len(rows)} units: max |score diff| {max(gaps):.5f} "
        f"(score std {np.mean(spreads):.4f}), top-10 agreement {np.mean(agree):.3f}"
    )


def machine() -> str:
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return f"{names[0] if names else model}; {os.cpu_count()} CPUs visible; {THREADS} threads (torch, faiss)"


HEADER = (
    f"{'keys':>9} {'units':>8} | {'(b) commits':>11} {'run s':>7} {'GB written':>10} {'index GB':>8} "
    f"{'ratio':>6} | {'(c) p50 ms':>10} {'p95 ms':>7} {'top10 agree':>11} | {'(d) RSS MB':>10} {'anon MB':>7} "
    f"{'disk KB/unit':>12} | {'(a) open s':>10} {'commit s':>8} {'upkeep s':>8} {'MB written':>10} "
    f"{'MB files':>8} | ann"
)


def run_one(root: Path, name: str, n: int, args, model, model_config: dict) -> Nightly:
    family = KeyFamily(name, n, seed=args.seed, dims=VIT_B32, fingerprint=FINGERPRINT)
    if not args.reuse:
        first_run = build(
            root, family, BULK_COMMIT_EVERY if args.skip_first_run else FIRST_RUN_COMMIT_EVERY, model_config
        )
    size = disk_bytes(root)
    rss_mb, anon_mb = reader_memory_mb(root)
    if args.warm_cache:
        read_searched_files(root)
    ann, latency_ms, agreement, int8 = search(
        root, family, model, args.queries, args.exhaustive_queries, populate=args.warm_cache
    )
    late = nightly(root, family, model_config, args.commits)
    run = (
        f"{'-':>11} {'-':>7} {'-':>10} {size / 1e9:>8.2f} {'-':>6}" if args.skip_first_run or args.reuse else
        f"{first_run.commits:>11} {first_run.seconds:>7.0f} {first_run.written / 1e9:>10.2f} {size / 1e9:>8.2f} "
        f"{first_run.written / size:>6.1f}"
    )
    print(
        f"{name:>9} {n:>8} | {run} | {np.percentile(latency_ms, 50):>10.1f} "
        f"{np.percentile(latency_ms, 95):>7.1f} {agreement:>11.3f} | {rss_mb:>10.0f} {anon_mb:>7.0f} "
        f"{size / 1024 / n:>12.1f} | {late.open_s:>10.2f} {late.commit_s:>8.2f} {late.upkeep_s:>8.2f} "
        f"{late.written / MB:>10.1f} {late.files / MB:>8.1f} | {ann}",
        flush=True,
    )
    print(f"{'':>9} {n:>8} | {int8}", flush=True)
    if args.commits > 1:
        print(series_line(name, n, late.series), flush=True)
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--keys", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--exhaustive-queries", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-first-run", action="store_true",
                        help=f"build each index with a commit every {BULK_COMMIT_EVERY} units; no (b) figures")
    parser.add_argument("--warm-cache", action="store_true",
                        help="read the files a search reads once before timing (c) and map the copies' pages: the "
                             "page cache of a machine with the memory to hold them, as a long-running server has it")
    parser.add_argument("--commits", type=int, default=1,
                        help="(a): commit this many times, 100 new videos each, and print the median and largest")
    parser.add_argument("--out", type=Path, help="keep the indexes here (DIR/KEYS-UNITS); default a removed tempdir")
    parser.add_argument("--reuse", action="store_true",
                        help="measure (a), (c) and (d) again on the indexes an earlier run kept under --out (the "
                             "(a) commit adds its videos to them): no build, no (b)")
    args = parser.parse_args()
    if args.exhaustive_queries > args.queries:
        parser.error("--exhaustive-queries must be at most --queries")
    if args.commits < 1:
        parser.error("--commits must be at least 1")
    if args.reuse and not args.out:
        parser.error("--reuse needs --out, the folder an earlier run kept its indexes in")
    torch.set_grad_enabled(False)
    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    model = create_random_model("ViT-B-32", trained=True)
    model_config = {"glscl": model.config.to_dict()}
    out = args.out or Path(tempfile.mkdtemp(prefix="glscl-scale-"))
    cache = "searched files read once before (c)" if args.warm_cache else "page cache as the run left it"
    print(f"# {machine()}; GLSCL shapes D={VIT_B32.dim} T={VIT_B32.frames} K={VIT_B32.concepts}; "
          f"{NIGHTLY_VIDEOS}-video commit (a) after search; {cache}; index under {out}")
    print(HEADER, flush=True)
    commit_s: dict[str, list[float]] = {}
    try:
        for name in args.keys:
            for n in args.units:
                root = out / f"{name}-{n}"
                if root.exists() != args.reuse:
                    sys.exit(f"{root} exists: give --out an empty or new directory" if root.exists() else
                             f"{root} is missing: --reuse measures the indexes an earlier run kept there")
                late = run_one(root, name, n, args, model, model_config)
                commit_s.setdefault(name, []).append(float(np.median([c.seconds for c in late.series])))
                if args.out is None:
                    shutil.rmtree(root)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    if len(args.units) > 1:
        for name, seconds in commit_s.items():
            print(f"(a) {name}: commit at {args.units[-1]} units / at {args.units[0]} (median of --commits): "
                  f"{seconds[-1] / seconds[0]:.1f}x")
    print("command: .venv/bin/python benchmarks/index_scale.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
