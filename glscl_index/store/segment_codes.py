"""Giving segments their keys' codes: training the shared encoder when due, coding, tuning (store/ann.py).

Used by the writer at each commit and by ``glscl check --repair`` when codes are lost. Keys are
derived from the rows (store/unit_keys.py), so torch is imported only when something must be coded.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store import ann, ann_state
from glscl_index.store.manifest import Manifest, ShardRef
from glscl_index.store.reader import load_units, segment_layout
from glscl_index.store.schema import UnitBatch
from glscl_index.store.shards import read_shard
from glscl_index.store.unit_keys import UnitKeys

if TYPE_CHECKING:
    from glscl_index.store import tuning_queries

KEY_CHUNK = 8192  # keys derived at a time when coding a segment
RERANK_PROBE = 800  # candidates scored to time the rerank (the tuned count is usually near this)
RERANK_TRIES = 3


class SegmentCoder:
    """Codes the segments of one index folder; keeps the pqscan encoder it last read or trained."""

    def __init__(self, root: Path):
        self.root = root
        self._encoder: tuple[str, ann.ScanEncoder] | None = None

    def code(self, manifest: Manifest, *, upkeep: bool = True) -> ann_state.AnnState:
        """Give every segment of ``manifest`` codes (training the encoder first when due); the tuned state.

        ``upkeep=False`` (a commit's new rows): the codes are made in the encoder the index has, which is trained
        again only when it cannot code them at all (``ann_state.must_train``), and the tuning is left as it is
        (the counts it chose grow with the collection, AnnState.candidates_for); ``upkeep_due`` then says what
        is left. Changes ``manifest.shards`` in place (their ``codes``).
        """
        state = manifest.ann
        live = manifest.live_units
        kind = self._kind(manifest)
        if live and (ann_state.needs_training(state, kind, live) if upkeep else ann_state.must_train(state, kind)):
            state = self._train(manifest, kind)
        encoder = self._load_encoder(state)
        manifest.shards = [
            s if s.codes == ann.code_file_name(s.name, state) else self._write_codes(s, manifest, state, encoder)
            for s in manifest.shards
        ]
        if upkeep and ann_state.needs_tuning(state, live):
            state = self._tune(replace(manifest, ann=state), encoder)
        return state

    def upkeep_due(self, manifest: Manifest) -> str:
        """What ``code`` would do for ``manifest`` beyond what a commit did, in words: train the encoder again, code
        segments, tune the search ('' when nothing)."""
        state, live = manifest.ann, manifest.live_units
        if live and ann_state.needs_training(state, self._kind(manifest), live):
            return f"training the search encoder on {live:,} units"
        stale = sum(s.codes != ann.code_file_name(s.name, state) for s in manifest.shards)
        if stale:
            return f"coding {stale} segments"
        return f"tuning the search on {live:,} units" if ann_state.needs_tuning(state, live) else ""

    @staticmethod
    def _kind(manifest: Manifest) -> str:
        return ann_state.wanted_kind(manifest.faiss_type, manifest.live_units, manifest.dims.key_dim, manifest.ann.kind)

    def _train(self, manifest: Manifest, kind: str) -> ann_state.AnnState:
        """A new encoder of ``kind`` for ``manifest``'s keys (pqscan: trained on an even sample of them)."""
        live = manifest.live_units
        tag = f"{kind}{manifest.generation:06d}{uuid.uuid4().hex[:6]}"
        if kind == ann_state.FLAT:
            return ann_state.AnnState(kind=ann_state.FLAT, tag=tag, trained_units=live)
        keys = UnitKeys(load_units(self.root, manifest), manifest.dims)
        rows = np.linspace(0, live - 1, min(live, ann.TRAIN_ROWS)).astype(np.int64)
        encoder = ann.train_encoder(keys[rows])
        name = f"ann-{manifest.generation:06d}-{uuid.uuid4().hex[:8]}.npz"
        ann.write_encoder(self.root / name, encoder)
        self._encoder = (name, encoder)
        return ann_state.AnnState(
            kind=ann_state.PQSCAN, tag=tag, encoder=name, trained_units=live, lists=encoder.lists
        )

    def _load_encoder(self, state: ann_state.AnnState) -> ann.ScanEncoder | None:
        if state.kind != ann_state.PQSCAN:
            return None
        if self._encoder is None or self._encoder[0] != state.encoder:
            try:
                self._encoder = (state.encoder, ann.read_encoder(self.root / state.encoder))
            except (OSError, ValueError) as exc:
                raise IndexCorruptError(
                    f"search encoder {state.encoder} cannot be read ({exc}){repair_hint(self.root)}"
                ) from exc
        return self._encoder[1]

    def _write_codes(
        self, segment: ShardRef, manifest: Manifest, state: ann_state.AnnState, encoder: ann.ScanEncoder | None
    ) -> ShardRef:
        """Code every row of ``segment``, dead ones too (the codes' row i is the segment's row i)."""
        batch = read_shard(self.root / "shards" / segment.name, manifest.dims, manifest.fingerprint)
        keys = UnitKeys(batch, manifest.dims)
        codes = np.concatenate(
            [ann.encode(keys[start : start + KEY_CHUNK], state, encoder) for start in range(0, len(keys), KEY_CHUNK)]
        )
        name = ann.code_file_name(segment.name, state)
        ann.write_codes(self.root / "shards" / name, codes)
        return replace(segment, codes=name)

    def _tune(self, manifest: Manifest, encoder: ann.ScanEncoder | None) -> ann_state.AnnState:
        """Measure the candidates' recall of the exact GLSCL top 10 of queries made from the collection's units
        (store/tuning_queries.py) and pick the lists visited, the shortlist and the candidates' count."""
        # torch is imported here, not with the store (as in store/unit_keys.py): a writer takes its lock first.
        from glscl_index.store import tuning_queries

        units = load_units(self.root, manifest)
        scoring = tuning_queries.Scoring.of(manifest.model_config)
        layout = segment_layout(manifest)
        live_ids = np.flatnonzero(layout.live_rows >= 0).astype(np.int64)
        sets = [
            tuning_queries.make_queries(units, ann_state.TUNE_QUERIES, scoring, seed=manifest.generation, cosine=c)
            for c in tuning_queries.QUERY_COSINES
        ]
        # One pass over the units for every set: the exact scoring of 2 x 100 queries is the largest part of a
        # tuning (one-off timings: 219 s of a 441 s re-tune at 1M units, a set at a time), and the sets share the
        # reading and the sorting (at 50k units: 7.8 s where the sets one at a time took 10.2 s).
        truth = tuning_queries.exact_top(tuning_queries.joined(sets), units, live_ids, scoring, ann_state.TRUTH_K)
        bounds = np.cumsum([0] + [len(q.keys) for q in sets])
        groups = [(q.keys, truth[start:end]) for q, start, end in zip(sets, bounds[:-1], bounds[1:], strict=True)]
        codes = [ann.read_codes(self.root / "shards" / s.codes) for s in manifest.shards]
        index = ann.open_index(manifest.ann, encoder, codes, manifest.dims.key_dim, layout.dead)
        tuning = ann.tune(index, groups, rerank_seconds(sets[0], units, scoring))
        # The smallest count the tuner tries is the search's own default: record 0 ("the default") for it.
        candidates = tuning.candidates if tuning.candidates > ann_state.CANDIDATE_LADDER[0] else 0
        return replace(
            manifest.ann, probes=tuning.probes, shortlist=tuning.shortlist, candidates=candidates,
            recall=round(tuning.recall, 4), tuned_units=len(units), tune_queries=tuning.queries,
            tuner=ann_state.TUNER_VERSION,
        )


def rerank_seconds(queries: tuning_queries.TuningQueries, units: UnitBatch, scoring: tuning_queries.Scoring) -> float:
    """Seconds to score one candidate exactly for one query (read its features, GIM, sim2), as the search does:
    the best of RERANK_TRIES timings of RERANK_PROBE rows spread over the collection."""
    from glscl_index.store import tuning_queries

    rows = np.linspace(0, len(units) - 1, min(RERANK_PROBE, len(units))).astype(np.int64)
    one = tuning_queries.TuningQueries(
        queries.sentence[:1], None if queries.concepts is None else queries.concepts[:1], queries.keys[:1]
    )
    timings = []
    for _ in range(RERANK_TRIES):
        started = time.perf_counter()
        tuning_queries.scores(one, units, rows, scoring)
        timings.append(time.perf_counter() - started)
    return min(timings) / len(rows)
