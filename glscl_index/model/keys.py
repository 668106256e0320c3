"""Global keys: the vectors FAISS searches to pick candidates for the exact GLSCL rerank (docs/architecture.md §4).

A video key is [m ; U_flat] and a query key [e_hat ; lambda * W_flat], where m is
the unit-norm mean of the unit-norm frames and U_flat, W_flat are the flattened,
1/sqrt(K)-scaled concepts. Their inner product is cos(e, m) + lambda * sim2: the
sim2 half of the score is exact and only sim1 is approximated (attention pooling
replaced by mean pooling), which is what keeps the two-stage top-k equal to
exhaustive scoring. Zero-shot keys are just [m] against [e_hat].

lambda sits on the query side only, so a video key is a fixed function of the
features an index stores: the index derives keys from its rows (store/unit_keys.py)
instead of storing them, which saves D * (1 + K) floats per unit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from glscl_index.model.lim import flatten_concepts


def key_dim(embed_dim: int, concepts: int) -> int:
    """G = D * (1 + K); K = 0 in zero-shot mode."""
    return embed_dim * (1 + concepts)


def video_keys(frames: torch.Tensor, mask: torch.Tensor, concepts: torch.Tensor | None) -> torch.Tensor:
    """frames ``[V, T, D]``, mask ``[V, T]``, concepts ``[V, K, D]`` (K may be 0) or None -> keys ``[V, G]`` float32."""
    unit_frames = F.normalize(frames.float(), dim=-1, eps=1e-6) * mask.unsqueeze(-1)
    mean = F.normalize(unit_frames.sum(1), dim=-1, eps=1e-6)
    if concepts is None or concepts.shape[1] == 0:
        return mean
    return torch.cat([mean, flatten_concepts(concepts.float())], dim=1)


def query_keys(sentence: torch.Tensor, concepts: torch.Tensor | None, local_weight: float) -> torch.Tensor:
    """sentence ``[Q, D]``, concepts ``[Q, K, D]`` or None -> keys ``[Q, G]`` float32."""
    unit = F.normalize(sentence.float(), dim=-1, eps=1e-6)
    if concepts is None:
        return unit
    return torch.cat([unit, local_weight * flatten_concepts(concepts.float())], dim=1)
