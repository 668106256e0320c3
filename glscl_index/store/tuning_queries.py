"""Text-like queries made from a collection's own units, and their exact GLSCL top 10: what the tuner measures.

The two-stage search must return the same top 10 as exact GLSCL scoring of every unit
(docs/architecture.md §4). Its candidates miss for two reasons: the approximate index
(IVF lists not probed, PQ error), and the key itself, which stands for sim1 with mean
pooling where the GIM pools with attention. A video's own key as the query sees only the
first, and only for queries as close to the collection as its members are: that measured
0.995 where text-like queries got 0.980 (`benchmarks/candidate_sweep.py`). So the tuner asks
what a search asks: each query is a sampled unit moved away from itself, its truth is the
exact GLSCL top 10 over every live unit, and the recall of that truth among the candidates is
the agreement the search will have.

A query is built from unit i and two other units a, b of the collection:
  e = |v| (c m_i + sqrt(1 - c^2) n),  n = the unit part of (m_a - m_b) orthogonal to m_i,
  W_k = |U_ik| (c U_ik/|U_ik| + sqrt(1 - c^2) n_k),  n_k likewise from U_ak - U_bk,
with m the unit mean of a unit's unit frames (its key's sim1 half), |v| the mean frame norm of the units sampled
and c one of QUERY_COSINES. The noise follows the collection's own spread (differences of its members), so
anisotropic collections get anisotropic queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from glscl_index.model.keys import query_keys
from glscl_index.model.score import glscl_score
from glscl_index.store.manifest import glscl_record
from glscl_index.store.schema import UnitBatch
from glscl_index.store.unit_keys import unit_tensors

# Cosines of the queries with the units they are made from. 0.3: a caption's CLIP (ViT-B/32) text embedding
# is commonly reported at about that cosine with its own image or video, far lower than a video's with its
# nearest neighbours (a figure recalled, not measured here: no real weights are available offline); 1 is the
# unit itself (a query by example). A setting must hold the agreement for both.
QUERY_COSINES = (0.3, 1.0)
SCORE_CHUNK = 8192  # units scored at a time (bounds the [Q, chunk, T] weights)


@dataclass(frozen=True)
class Scoring:
    """The exact score's parameters, as the index's model uses them (model/score.py)."""

    tau: float  # GIM temperature; inf = mean pooling
    local_weight: float  # lambda
    gim_logits: str

    @classmethod
    def of(cls, model_config: dict) -> Scoring:
        """From a manifest's ``model_config``; a record without them (an older or synthetic one) gets the defaults."""
        record = glscl_record(model_config)
        pooling = record.get("frame_pooling", "attention")
        tau = math.inf if pooling == "mean" else float(record.get("temperature", 3.0))
        return cls(tau, float(record.get("local_weight", 0.5)), str(record.get("gim_logits", "dot")))


@dataclass
class TuningQueries:
    sentence: torch.Tensor  # [S, D]
    concepts: torch.Tensor | None  # [S, K, D]; None in zero-shot mode
    keys: np.ndarray  # [S, G] float32, as Searcher.encode_queries makes them


def make_queries(units: UnitBatch, count: int, scoring: Scoring, seed: int, cosine: float) -> TuningQueries:
    """``count`` queries at ``cosine`` from random live units (see the module docstring)."""
    rng = np.random.default_rng(seed)
    count = min(count, len(units))
    own = np.sort(rng.choice(len(units), count, replace=False))
    first, second = rng.integers(0, len(units), count), rng.integers(0, len(units), count)
    frames, mask, concepts = unit_tensors(units, np.concatenate([own, first, second]))
    unit_frames = F.normalize(frames, dim=-1, eps=1e-6) * mask.unsqueeze(-1)
    means = F.normalize(unit_frames.sum(1), dim=-1, eps=1e-6)
    frame_norm = frames.norm(dim=-1)[mask].mean().clamp_min(1e-6)
    m, m_a, m_b = means.split(count)
    sentence = _moved(m, m_a - m_b, cosine) * frame_norm
    text_concepts = None
    if concepts is not None and concepts.shape[1]:
        u, u_a, u_b = concepts.split(count)
        norms = u.norm(dim=-1, keepdim=True)
        text_concepts = _moved(u / norms.clamp_min(1e-12), u_a - u_b, cosine) * norms
    keys = query_keys(sentence, text_concepts, scoring.local_weight).numpy()
    return TuningQueries(sentence, text_concepts, keys)


def _moved(direction: torch.Tensor, noise: torch.Tensor, cosine: float) -> torch.Tensor:
    """Unit ``direction`` ``[..., D]`` turned towards ``noise``'s orthogonal part until their cosine is ``cosine``."""
    across = noise - (noise * direction).sum(-1, keepdim=True) * direction
    across = F.normalize(across, dim=-1, eps=1e-12)
    return cosine * direction + math.sqrt(max(0.0, 1 - cosine**2)) * across


def scores(queries: TuningQueries, units: UnitBatch, rows: np.ndarray, scoring: Scoring) -> np.ndarray:
    """Exact GLSCL scores ``[S, len(rows)]`` of the queries against ``units``' ``rows``."""
    frames, mask, concepts = unit_tensors(units, rows)
    text_concepts = queries.concepts if concepts is not None else None
    with torch.inference_mode():
        result = glscl_score(
            queries.sentence, frames, mask, text_concepts, concepts, scoring.tau, scoring.local_weight,
            scoring.gim_logits,
        )
    return result.total.numpy()


def joined(sets: list[TuningQueries]) -> TuningQueries:
    """The queries of every set, in order, as one set (``exact_top`` then reads the units once for all of them)."""
    concepts = [q.concepts for q in sets if q.concepts is not None]
    return TuningQueries(
        torch.cat([q.sentence for q in sets]),
        torch.cat(concepts) if len(concepts) == len(sets) else None,
        np.concatenate([q.keys for q in sets]),
    )


def exact_top(queries: TuningQueries, units: UnitBatch, ids: np.ndarray, scoring: Scoring, k: int) -> np.ndarray:
    """The exact GLSCL top-``k`` of each query over every unit: ``ids`` ``[N]`` of them ``[S, k]`` (-1 pads)."""
    count = len(queries.keys)
    best_scores = np.full((count, 0), -np.inf, np.float32)
    best_ids = np.zeros((count, 0), np.int64)
    for start in range(0, len(units), SCORE_CHUNK):
        rows = np.arange(start, min(len(units), start + SCORE_CHUNK))
        chunk = np.concatenate([best_scores, scores(queries, units, rows, scoring)], axis=1)
        every = np.concatenate([best_ids, np.broadcast_to(ids[rows], (count, len(rows)))], axis=1)
        keep = np.argsort(-chunk, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(chunk, keep, axis=1)
        best_ids = np.take_along_axis(every, keep, axis=1)
    return np.where(np.isfinite(best_scores), best_ids, -1)
