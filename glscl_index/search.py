"""Two-stage search (docs/architecture.md §4): FAISS candidates over global keys, exact GLSCL rerank.

The best segment of each video stands for the video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from glscl_index.device import resolve_device
from glscl_index.errors import EmptyQueryError
from glscl_index.index_model import load_index_model
from glscl_index.model.glscl import GLSCL, TextEmbedding
from glscl_index.model.keys import query_keys
from glscl_index.model.score import glscl_score
from glscl_index.store.manifest import require_model
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.unit_keys import unit_tensors

# Units scored per exact-scoring step in exhaustive mode (bounds memory: chunk x T x D floats).
EXHAUSTIVE_CHUNK = 16384


@dataclass
class SearchConfig:
    k: int = 10  # videos returned per query
    candidates: int = 0  # FAISS candidates per query; 0 = max(20 * k, 200, the tuned count) (docs/architecture.md §4)
    exhaustive: bool = False  # exact scoring of every unit, no FAISS

    def candidate_count(self, tuned: int = 0) -> int:
        """The candidates asked for, else the default, raised to ``tuned`` (what the store measured it needs)."""
        return self.candidates or max(20 * self.k, 200, tuned)


@dataclass
class Hit:
    """One matching video; times in seconds from the start of the file."""

    video_path: str
    video_id: str
    score: float
    global_score: float
    local_score: float | None
    segment_index: int
    start_s: float
    end_s: float
    best_frame_s: float
    paths: list[str] = field(default_factory=list)  # every path with this content (copies, links); video_path first
    offline: bool = False  # under a root that was missing at the last `glscl index` (e.g. an unmounted drive)


@dataclass
class QueryResult:
    query: str
    hits: list[Hit]
    truncated: bool  # the query was longer than the tokenizer's limit and was cut
    notices: list[str] = field(default_factory=list)


def validate_queries(queries: list[str]) -> list[str]:
    """Empty or whitespace-only queries are an error; anything else (any Unicode) is accepted."""
    cleaned = [" ".join(q.split()) for q in queries]
    if not cleaned or any(not q for q in cleaned):
        raise EmptyQueryError('the query is empty; say what you are looking for, e.g. glscl search "a dog on a beach"')
    return cleaned


class Searcher:
    """Searches one opened index generation with the model that built it."""

    def __init__(self, reader: IndexReader, model: GLSCL, device: torch.device | str = "cpu"):
        self.reader = reader
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.config = model.config

    @torch.inference_mode()
    def encode_queries(self, queries: list[str]) -> tuple[TextEmbedding, np.ndarray]:
        """Queries -> text embedding and FAISS query keys ``[Q, G]`` float32."""
        tokens = self.model.backbone.tokenize(queries).to(self.device)
        text = self.model.embed_text(tokens)
        keys = query_keys(text.sentence, text.concepts, self.config.local_weight)
        return text, keys.cpu().numpy().astype(np.float32)

    def search(self, queries: list[str], config: SearchConfig) -> list[QueryResult]:
        """Rank videos for each query; one result per query, in order."""
        queries = validate_queries(queries)
        text, keys = self.encode_queries(queries)
        limit = self.config.max_words
        results = []
        for query, hits in zip(queries, self.rank(text, keys, config), strict=False):
            truncated = self.model.backbone.count_tokens(query) > limit
            notices = [f"query was longer than {limit} tokens and was truncated"] if truncated else []
            results.append(QueryResult(query, hits, truncated, notices))
        return results

    def rank(self, text: TextEmbedding, keys: np.ndarray, config: SearchConfig) -> list[list[Hit]]:
        """Encoded queries (text ``[Q, ...]``, keys ``[Q, G]``) -> top-k videos per query."""
        num_units = len(self.reader.units)
        num_queries = keys.shape[0]
        if num_units == 0:
            return [[] for _ in range(num_queries)]
        tuned = self.reader.manifest.ann.candidates_for(num_units)
        # The tuner found that only scoring every unit holds the agreement with exhaustive scoring on this
        # collection (an explicit --candidates still chooses the two stages).
        if config.exhaustive or (not config.candidates and tuned >= num_units):
            rows = np.broadcast_to(np.arange(num_units), (num_queries, num_units))
            scores, weights, globals_, locals_ = self._score_all(text)
        else:
            _, rows = self.reader.search_keys(keys, config.candidate_count(tuned))
            rows = np.sort(rows, axis=1)  # features are read fastest in row order (StackedRows)
            scores, weights, globals_, locals_ = self._score_candidates(text, rows)
        ranked = []
        for q in range(num_queries):
            valid = rows[q] >= 0
            ranked.append(
                self._best_segments(
                    rows[q][valid], scores[q][valid], weights[q][valid], globals_[q][valid],
                    None if locals_ is None else locals_[q][valid], config.k,
                )
            )
        return ranked

    def _unit_tensors(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """rows ``[V]`` -> frames ``[V, T, D]``, mask ``[V, T]``, concepts ``[V, K, D]`` (None in zero-shot mode)
        on the search device, float32; only these rows are read."""
        frames, mask, concepts = unit_tensors(self.reader.units, rows)
        return frames.to(self.device), mask.to(self.device), None if concepts is None else concepts.to(self.device)

    @torch.inference_mode()
    def _score_one(self, text: TextEmbedding, q: int, unit_tensors):
        """Query q against the units of ``unit_tensors`` -> (total, frame weights, sim1, sim2) numpy rows ``[V]``."""
        frames, mask, concepts = unit_tensors
        text_concepts = None if text.concepts is None else text.concepts[q : q + 1]
        result = glscl_score(
            text.sentence[q : q + 1], frames, mask, text_concepts, concepts,
            self.config.pooling_temperature, self.config.local_weight, self.config.gim_logits,
        )
        local = None if result.local is None else result.local[0].cpu().numpy()
        return (
            result.total[0].cpu().numpy(),
            result.frame_weights[0].cpu().numpy(),
            result.global_[0].cpu().numpy(),
            local,
        )

    def _score_candidates(self, text: TextEmbedding, rows: np.ndarray):
        """Exact scores of each query's own candidates: ``[Q, N]`` (rows of -1 score -inf)."""
        parts = [
            self._score_one(text, q, self._unit_tensors(np.where(rows[q] >= 0, rows[q], 0)))
            for q in range(rows.shape[0])
        ]
        return self._stack(parts, rows)

    def _score_all(self, text: TextEmbedding):
        """Exact scores of every unit for every query, in chunks of units (each read once): ``[Q, N_units]``."""
        total = len(self.reader.units)
        per_query: list[list[tuple]] = [[] for _ in range(text.sentence.shape[0])]
        for start in range(0, total, EXHAUSTIVE_CHUNK):
            chunk = self._unit_tensors(np.arange(start, min(total, start + EXHAUSTIVE_CHUNK)))
            for q in range(len(per_query)):
                per_query[q].append(self._score_one(text, q, chunk))
        parts = [tuple(_concat([p[i] for p in chunks]) for i in range(4)) for chunks in per_query]
        return self._stack(parts, None)

    @staticmethod
    def _stack(parts, rows):
        scores = np.stack([p[0] for p in parts])
        if rows is not None:
            scores = np.where(rows >= 0, scores, -np.inf)
        weights = np.stack([p[1] for p in parts])
        globals_ = np.stack([p[2] for p in parts])
        locals_ = None if parts[0][3] is None else np.stack([p[3] for p in parts])
        return scores, weights, globals_, locals_

    @staticmethod
    def _video_paths(entries: list[CatalogEntry], row_path: str) -> tuple[list[str], bool]:
        """A video's catalog paths, the row's own path first while the catalog still has it; whether all are
        offline (``entries``: its indexed entries, by path)."""
        paths = [e.path for e in entries]
        if row_path in paths or not paths:
            paths = [row_path] + [p for p in paths if p != row_path]
        return paths, bool(entries) and all(e.offline for e in entries)

    def _best_segments(self, rows, scores, weights, globals_, locals_, k: int) -> list[Hit]:
        """Aggregate units to videos (best segment wins) and keep the top k videos."""
        units = self.reader.units
        # Equal scores are ordered by unit row, not by candidate order (FAISS's and exhaustive's differ), so
        # two-stage search, --exhaustive and the API list tied videos the same way.
        order = np.lexsort((rows, -scores))
        video_ids = units.video_id[rows[order]]
        _, first = np.unique(video_ids, return_index=True)
        best = order[np.sort(first)][:k]
        entries = self.reader.indexed_paths([str(v) for v in units.video_id[rows[best]]])
        hits = []
        for i in best:
            row = int(rows[i])
            frame = int(np.argmax(weights[i]))
            paths, offline = self._video_paths(entries.get(str(units.video_id[row]), []), str(units.path[row]))
            hits.append(
                Hit(
                    video_path=paths[0],
                    paths=paths,
                    offline=offline,
                    video_id=str(units.video_id[row]),
                    score=float(scores[i]),
                    global_score=float(globals_[i]),
                    local_score=None if locals_ is None else float(locals_[i]),
                    segment_index=int(units.segment_index[row]),
                    start_s=float(units.start_s[row]),
                    end_s=float(units.end_s[row]),
                    best_frame_s=float(units.timestamps_s[row, frame]),
                )
            )
        return hits


def _concat(arrays):
    if arrays[0] is None:
        return None
    return np.concatenate(arrays, axis=0)


def open_searcher(
    index_dir: Path, checkpoint: str | None, clip_model: str | None, pretrained: str | None, device: str = "auto"
) -> Searcher:
    """Open one generation of an index and the model it was built with (or the one asked for).

    The index is opened first, so a missing or damaged index is reported
    before any model is loaded; a model with another fingerprint is refused.
    """
    reader = IndexReader.open(index_dir)
    model, digest = load_index_model(index_dir, checkpoint, clip_model, pretrained)
    require_model(
        index_dir, reader.manifest, digest,
        f"search without model options to use the index's own model, or re-index with "
        f"`glscl index PATH --index {index_dir} --rebuild` and the new model",
        model=f"{model.config.clip_model}, {model.config.mode}",
    )
    return Searcher(reader, model, resolve_device(device))

