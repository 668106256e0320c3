"""The index-scale key families: clustered keys look like CLIP's, isotropic ones are the worst case.

Reference: the properties promised in benchmarks/scale_keys.py's docstring, measured on the derived
unit keys (glscl_index.model.keys.video_keys) of 2000 units.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.scale_keys import KeyFamily
from glscl_index.model.keys import video_keys

UNITS = 2000


def unit_keys(units) -> np.ndarray:
    return video_keys(
        torch.from_numpy(units.frame_features), torch.from_numpy(units.frame_mask()),
        torch.from_numpy(units.visual_concepts),
    ).numpy()


def top_variance_fraction(keys: np.ndarray, components: int = 10) -> float:
    """Share of the total variance on the top principal components (of the centred keys; a randomised
    SVD finds the top ones, a full one of [2000, 4608] takes seconds)."""
    centred = torch.from_numpy(keys - keys.mean(0))
    _, singular, _ = torch.svd_lowrank(centred, q=2 * components, niter=4)
    return float((singular[:components] ** 2).sum() / (centred**2).sum())


def cosine_to_mean(keys: np.ndarray) -> float:
    unit = keys / np.linalg.norm(keys, axis=1, keepdims=True)
    mean = unit.mean(0)
    return float((unit @ (mean / np.linalg.norm(mean))).mean())


@pytest.fixture(scope="module")
def drawn():
    families = {name: KeyFamily(name, UNITS, seed=7) for name in ("clustered", "isotropic")}
    drawn = {name: family.draw(0, UNITS) for name, family in families.items()}
    return {name: (families[name], units, cluster, unit_keys(units)) for name, (units, cluster) in drawn.items()}


def test_clustered_keys_are_anisotropic_and_share_a_direction(drawn):
    clustered, isotropic = drawn["clustered"][3], drawn["isotropic"][3]
    assert top_variance_fraction(clustered) > 0.3
    assert top_variance_fraction(clustered) > 5 * top_variance_fraction(isotropic)
    assert 0.5 < cosine_to_mean(clustered) < 0.8
    assert abs(cosine_to_mean(isotropic)) < 0.1


def test_cluster_sizes_are_uneven(drawn):
    family, _, cluster, _ = drawn["clustered"]
    sizes = np.bincount(cluster, minlength=len(family.cluster_share))
    assert len(sizes) >= 40
    assert sizes.max() > 10 * np.median(sizes)


def test_frames_stay_near_their_unit_and_queries_near_theirs(drawn):
    for family, units, _, keys in drawn.values():
        frames = units.frame_features.astype(np.float32)
        frames /= np.maximum(np.linalg.norm(frames, axis=-1, keepdims=True), 1e-6)
        mask = units.frame_mask()
        assert np.einsum("ntd,nd->nt", frames, keys[:, : family.dims.dim])[mask].mean() > 0.85
        assert not frames[~mask].any()
        text, query_keys, rows = family.queries(units, 20)
        assert query_keys.shape == (20, family.dims.key_dim) and text.concepts.shape == (20, 8, 512)
        scores = query_keys @ keys.T
        # Noisier than a frame, but the unit a query was made from still ranks near the top.
        assert np.median((scores > scores[np.arange(20), rows][:, None]).sum(1)) < 10


def test_generation_is_deterministic_and_chunked(drawn):
    family = drawn["clustered"][0]
    again = KeyFamily("clustered", UNITS, seed=7)  # a fresh collection of the same seed: the same units
    units = family.units(0, 100)
    np.testing.assert_array_equal(again.units(0, 100).frame_features, units.frame_features)
    np.testing.assert_array_equal(again.units(0, 100).visual_concepts, units.visual_concepts)
    chunks = list(again.chunks(120, start=1000, chunk=50))
    assert [len(c) for c in chunks] == [50, 50, 20]
    assert chunks[0].video_id[0] == "v1000" and chunks[-1].video_id[-1] == "v1119"
    # Another seed, another collection (isotropic: no rotation to draw, the cheap family).
    seeds = [KeyFamily("isotropic", UNITS, seed=seed).units(0, 100).frame_features for seed in (7, 8)]
    assert not np.array_equal(*seeds)
