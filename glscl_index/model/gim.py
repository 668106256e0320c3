"""Global interaction module (parameter-free): text-conditioned frame pooling (docs/architecture.md §2).

  a_t = masked softmax_t((e . v_t) / tau),  g = sum_t a_t v_t,  sim1 = cos(e, g)
"""

from __future__ import annotations

import torch


def frame_weights(sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float) -> torch.Tensor:
    """Attention of each text over each video's frames.

    sentence ``[Q, D]``, frames ``[V, T, D]``, mask ``[V, T]`` (True = real frame)
    -> weights ``[Q, V, T]``, rows summing to 1 over real frames, 0 on padding.
    Raw (unnormalised) dot products, as in the paper.
    """
    return _weights_from_dots(torch.einsum("qd,vtd->qvt", sentence, frames), mask, tau)


def _weights_from_dots(dots: torch.Tensor, mask: torch.Tensor, tau: float) -> torch.Tensor:
    logits = (dots / tau).masked_fill(~mask.unsqueeze(0), float("-inf"))
    return torch.softmax(logits, dim=-1)


def global_similarity(
    sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """sim1 = cos(e, g) for every (text, video) pair, without materialising g.

    sentence ``[Q, D]``, frames ``[V, T, D]``, mask ``[V, T]`` -> (sim1 ``[Q, V]``,
    frame weights ``[Q, V, T]``). Because g = sum_t a_t v_t, e.g = sum_t a_t (e.v_t)
    and |g|^2 = a^T (V V^T) a with the small per-video Gram matrix ``[V, T, T]``;
    this keeps the cost at O(Q V T (D + T)) with no ``[Q, V, D]`` intermediate.
    """
    dots = torch.einsum("qd,vtd->qvt", sentence, frames)
    weights = _weights_from_dots(dots, mask, tau)
    numerator = (weights * dots).sum(-1)
    gram = torch.einsum("vtd,vsd->vts", frames, frames)
    pooled_sq = torch.einsum("qvt,vts,qvs->qv", weights, gram, weights)
    # Clamp guards the sqrt of a tiny negative produced by rounding when g ~ 0.
    norms = sentence.norm(dim=-1, keepdim=True) * pooled_sq.clamp_min(1e-12).sqrt()
    return numerator / norms, weights
