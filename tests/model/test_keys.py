"""Global keys: query key . video key = cos(e, mean frame) + lambda * sim2, checked against loops."""

import math

import numpy as np
import torch

from glscl_index.model.keys import key_dim, query_keys, video_keys
from glscl_index.store.schema import IndexDims
from glscl_index.store.unit_keys import UnitKeys
from tests.store.helpers import make_batch


def reference_key_score(e, frames, count, W, U, local_weight):
    """Slow and obvious: cosine of the sentence with the mean of the unit-norm valid frames, plus lambda x the
    mean over concepts of cos(W_k, U_k)."""
    unit = [frames[t] / frames[t].norm() for t in range(count)]
    mean = sum(unit) / count
    cosine = float(e @ mean) / float(e.norm() * mean.norm())
    sim2 = sum(float(W[k] @ U[k]) / float(W[k].norm() * U[k].norm()) for k in range(len(W))) / len(W)
    return cosine + local_weight * sim2


def test_key_inner_product_is_mean_pooled_sim1_plus_weighted_sim2():
    torch.manual_seed(2)
    e, frames = torch.randn(3, 16), torch.randn(4, 5, 16)
    W = torch.nn.functional.normalize(torch.randn(3, 6, 16), dim=-1)
    U = torch.nn.functional.normalize(torch.randn(4, 6, 16), dim=-1)
    counts = [5, 3, 1, 4]
    mask = torch.arange(5)[None, :] < torch.tensor(counts)[:, None]
    for local_weight in (0.5, 2.0):
        scores = query_keys(e, W, local_weight) @ video_keys(frames, mask, U).T
        expected = [
            [reference_key_score(e[q], frames[v], counts[v], W[q], U[v], local_weight) for v in range(4)]
            for q in range(3)
        ]
        torch.testing.assert_close(scores.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5, rtol=1e-5)
    assert video_keys(frames, mask, U).shape == (4, key_dim(16, 6))


def test_zero_shot_keys_are_the_unit_mean_frame():
    frames, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
    keys = video_keys(frames, mask, torch.zeros(2, 0, 8))
    torch.testing.assert_close(
        keys, torch.nn.functional.normalize(torch.nn.functional.normalize(frames, dim=-1).sum(1), dim=-1)
    )
    assert torch.allclose(query_keys(frames[:, 0] * 3, None, 0.5).norm(dim=1), torch.ones(2))


def test_unit_keys_of_stored_rows_match_the_key_function_for_any_row_selection():
    dims = IndexDims(frames=4, dim=16, concepts=3, key_dim=64)
    batch = make_batch(9, dims=dims, seed=5)
    keys = UnitKeys(batch, dims)
    expected = video_keys(
        torch.from_numpy(batch.frame_features.astype(np.float32)), torch.from_numpy(batch.frame_mask()),
        torch.from_numpy(batch.visual_concepts.astype(np.float32)),
    ).numpy()
    assert keys.shape == (9, 64) and np.array_equal(keys[:], expected)
    assert np.array_equal(keys[2:7], expected[2:7]) and np.array_equal(keys[np.array([8, 0, 3])], expected[[8, 0, 3]])
    assert np.array_equal(keys[4], expected[4]) and np.array_equal(np.asarray(keys), expected)
    assert math.isclose(float(np.linalg.norm(expected[0, :16])), 1.0, rel_tol=1e-5)
