"""Rows a first run writes under the tiered merge policy, by its own arithmetic (no I/O): the row part of (b).

Usage: .venv/bin/python benchmarks/merge_writes.py [--units 1000000 10000000] [--tiers 32 64] [--commit 100]

It replays a first run of N one-unit videos committed every --commit videos through
store/merge_policy.MergePolicy.select (as IndexWriter.commit calls it) and prints, per segments-per-tier
F, the rows written (each commit's segment and every merge's output) over N, the rows of those written with
an Arrow copy (segments of MergePolicy.copy_min_rows rows or more) over N, and the most segments the index
had. benchmarks/index_scale.py measures the bytes of a real run, which are about rows x Parquet row + copied
rows x Arrow row, plus the codes, the catalog and the manifests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glscl_index.store.manifest import ShardRef
from glscl_index.store.merge_policy import MergePolicy


def replay(units: int, commit_every: int, policy: MergePolicy) -> tuple[int, int, int]:
    """(rows written, rows written with an Arrow copy, most segments at once) for a first run of ``units`` units."""
    segments: list[ShardRef] = []
    written = copied = most = 0
    for start in range(0, units, commit_every):
        rows = min(commit_every, units - start)
        segments.append(ShardRef(f"s{start}", rows, []))
        written += rows
        copied += rows if policy.copies(rows) else 0
        merge = policy.select(segments)
        if merge:
            merged = sum(s.rows for s in merge)
            segments = [s for s in segments if s not in merge] + [ShardRef(f"m{start}", merged, [])]
            written += merged
            copied += merged if policy.copies(merged) else 0
        most = max(most, len(segments))
    return written, copied, most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--tiers", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--commit", type=int, default=100)
    args = parser.parse_args()
    print(f"{'F':>4} {'units':>10} | {'rows written / N':>16} {'with a copy / N':>15} {'most segments':>13}")
    for tier in args.tiers:
        for units in args.units:
            policy = MergePolicy(segments_per_tier=tier, floor_rows=args.commit)
            written, copied, most = replay(units, args.commit, policy)
            print(f"{tier:>4} {units:>10} | {written / units:>16.2f} {copied / units:>15.2f} {most:>13}", flush=True)
    print("command: .venv/bin/python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
