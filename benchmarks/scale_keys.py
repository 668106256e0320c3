"""Synthetic units and queries at index scale, in two key families (issue 11): "clustered" and "isotropic".

clustered: the way CLIP embeddings are. Every vector has a large shared component (a mean direction
    ``mu``: cosine ~0.6 to it), the rest is anisotropic (variance of principal axis i proportional to
    1/i, in a random rotation), and units fall into ~sqrt(N) clusters of Zipf-distributed sizes (the
    largest holds ~1/ln(C) of the collection). Each visual concept slot has its own mean direction
    (near ``mu``) plus a fixed orthogonal map (signed permutation) of the unit's latent.
isotropic: the worst case for an approximate index: unit directions uniform on the sphere, one
    "cluster", no shared direction; concepts are the same orthogonal maps of the unit direction.

In both, a unit's frames are its direction plus per-frame noise drawn like the latents (frames of a
unit stay near it), scaled to norm 10 as CLIP ViT-B/32 image features are; 4..T of them are valid.
A query is built from one unit's stored rows: its sentence is the unit's mean frame direction plus
family-shaped noise (cosine ~0.5 to the unit: a caption is noisier than a frame), its textual concepts
the unit's concepts plus noise; so a query can be made for any unit of any index, read back or not.

Units are generated ``count`` at a time from ``start`` with a generator seeded by (seed, start), so a
collection is streamed chunk by chunk (``KeyFamily.chunks``) without ever being held whole, and the
same (seed, N, chunk size) gives the same units. Units are numbered ``v{i}`` from 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from glscl_index.model.glscl import TextEmbedding
from glscl_index.model.keys import query_keys
from glscl_index.store.schema import IndexDims, UnitBatch

FAMILIES = ("clustered", "isotropic")
VIT_B32 = IndexDims(frames=12, dim=512, concepts=8, key_dim=512 * 9)
GENERATE_CHUNK = 20_000
FEATURE_NORM = 10.0  # CLIP ViT-B/32 image features have norm ~10 (the keys normalise them anyway)
MIN_FRAMES = 4
LOCAL_WEIGHT = 0.5  # lambda of the query keys by default (GLSCLConfig.local_weight)
# Separate random streams (SeedSequence entropy) for the collection's shape, its units and its queries.
SHAPE_STREAM, UNIT_STREAM, QUERY_STREAM = 0, 1, 2


@dataclass(frozen=True)
class FamilyShape:
    """What distinguishes the families; latent draws ``g`` have E|g|^2 = 1."""

    spectrum_exponent: float  # variance of principal axis i ~ i^-exponent (0: isotropic)
    mean_cosine: float  # expected cosine of a unit direction to the shared mean direction
    clusters: bool  # ~sqrt(N) Zipf-sized clusters, else one cluster at the origin
    cluster_spread: float  # scale of cluster centres
    unit_spread: float  # scale of a unit around its cluster centre
    frame_noise: float  # scale of a frame around its unit
    concept_noise: float
    query_noise: float  # sentence = unit direction + query_noise * g: cosine 1/sqrt(1 + q^2) to the unit
    query_concept_noise: float


SHAPES = {
    "clustered": FamilyShape(
        spectrum_exponent=1.0, mean_cosine=0.6, clusters=True, cluster_spread=1.0, unit_spread=0.5,
        frame_noise=0.5, concept_noise=0.5, query_noise=math.sqrt(3.0), query_concept_noise=1.0,
    ),
    "isotropic": FamilyShape(
        spectrum_exponent=0.0, mean_cosine=0.0, clusters=False, cluster_spread=0.0, unit_spread=1.0,
        frame_noise=0.5, concept_noise=0.5, query_noise=math.sqrt(3.0), query_concept_noise=1.0,
    ),
}
ZIPF_EXPONENT = 1.0  # cluster c (from 1) holds a share ~ c^-1 of the units


def num_clusters(num_units: int) -> int:
    return max(8, round(math.sqrt(num_units)))


class KeyFamily:
    """One synthetic collection of ``num_units`` units of a family; see the module docstring."""

    def __init__(self, name: str, num_units: int, seed: int = 0, dims: IndexDims = VIT_B32,
                 fingerprint: str = "synthetic"):
        if name not in SHAPES:
            raise ValueError(f"unknown key family {name!r}; use one of {', '.join(FAMILIES)}")
        self.name, self.num_units, self.seed, self.dims, self.fingerprint = name, num_units, seed, dims, fingerprint
        self.shape = shape = SHAPES[name]
        rng = np.random.default_rng([seed, SHAPE_STREAM])
        D, K = dims.dim, dims.concepts
        variance = np.arange(1, D + 1, dtype=np.float64) ** -shape.spectrum_exponent
        self._std = np.sqrt(variance / variance.sum()).astype(np.float32)  # E|g|^2 = 1
        # Anisotropy lies along a random basis, not the coordinate axes (an isotropic draw needs no rotation).
        self._rotation = random_rotation(rng, D) if shape.spectrum_exponent else None
        self.mean_direction = _unit(rng.standard_normal(D)).astype(np.float32)
        count = num_clusters(num_units) if shape.clusters else 1
        share = np.arange(1, count + 1, dtype=np.float64) ** -ZIPF_EXPONENT
        self.cluster_share = share / share.sum()
        self._centres = shape.cluster_spread * self._latent(rng, count)
        spread = shape.cluster_spread**2 + shape.unit_spread**2  # E|latent|^2 of a unit
        # a / sqrt(a^2 + spread) = mean_cosine
        self._mean_weight = shape.mean_cosine / math.sqrt(1 - shape.mean_cosine**2) * math.sqrt(spread)
        self._concept_means = np.stack(
            [_unit(self.mean_direction + 0.7 * _unit(rng.standard_normal(D))) for _ in range(K)]
        ).astype(np.float32) if K else np.zeros((0, D), np.float32)
        self._perms = np.stack([rng.permutation(D) for _ in range(K)]) if K else np.zeros((0, D), np.int64)
        self._signs = rng.choice(np.array([-1.0, 1.0], np.float32), (K, D))

    def _latent(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``[n, D]`` float32 draws of the family's covariance (E|g|^2 = 1)."""
        g = rng.standard_normal((n, self.dims.dim), dtype=np.float32) * self._std
        return g if self._rotation is None else g @ self._rotation

    def draw(self, start: int, count: int) -> tuple[UnitBatch, np.ndarray]:
        """Units ``v{start}`` .. ``v{start + count - 1}`` and their cluster numbers ``[count]``."""
        rng = np.random.default_rng([self.seed, UNIT_STREAM, start])
        shape, dims = self.shape, self.dims
        T, K, D = dims.frames, dims.concepts, dims.dim
        cluster = rng.choice(len(self.cluster_share), count, p=self.cluster_share)
        latent = self._centres[cluster] + shape.unit_spread * self._latent(rng, count)
        direction = latent + self._mean_weight * self.mean_direction
        num_frames = rng.integers(MIN_FRAMES, T + 1, count).astype(np.int32)
        mask = np.arange(T)[None, :] < num_frames[:, None]
        # One frame slot / concept slot at a time: a 20k chunk never holds more than [20k, D] float32 draws.
        frames = np.zeros((count, T, D), np.float16)
        for t in range(T):
            frame = direction + shape.frame_noise * self._latent(rng, count)
            frame *= FEATURE_NORM / np.linalg.norm(frame, axis=-1, keepdims=True)
            frames[:, t] = frame * mask[:, t : t + 1]
        concepts = np.zeros((count, K, D), np.float16)
        for k in range(K):
            concept = latent[:, self._perms[k]] * self._signs[k] + shape.concept_noise * self._latent(rng, count)
            concept += self._mean_weight * self._concept_means[k]
            concepts[:, k] = concept / np.linalg.norm(concept, axis=-1, keepdims=True)
        ids = np.array([f"v{start + i}" for i in range(count)], dtype=object)
        units = UnitBatch(
            unit_id=np.array([f"{v}:0" for v in ids], dtype=object), video_id=ids,
            path=np.array([f"/archive/{v}.mp4" for v in ids], dtype=object),
            size=rng.integers(1 << 20, 1 << 28, count).astype(np.int64),
            mtime_ns=np.full(count, 1_700_000_000 * 10**9, np.int64),
            content_hash=np.array([f"{start + i:032x}" for i in range(count)], dtype=object),
            segment_index=np.zeros(count, np.int32), start_s=np.zeros(count, np.float32),
            end_s=np.full(count, float(T), np.float32), num_frames=num_frames,
            timestamps_s=np.tile(np.arange(T, dtype=np.float32), (count, 1)) * mask,
            frame_features=frames, visual_concepts=concepts, fingerprint=self.fingerprint,
        )
        return units, cluster

    def units(self, start: int, count: int) -> UnitBatch:
        return self.draw(start, count)[0]

    def chunks(self, count: int | None = None, start: int = 0, chunk: int = GENERATE_CHUNK) -> Iterator[UnitBatch]:
        """Units ``start`` .. ``start + count`` (default: the whole collection) in batches of ``chunk``."""
        end = start + (self.num_units if count is None else count)
        for first in range(start, end, chunk):
            yield self.units(first, min(chunk, end - first))

    def queries(
        self, units: UnitBatch, count: int, local_weight: float = LOCAL_WEIGHT
    ) -> tuple[TextEmbedding, np.ndarray, np.ndarray]:
        """``count`` queries near random units of ``units`` (an index's ``reader.units`` reads just those rows):
        text embeddings, query keys ``[count, G]`` float32, and the row each query was made from."""
        rng = np.random.default_rng([self.seed, QUERY_STREAM, len(units)])
        shape = self.shape
        rows = np.sort(rng.choice(len(units), count, replace=False))
        frames = np.asarray(units.frame_features[rows], np.float32)
        mask = units.frame_mask(rows)
        frames /= np.maximum(np.linalg.norm(frames, axis=-1, keepdims=True), 1e-6)
        direction = _unit((frames * mask[..., None]).sum(1))
        sentence = _unit(direction + shape.query_noise * self._latent(rng, count))
        concepts = None
        if self.dims.concepts:
            stored = np.asarray(units.visual_concepts[rows], np.float32)
            noise = np.stack([self._latent(rng, count) for _ in range(self.dims.concepts)], axis=1)
            concepts = torch.from_numpy(_unit(stored + shape.query_concept_noise * noise).astype(np.float32))
        s = torch.from_numpy(sentence.astype(np.float32))
        text = TextEmbedding(
            sentence=s, tokens=torch.zeros(count, 1, self.dims.dim), mask=torch.ones(count, 1, dtype=torch.bool),
            concepts=concepts,
        )
        return text, query_keys(s, concepts, local_weight).numpy(), rows


def random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random orthogonal ``[d, d]`` float32: a permutation times three sign-randomised Walsh-Hadamard
    transforms when d is a power of two (matmuls only: LAPACK's QR takes seconds when other processes
    share the cores), else the Q factor of a Gaussian matrix."""
    if d & (d - 1):
        return np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32)
    hadamard = np.ones((1, 1), np.float32)
    while len(hadamard) < d:
        hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
    hadamard /= np.sqrt(d)
    rotation = np.eye(d, dtype=np.float32)[rng.permutation(d)]
    for _ in range(3):
        rotation = (rotation * rng.choice(np.array([-1.0, 1.0], np.float32), d)) @ hadamard
    return rotation


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
