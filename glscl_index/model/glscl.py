"""The GLSCL model: CLIP backbone + temporal encoder + GIM + shared LIM (docs/architecture.md §2).

Reads top to bottom like the paper: frames -> temporal encoder -> (frames for
the GIM, visual concepts U); text -> tokens and sentence -> textual concepts W;
score = sim1 + lambda * sim2. In zero-shot mode the temporal encoder and the
LIM do not exist at all, so nothing untrained can leak into a score.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from glscl_index.model.backbone import ClipBackbone
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.lim import LocalInteraction
from glscl_index.model.score import Scores, glscl_score
from glscl_index.model.temporal import TemporalEncoder


class _RowBatch:
    """Row selection and concatenation along the first axis of every tensor field (a None field stays None)."""

    def rows(self, index):
        """The rows ``index`` (int tensor, slice) of every field."""
        return type(self)(**{f.name: _apply(getattr(self, f.name), lambda t: t[index]) for f in fields(self)})

    def float32(self):
        """Floating fields as float32 (masks unchanged), e.g. after fp16/bf16 autocast."""
        return type(self)(
            **{
                f.name: _apply(getattr(self, f.name), lambda t: t.float() if t.is_floating_point() else t)
                for f in fields(self)
            }
        )

    @classmethod
    def concat(cls, parts: list):
        return cls(**{
            f.name: None if getattr(parts[0], f.name) is None else torch.cat([getattr(p, f.name) for p in parts])
            for f in fields(parts[0])
        })


def _apply(tensor: torch.Tensor | None, fn) -> torch.Tensor | None:
    return None if tensor is None else fn(tensor)


@dataclass
class VideoEmbedding(_RowBatch):
    """What the index stores for V units of at most T frames."""

    frames: torch.Tensor  # [V, T, D] temporal-encoder output (raw CLIP frame features in zero-shot mode)
    mask: torch.Tensor  # [V, T] bool, True on real frames
    concepts: torch.Tensor | None  # [V, K, D] unit-norm visual concepts U, None in zero-shot mode


@dataclass
class TextEmbedding(_RowBatch):
    """A batch of Q encoded queries."""

    sentence: torch.Tensor  # [Q, D] end-of-text feature e
    tokens: torch.Tensor  # [Q, L, D] token features h
    mask: torch.Tensor  # [Q, L] bool
    concepts: torch.Tensor | None  # [Q, K, D] unit-norm textual concepts W, None in zero-shot mode


class GLSCL(nn.Module):
    def __init__(self, config: GLSCLConfig, backbone: ClipBackbone | None = None):
        super().__init__()
        self.config = config
        self.backbone = backbone if backbone is not None else ClipBackbone(config)
        self.temporal = TemporalEncoder(config) if config.trained else None
        self.lim = LocalInteraction(config) if config.trained and config.num_queries > 0 else None

    @property
    def zero_shot(self) -> bool:
        return not self.config.trained

    def init_new_modules_from_clip(self) -> None:
        """Initialise the temporal encoder from CLIP's text transformer (before training)."""
        if self.temporal is not None:
            self.temporal.init_from_clip_text(
                self.backbone.text_blocks(), self.backbone.text_positional_embedding()
            )

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames ``[N, S, S, 3]`` -> CLIP frame features ``[N, D]``."""
        return self.backbone.encode_frames(self.backbone.normalize_pixels(frames))

    def embed_video(self, frame_features: torch.Tensor, mask: torch.Tensor) -> VideoEmbedding:
        """CLIP frame features ``[V, T, D]`` with mask ``[V, T]`` -> what the index stores."""
        mask = mask.bool()
        if self.zero_shot:
            frames = frame_features * mask.unsqueeze(-1).to(frame_features.dtype)
            return VideoEmbedding(frames=frames, mask=mask, concepts=None)
        assert self.temporal is not None  # a trained model always has its temporal encoder
        if self.config.lim_memory == "masked":
            frames = self.temporal(frame_features, mask)
            concepts = None if self.lim is None else self.lim(frames, mask)
            return VideoEmbedding(frames=frames, mask=mask, concepts=concepts)
        # The official LIM also reads the padded frames: blank frames through CLIP and the temporal encoder.
        blank = self.backbone.blank_frame_feature().to(frame_features.dtype)
        padded = torch.where(mask.unsqueeze(-1), frame_features, blank)
        contextual = self.temporal(padded, mask, zero_padding=False)
        concepts = None if self.lim is None else self.lim(contextual, None)
        return VideoEmbedding(frames=contextual * mask.unsqueeze(-1).to(contextual.dtype), mask=mask, concepts=concepts)

    def embed_text(self, token_ids: torch.Tensor) -> TextEmbedding:
        """Token ids ``[Q, L]`` -> sentence, token features and textual concepts."""
        text = self.backbone.encode_text(token_ids)
        memory_mask = text.mask if self.config.lim_memory == "masked" else None
        concepts = None if self.lim is None else self.lim(text.tokens, memory_mask)
        return TextEmbedding(sentence=text.sentence, tokens=text.tokens, mask=text.mask, concepts=concepts)

    def score(self, text: TextEmbedding, video: VideoEmbedding) -> Scores:
        """GLSCL scores ``[Q, V]`` of every text against every video."""
        return glscl_score(
            text.sentence,
            video.frames,
            video.mask,
            text.concepts,
            video.concepts,
            tau=self.config.pooling_temperature,
            local_weight=self.config.local_weight,
            gim_logits=self.config.gim_logits,
        )
