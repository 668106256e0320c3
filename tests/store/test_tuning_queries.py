"""The tuner's queries: text-like ones at a fixed cosine from a unit, query-by-example ones, and their exact truth."""

import math

import numpy as np
import torch

from glscl_index.model.score import glscl_score
from glscl_index.store import tuning_queries
from glscl_index.store.unit_keys import unit_tensors
from tests.store.helpers import DIMS, make_batch


def mean_direction(units, rows):
    frames, mask, _ = unit_tensors(units, rows)
    unit_frames = torch.nn.functional.normalize(frames, dim=-1) * mask.unsqueeze(-1)
    return torch.nn.functional.normalize(unit_frames.sum(1), dim=-1)


def test_queries_sit_at_their_cosine_from_a_unit_at_the_collections_frame_norm():
    units = make_batch(300, seed=4)
    scoring = tuning_queries.Scoring.of({})
    near = tuning_queries.make_queries(units, 40, scoring, seed=1, cosine=1.0)
    far = tuning_queries.make_queries(units, 40, scoring, seed=1, cosine=0.3)
    frames = torch.from_numpy(np.asarray(units.frame_features, np.float32))
    frame_norm = frames.norm(dim=-1)[torch.from_numpy(units.frame_mask())].mean()
    norms = far.sentence.norm(dim=-1)
    assert torch.allclose(norms, norms[0].expand(40), rtol=1e-4)  # one norm: the sampled units' mean frame norm
    assert abs(norms[0] - frame_norm) < 0.1 * frame_norm
    # Same seed, same units: the cosine between the two sets' sentences is the text-like cosine.
    cosines = torch.nn.functional.cosine_similarity(near.sentence, far.sentence, dim=-1)
    assert torch.allclose(cosines, torch.full((40,), 0.3), atol=1e-4)
    concept_cosines = torch.nn.functional.cosine_similarity(near.concepts, far.concepts, dim=-1)
    assert torch.allclose(concept_cosines, torch.full_like(concept_cosines, 0.3), atol=1e-4)
    assert far.keys.shape == (40, DIMS.key_dim) and math.isclose(scoring.tau, 3.0)


def test_exact_top_is_the_glscl_top_10_over_every_unit_in_chunks(monkeypatch):
    units = make_batch(500, seed=5)
    scoring = tuning_queries.Scoring.of({"glscl": {"temperature": 0.5, "local_weight": 0.25}})
    queries = tuning_queries.make_queries(units, 12, scoring, seed=2, cosine=0.3)
    monkeypatch.setattr(tuning_queries, "SCORE_CHUNK", 64)  # the running top 10 across chunks
    ids = np.arange(500) * 3 + 7  # physical ids differ from rows
    top = tuning_queries.exact_top(queries, units, ids, scoring, 10)
    frames, mask, concepts = unit_tensors(units, np.arange(500))
    every = glscl_score(queries.sentence, frames, mask, queries.concepts, concepts, 0.5, 0.25).total.numpy()
    assert [set(t) for t in top] == [set(ids[r]) for r in np.argsort(-every, axis=1)[:, :10]]


def test_mean_pooling_models_score_with_an_infinite_tau():
    assert tuning_queries.Scoring.of({"glscl": {"frame_pooling": "mean", "temperature": 3.0}}).tau == math.inf


def test_joined_sets_get_each_sets_own_truth_from_one_pass():
    units = make_batch(300, seed=6)
    scoring = tuning_queries.Scoring.of({})
    sets = [tuning_queries.make_queries(units, n, scoring, seed=3, cosine=c) for n, c in ((7, 0.3), (5, 1.0))]
    ids = np.arange(300)
    one_pass = tuning_queries.exact_top(tuning_queries.joined(sets), units, ids, scoring, 10)
    each = [tuning_queries.exact_top(q, units, ids, scoring, 10) for q in sets]
    assert np.array_equal(one_pass, np.concatenate(each))
    zero_shot = [tuning_queries.TuningQueries(q.sentence, None, q.keys) for q in sets]
    assert tuning_queries.joined(zero_shot).concepts is None and len(tuning_queries.joined(zero_shot).keys) == 12
