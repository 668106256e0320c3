"""The GLSCL score s = sim1 + lambda * sim2 (docs/architecture.md §2), as a pure function over stored features."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from glscl_index.model.gim import global_similarity
from glscl_index.model.lim import local_similarity


@dataclass
class Scores:
    total: torch.Tensor  # [Q, V] s = sim1 + lambda * sim2 (sim1 alone in zero-shot mode)
    global_: torch.Tensor  # [Q, V] sim1
    local: torch.Tensor | None  # [Q, V] sim2, None in zero-shot mode
    frame_weights: torch.Tensor  # [Q, V, T] GIM weights: argmax_t is the best-matching frame


def glscl_score(
    sentence: torch.Tensor,
    frames: torch.Tensor,
    frame_mask: torch.Tensor,
    textual_concepts: torch.Tensor | None,
    visual_concepts: torch.Tensor | None,
    tau: float,
    local_weight: float,
    gim_logits: str = "dot",
) -> Scores:
    """Score Q texts against V units.

    sentence ``[Q, D]``; frames ``[V, T, D]`` (temporal-encoder output) with
    frame_mask ``[V, T]``; textual_concepts ``[Q, K, D]`` and visual_concepts
    ``[V, K, D]`` or both None (zero-shot: s = sim1); ``gim_logits`` as in ``gim.frame_weights``.
    """
    sim1, weights = global_similarity(sentence, frames, frame_mask, tau, gim_logits)
    if textual_concepts is None or visual_concepts is None:
        return Scores(total=sim1, global_=sim1, local=None, frame_weights=weights)
    sim2 = local_similarity(textual_concepts, visual_concepts)
    return Scores(total=sim1 + local_weight * sim2, global_=sim1, local=sim2, frame_weights=weights)
