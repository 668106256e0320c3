"""Where a two-stage search spends its time, on an index that benchmarks/index_scale.py kept (--out).

Usage: .venv/bin/python benchmarks/search_stages.py DIR/clustered-100000 [--queries 20]

For text-like queries made from the index's units (store/tuning_queries.py, cosine 0.3) it prints:
- the candidate stage (``IndexReader.search_keys`` at the tuned shortlist and candidate count): ms per query;
- the exact rerank of that many candidates, split into reading the frame features, reading the concepts
  (int8 codes cast and scaled to float32) and the GLSCL score itself: ms per query and us per candidate;
- and, for the record of a change that made the score 3x faster, sim2 computed as the two-axis ``einsum``
  it used to be against the matrix product ``model/lim.local_similarity`` now uses, on the same candidates;
- the tuner's own figure for scoring one candidate exactly (``segment_codes.rerank_seconds``).
Warm: each figure is the median over the queries, after one untimed query.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# glscl_index first: it sets OMP_WAIT_POLICY before torch and faiss start their OpenMP runtimes, as the CLI does.
import glscl_index  # noqa: E402, F401, I001
import numpy as np  # noqa: E402
import torch  # noqa: E402

from glscl_index.model.lim import local_similarity
from glscl_index.model.score import glscl_score
from glscl_index.search import SearchConfig
from glscl_index.store import segment_codes, tuning_queries
from glscl_index.store.reader import IndexReader


def one_query(reader: IndexReader, queries, q: int, count: int, scoring) -> dict[str, float]:
    """Milliseconds of each stage for query ``q``."""
    units, times = reader.units, {}
    started = time.perf_counter()
    _, rows = reader.search_keys(queries.keys[q : q + 1], count)
    times["stage"] = time.perf_counter() - started
    rows = np.sort(rows[0][rows[0] >= 0])
    started = time.perf_counter()
    frames = torch.from_numpy(units.frame_features[rows])
    times["frames"] = time.perf_counter() - started
    started = time.perf_counter()
    concepts = torch.from_numpy(units.visual_concepts[rows]) if units.visual_concepts.shape[1] else None
    times["concepts"] = time.perf_counter() - started
    mask = torch.from_numpy(units.frame_mask(rows))
    text_concepts = None if concepts is None else queries.concepts[q : q + 1]
    with torch.inference_mode():
        started = time.perf_counter()
        glscl_score(
            queries.sentence[q : q + 1], frames, mask, text_concepts, concepts, scoring.tau, scoring.local_weight,
            scoring.gim_logits,
        )
        times["score"] = time.perf_counter() - started
        times["einsum"] = times["matmul"] = float("nan")
        if concepts is not None and text_concepts is not None:
            started = time.perf_counter()
            torch.einsum("qkd,vkd->qv", text_concepts, concepts) / concepts.shape[1]
            times["einsum"] = time.perf_counter() - started
            started = time.perf_counter()
            local_similarity(text_concepts, concepts)
            times["matmul"] = time.perf_counter() - started
    return {name: 1000 * seconds for name, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="an index kept by index_scale.py --out")
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    reader = IndexReader.open(args.index)
    units = reader.units
    scoring = tuning_queries.Scoring.of(reader.manifest.model_config)
    queries = tuning_queries.make_queries(units, args.queries + 1, scoring, seed=77, cosine=0.3)
    state = reader.manifest.ann
    count = SearchConfig().candidate_count(state.candidates_for(len(units)))
    one_query(reader, queries, 0, count, scoring)  # warm-up
    runs = [one_query(reader, queries, q, count, scoring) for q in range(1, args.queries + 1)]
    med = {name: float(np.median([run[name] for run in runs])) for name in runs[0]}
    rerank = med["frames"] + med["concepts"] + med["score"]
    print(f"# {args.index}: {len(units)} units, {state.kind}, {state.probes or state.lists} of {state.lists} lists, "
          f"shortlist {state.shortlist_for(len(units))}, "
          f"{count} candidates, {args.queries} text-like queries (median ms per query)")
    print(f"candidate stage {med['stage']:.1f} ms | rerank {rerank:.1f} ms = frames {med['frames']:.1f} + concepts "
          f"{med['concepts']:.1f} + score {med['score']:.1f} ({1000 * rerank / count:.1f} us per candidate)")
    print(f"sim2 on the candidates: einsum('qkd,vkd->qv') {med['einsum']:.2f} ms, "
          f"matrix product {med['matmul']:.2f} ms")
    rerank_us = 1e6 * segment_codes.rerank_seconds(queries, units, scoring)
    print(f"tuner's rerank_seconds: {rerank_us:.1f} us per candidate")
    print("command: .venv/bin/python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
