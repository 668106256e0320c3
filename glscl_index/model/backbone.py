"""CLIP backbone over open_clip: per-frame features and per-token text features.

Only the classic CLIP text tower (token embedding + causal transformer +
``ln_final`` + projection) is supported, because GLSCL needs every token's
projected hidden state, not just the pooled sentence feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import Transformer
from torch import nn

from glscl_index.model.config import GLSCLConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TextFeatures:
    """Text tower output for a batch of B texts of L tokens."""

    tokens: torch.Tensor  # [B, L, D] every token after ln_final and the projection
    mask: torch.Tensor  # [B, L] bool, True on real tokens (start .. end-of-text)
    sentence: torch.Tensor  # [B, D] the end-of-text token's feature


def build_clip(config: GLSCLConfig) -> open_clip.CLIP:
    """Instantiate the open_clip model described by ``config.clip_config`` (random weights)."""
    cfg = dict(config.clip_config)
    if cfg.get("custom_text") or "hf_model_name" in cfg.get("text_cfg", {}):
        raise ValueError(
            f"{config.clip_model}: only open_clip models with the classic CLIP text tower are supported"
        )
    cfg.pop("custom_text", None)
    return open_clip.CLIP(**cfg)


class ClipBackbone(nn.Module):
    """Wraps an open_clip ``CLIP`` model; the state dict keeps open_clip's names under ``clip.``."""

    pixel_mean: torch.Tensor  # buffers, [1, 3, 1, 1]
    pixel_std: torch.Tensor

    def __init__(self, config: GLSCLConfig, clip: open_clip.CLIP | None = None):
        super().__init__()
        self.config = config
        self.clip = clip if clip is not None else build_clip(config)
        text_cfg = config.clip_config["text_cfg"]
        self.pool_type = text_cfg.get("pool_type", "argmax")
        if self.pool_type not in ("argmax", "eos"):
            raise ValueError(f"{config.clip_model}: text pool type {self.pool_type!r} is not supported")
        self.tokenizer = SimpleTokenizer(context_length=config.max_words)
        self.register_buffer("pixel_mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Texts -> token ids ``[B, L]`` (L = max_words); longer texts are truncated, never an error."""
        return self.tokenizer(texts, context_length=self.config.max_words)

    def count_tokens(self, text: str) -> int:
        """Tokens the text would need untruncated, start and end tokens included."""
        return len(self.tokenizer.encode(text)) + 2

    def normalize_pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 RGB frames ``[N, S, S, 3]`` -> CLIP-normalised float ``[N, 3, S, S]``."""
        pixels = frames.permute(0, 3, 1, 2).to(self.pixel_mean.dtype).div_(255.0)
        return (pixels - self.pixel_mean) / self.pixel_std

    def blank_frame_feature(self) -> torch.Tensor:
        """``[D]``: the feature of an all-zero normalised frame, what the official loader pads clips with."""
        size = self.clip.visual.image_size
        height, width = size if isinstance(size, (tuple, list)) else (size, size)
        pixels = torch.zeros(1, 3, height, width, dtype=self.pixel_mean.dtype, device=self.pixel_mean.device)
        return self.encode_frames(pixels)[0]

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised frames ``[N, 3, S, S]`` -> class-token features ``[N, D]`` (after ln_post and proj)."""
        return self.clip.encode_image(pixels)

    def encode_text(self, token_ids: torch.Tensor) -> TextFeatures:
        """Token ids ``[B, L]`` -> per-token features ``[B, L, D]``, mask ``[B, L]`` and sentence ``[B, D]``."""
        clip = self.clip
        length = token_ids.shape[1]
        cast_dtype = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(token_ids).to(cast_dtype)
        x = x + clip.positional_embedding[:length].to(cast_dtype)
        # The causal mask already keeps padding out of every real token's context.
        x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
        x = clip.ln_final(x)
        projection = clip.text_projection
        x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
        end = self._end_positions(token_ids)
        positions = torch.arange(length, device=token_ids.device)
        mask = positions.unsqueeze(0) <= end.unsqueeze(1)
        sentence = x[torch.arange(x.shape[0], device=x.device), end]
        return TextFeatures(tokens=x, mask=mask, sentence=sentence)

    def _end_positions(self, token_ids: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "argmax":
            return token_ids.argmax(dim=-1)
        eos = self.tokenizer.eot_token_id
        return (token_ids == eos).int().argmax(dim=-1)

    def text_blocks(self) -> Transformer:
        """The CLIP text transformer (its first blocks initialise the temporal encoder)."""
        return self.clip.transformer

    def text_positional_embedding(self) -> torch.Tensor:
        return self.clip.positional_embedding
