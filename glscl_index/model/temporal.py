"""Temporal encoder: v_t = f_t + TE(f_t + p_t) over the frames of one unit (docs/architecture.md §2)."""

from __future__ import annotations

import torch
from open_clip.transformer import QuickGELU, Transformer
from torch import nn

from glscl_index.model.config import GLSCLConfig


class TemporalEncoder(nn.Module):
    """Residual transformer over frame features with learned frame positions.

    Width D, ``config.temporal_layers`` CLIP-style residual attention blocks,
    D // 64 heads (as CLIP's text transformer, so its blocks can be copied in).
    """

    def __init__(self, config: GLSCLConfig):
        super().__init__()
        width = config.embed_dim
        self.heads = max(1, width // 64)
        self.position_embeddings = nn.Embedding(config.temporal_positions, width)
        self.transformer = Transformer(
            width=width,
            layers=config.temporal_layers,
            heads=self.heads,
            act_layer=QuickGELU if config.quick_gelu else nn.GELU,
        )
        nn.init.normal_(self.position_embeddings.weight, std=0.01)

    def init_from_clip_text(self, text_transformer: Transformer, text_positions: torch.Tensor) -> None:
        """Copy the first blocks of CLIP's text transformer and its positional embedding.

        This is the initialisation that makes GLSCL training converge fast; it
        needs the text width to equal D (true for the ViT CLIP models).
        """
        blocks = self.transformer.resblocks
        source = text_transformer.resblocks
        if source[0].ln_1.weight.shape != blocks[0].ln_1.weight.shape or len(source) < len(blocks):
            return
        with torch.no_grad():
            for target, block in zip(blocks, source, strict=False):  # the text tower may have more blocks
                target.load_state_dict(block.state_dict())
            rows = min(text_positions.shape[0], self.position_embeddings.num_embeddings)
            self.position_embeddings.weight[:rows].copy_(text_positions[:rows])

    def forward(self, frames: torch.Tensor, mask: torch.Tensor, zero_padding: bool = True) -> torch.Tensor:
        """Frame features ``[V, T, D]`` and mask ``[V, T]`` (True = real frame) -> ``[V, T, D]``.

        Missing frames are excluded as attention keys and, unless ``zero_padding`` is False
        (the official LIM reads them), zeroed in the output.
        """
        num_videos, num_frames, _ = frames.shape
        positions = self.position_embeddings.weight[:num_frames].to(frames.dtype)
        # Additive key-padding mask, one [T, T] slab per (video, head) as nn.MultiheadAttention wants.
        blocked = torch.zeros(num_videos, 1, 1, num_frames, dtype=frames.dtype, device=frames.device)
        blocked = blocked.masked_fill(~mask.view(num_videos, 1, 1, num_frames), float("-inf"))
        attn_mask = blocked.expand(num_videos, self.heads, num_frames, num_frames)
        attn_mask = attn_mask.reshape(num_videos * self.heads, num_frames, num_frames)
        hidden = self.transformer(frames + positions, attn_mask=attn_mask)
        contextual = frames + hidden
        return contextual * mask.unsqueeze(-1).to(frames.dtype) if zero_padding else contextual
