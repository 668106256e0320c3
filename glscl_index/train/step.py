"""One training step's math: a batch of (frames, tokens) -> embeddings -> the GLSCL loss (docs/architecture.md §2)."""

from __future__ import annotations

import torch
from torch import nn

from glscl_index.model.glscl import GLSCL, TextEmbedding, VideoEmbedding
from glscl_index.model.losses import LossConfig, LossTerms, glscl_loss
from glscl_index.train import distributed


class BatchEncoder(nn.Module):
    """The forward pass of training as one module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: GLSCL):
        super().__init__()
        self.model = model

    def forward(
        self, frames: torch.Tensor, counts: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[VideoEmbedding, TextEmbedding]:
        """frames uint8 ``[B, T, S, S, 3]``, counts ``[B]`` real frames, tokens ``[B, L]``.

        Returns the (video, text) embeddings.
        """
        return encode_videos(self.model, frames, counts), self.model.embed_text(tokens)


def encode_videos(model: GLSCL, frames: torch.Tensor, counts: torch.Tensor) -> VideoEmbedding:
    """uint8 frames ``[B, T, S, S, 3]`` with ``counts [B]`` -> video embedding; padding frames never reach CLIP."""
    num_frames = frames.shape[1]
    mask = torch.arange(num_frames, device=frames.device).unsqueeze(0) < counts.unsqueeze(1)
    features = model.encode_frames(frames[mask])  # [F, D], F = counts.sum()
    padded = features.new_zeros(frames.shape[0], num_frames, features.shape[-1])
    padded[mask] = features
    return model.embed_video(padded, mask)


def batch_loss(
    model: GLSCL, video: VideoEmbedding, text: TextEmbedding, video_ids: torch.Tensor, config: LossConfig
) -> LossTerms:
    """GLSCL loss over the whole (all-gathered) batch: scores ``[B, B]``, positives by ``video_ids [B]``."""
    video, text, video_ids = distributed.gather(video, text, video_ids)
    scores = model.score(text, video).total.float()
    return glscl_loss(
        scores,
        video_ids,
        model.backbone.logit_scale.float(),
        None if video.concepts is None else video.concepts.float(),
        None if text.concepts is None else text.concepts.float(),
        config,
    )
