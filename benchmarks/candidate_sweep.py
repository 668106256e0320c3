"""Where the two-stage search loses the exact top 10: recall of the exact GLSCL top 10 among the candidates,
for each (shortlist, candidate count), on an index that benchmarks/index_scale.py kept (--out).

Usage: .venv/bin/python benchmarks/candidate_sweep.py DIR/clustered-100000 [--queries 60]

Three kinds of query, each with its exact top 10 over every unit (GLSCL score, the index's model config):
- "benchmark": scale_keys.KeyFamily.queries, the queries index_scale.py measures the agreement with;
- "tuner 0.3" and "tuner 1.0": the tuner's own (store/tuning_queries.py) at each of its cosines, other seeds.
It prints, per kind, the recall of the truth among the flat float32 keys' top n (what a perfect
approximate index would give: the loss due to the key alone) and then among the PQ-scan candidates for
each number of lists visited, shortlist and count (the loss due to the lists skipped, the 4-bit scan codes
and the 8-bit codes of 512 principal axes);
and the largest key rank (0 = best) a truth unit has, so the candidates the key itself needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scale_keys import KeyFamily
from glscl_index.store import ann, ann_state, tuning_queries
from glscl_index.store.reader import IndexReader
from glscl_index.store.unit_keys import UnitKeys

COUNTS = (200, 400, 800, 1600, 3200, 6400)
KEY_CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="an index kept by index_scale.py --out (DIR/FAMILY-UNITS)")
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(2)
    family_name, units_text = args.index.name.rsplit("-", 1)
    reader = IndexReader.open(args.index)
    units = reader.units
    scoring = tuning_queries.Scoring.of(reader.manifest.model_config)
    family = KeyFamily(family_name, int(units_text))
    text, keys, _ = family.queries(units, args.queries, scoring.local_weight)
    kinds = {"benchmark": tuning_queries.TuningQueries(text.sentence, text.concepts, keys)}
    for cosine in tuning_queries.QUERY_COSINES:
        kinds[f"tuner {cosine}"] = tuning_queries.make_queries(units, args.queries, scoring, 10_000, cosine)
    all_keys = UnitKeys(units, reader.manifest.dims)
    rows = np.arange(len(units))
    print(f"# {args.index}: {len(units)} units, {reader.manifest.ann.kind}, "
          f"{reader.manifest.ann.lists} lists, {args.queries} queries per kind")
    for name, queries in kinds.items():
        truth = tuning_queries.exact_top(queries, units, rows, scoring, 10)
        key_scores = np.concatenate([
            queries.keys @ all_keys[s : s + KEY_CHUNK].T for s in range(0, len(units), KEY_CHUNK)
        ], axis=1)
        order = np.argsort(-key_scores, axis=1)
        rank = np.argsort(order, axis=1)
        worst = np.take_along_axis(rank, truth, axis=1).max(axis=1)
        flat = " ".join(f"{n}:{ann.candidate_recall(order[:, :n], truth):.3f}" for n in COUNTS)
        print(f"{name:>10} exact keys  {flat}  | worst key rank of a truth unit: p50 {np.median(worst):.0f} "
              f"p90 {np.percentile(worst, 90):.0f} max {worst.max()}")
        if reader.manifest.ann.kind != "pqscan":
            continue
        for probes in ann_state.probe_choices(reader.manifest.ann.lists or 1):
            for shortlist in [s for s in ann_state.SHORTLIST_LADDER if s < len(units)]:
                _, live = reader.search_keys(queries.keys, min(shortlist, max(COUNTS)), shortlist, probes)
                found = " ".join(
                    f"{n}:{ann.candidate_recall(live[:, :n], truth):.3f}" for n in COUNTS if n <= shortlist
                )
                print(f"{name:>10} probes {probes:>4} shortlist {shortlist:>6} {found}", flush=True)
    print("command: .venv/bin/python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
