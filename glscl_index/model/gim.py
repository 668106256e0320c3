"""Global interaction module (parameter-free): text-conditioned frame pooling (docs/architecture.md §2).

  a_t = masked softmax_t((e . v_t) / tau),  g = sum_t a_t v_t,  sim1 = cos(e, g)

``logits="cosine"`` (an option, not the paper) uses cos(e, v_t) / tau instead of the raw dot
product, so the sharpness of the weights does not follow the features' norms.
"""

from __future__ import annotations

import torch

LOGITS = ("dot", "cosine")


def frame_weights(
    sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float, logits: str = "dot"
) -> torch.Tensor:
    """Attention of each text over each video's frames.

    sentence ``[Q, D]``, frames ``[V, T, D]``, mask ``[V, T]`` (True = real frame)
    -> weights ``[Q, V, T]``, rows summing to 1 over real frames, 0 on padding.
    ``logits="dot"``: raw (unnormalised) dot products, as in the paper; ``"cosine"``: cosines.
    """
    return _weights_from_dots(torch.einsum("qd,vtd->qvt", sentence, frames), sentence, frames, mask, tau, logits)


def _weights_from_dots(
    dots: torch.Tensor, sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float, logits: str
) -> torch.Tensor:
    if logits == "cosine":
        # Padded frames are zero vectors: the clamp keeps their (masked) cosine finite.
        norms = sentence.norm(dim=-1)[:, None, None] * frames.norm(dim=-1).unsqueeze(0)
        dots = dots / norms.clamp_min(1e-12)
    elif logits != "dot":
        raise ValueError(f"GIM logits must be one of {LOGITS}, got {logits!r}")
    scaled = (dots / tau).masked_fill(~mask.unsqueeze(0), float("-inf"))
    return torch.softmax(scaled, dim=-1)


def global_similarity(
    sentence: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor, tau: float, logits: str = "dot"
) -> tuple[torch.Tensor, torch.Tensor]:
    """sim1 = cos(e, g) for every (text, video) pair.

    sentence ``[Q, D]``, frames ``[V, T, D]``, mask ``[V, T]`` -> (sim1 ``[Q, V]``,
    frame weights ``[Q, V, T]``); ``logits`` as in ``frame_weights``. Because g = sum_t a_t v_t,
    e.g = sum_t a_t (e.v_t). |g|^2 takes the cheaper of two routes: for fewer texts than frames (a search:
    Q = 1) g itself, O(Q V T D); for more (the tuner's and the evaluation's batches) a^T (V V^T) a with the
    small per-video Gram matrix ``[V, T, T]``, O(V T^2 D + Q V T^2), with no ``[Q, V, D]`` intermediate.
    """
    dots = torch.einsum("qd,vtd->qvt", sentence, frames)
    weights = _weights_from_dots(dots, sentence, frames, mask, tau, logits)
    numerator = (weights * dots).sum(-1)
    if sentence.shape[0] < frames.shape[1]:
        pooled = torch.bmm(weights.transpose(0, 1), frames)  # [V, Q, D]
        pooled_sq = pooled.square().sum(-1).T
    else:
        gram = torch.einsum("vtd,vsd->vts", frames, frames)
        pooled_sq = torch.einsum("qvt,vts,qvs->qv", weights, gram, weights)
    # Clamp guards the sqrt of a tiny negative produced by rounding when g ~ 0.
    norms = sentence.norm(dim=-1, keepdim=True) * pooled_sq.clamp_min(1e-12).sqrt()
    return numerator / norms, weights
