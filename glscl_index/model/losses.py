"""GLSCL training losses (docs/architecture.md §2), apart from the model as in open_clip's loss.py."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    """Reference weights of the two extra losses and the InfoNCE logit-scale clamp."""

    diversity_weight: float = 1e-4  # alpha
    diversity_margin: float = 0.1
    consistency_weight: float = 5e-3  # beta
    consistency_target: float = 0.75
    logit_scale_max: float = 100.0
    use_diversity: bool = True
    use_consistency: bool = True


@dataclass
class LossTerms:
    total: torch.Tensor
    contrastive: torch.Tensor
    diversity: torch.Tensor
    consistency: torch.Tensor


def multi_positive_infonce(scores: torch.Tensor, video_ids: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on ``logit_scale * scores``.

    scores ``[B, B]`` (row = caption i, column = video of pair j); video_ids ``[B]``.
    Every column showing the caption's own video is a positive: the target is
    uniform over them (captions of one video in a batch are all positives).
    """
    positives = (video_ids.unsqueeze(1) == video_ids.unsqueeze(0)).to(scores.dtype)
    targets = positives / positives.sum(dim=1, keepdim=True)
    logits = logit_scale * scores
    text_to_video = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    video_to_text = -(targets * F.log_softmax(logits.t(), dim=1)).sum(dim=1).mean()
    return (text_to_video + video_to_text) / 2


def intra_diversity(visual_concepts: torch.Tensor, margin: float) -> torch.Tensor:
    """Margin ranking that keeps the K visual concepts apart.

    visual_concepts ``[B, K, D]`` (unit rows). G = mean_b U_b U_b^T ``[K, K]``; each
    diagonal entry should beat every off-diagonal entry of its row and of its
    column by ``margin``; each direction is averaged over the K(K-1) pairs.
    """
    num = visual_concepts.shape[1]
    gram = torch.einsum("bkd,bjd->kj", visual_concepts, visual_concepts) / visual_concepts.shape[0]
    diagonal = gram.diagonal()
    off_diagonal = ~torch.eye(num, dtype=torch.bool, device=gram.device)
    rows = (margin + gram - diagonal.unsqueeze(1)).clamp_min(0) * off_diagonal
    cols = (margin + gram - diagonal.unsqueeze(0)).clamp_min(0) * off_diagonal
    pairs = num * (num - 1)
    return rows.sum() / pairs + cols.sum() / pairs


def inter_consistency(
    visual_concepts: torch.Tensor, textual_concepts: torch.Tensor, weight: float, target: float
) -> torch.Tensor:
    """Pull the k-th visual concept towards the k-th textual concept.

    visual_concepts, textual_concepts ``[B, K, D]``:
    MSE(mean_b U_b, mean_b W_b) + weight * sum_k (C_kk - target)^2, C = (1/K) sum_b U_b W_b^T.
    """
    mse = F.mse_loss(visual_concepts.mean(0), textual_concepts.mean(0))
    num = visual_concepts.shape[1]
    diagonal = torch.einsum("bkd,bkd->k", visual_concepts, textual_concepts) / num
    return mse + weight * (diagonal - target).pow(2).sum()


def glscl_loss(
    scores: torch.Tensor,
    video_ids: torch.Tensor,
    logit_scale_log: torch.Tensor,
    visual_concepts: torch.Tensor | None,
    textual_concepts: torch.Tensor | None,
    config: LossConfig,
) -> LossTerms:
    """InfoNCE + alpha * intra-diversity + inter-consistency on a batch.

    scores ``[B, B]`` of s; ``logit_scale_log`` is CLIP's learned log scale
    (exponentiated and clamped at ``config.logit_scale_max``); concepts ``[B, K, D]``
    or None when the LIM is off.
    """
    logit_scale = logit_scale_log.exp().clamp(max=config.logit_scale_max)
    contrastive = multi_positive_infonce(scores, video_ids, logit_scale)
    zero = scores.new_zeros(())
    diversity = consistency = zero
    if visual_concepts is not None and textual_concepts is not None:
        if config.use_diversity:
            diversity = config.diversity_weight * intra_diversity(visual_concepts, config.diversity_margin)
        if config.use_consistency:
            consistency = inter_consistency(
                visual_concepts, textual_concepts, config.consistency_weight, config.consistency_target
            )
    return LossTerms(
        total=contrastive + diversity + consistency,
        contrastive=contrastive,
        diversity=diversity,
        consistency=consistency,
    )
