"""The GLSCL configuration: one typed, JSON-serialisable object.

The same object travels from the CLI to the model factory and is written into
every checkpoint (``config.json``) and every index manifest.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Fields added after checkpoints and indexes were first written, with the behaviour those had.
LEGACY_DEFAULTS: dict[str, Any] = {"frame_pooling": "attention", "lim_memory": "masked", "gim_logits": "dot"}


@dataclass
class GLSCLConfig:
    """Architecture and scoring hyper-parameters of a GLSCL model (docs/architecture.md §2).

    ``clip_config`` is the full open_clip architecture (``embed_dim``,
    ``vision_cfg``, ``text_cfg``, ``quick_gelu``), so a checkpoint rebuilds its
    backbone without consulting open_clip's registry or the network.
    ``trained`` False means zero-shot mode: plain CLIP, no temporal encoder,
    no LIM, score = sim1.
    """

    clip_model: str = "ViT-B-32"
    clip_config: dict[str, Any] = field(default_factory=dict)
    pretrained: str = ""
    trained: bool = False
    num_frames: int = 12
    max_words: int = 32
    temporal_layers: int = 4
    temporal_positions: int = 77
    num_queries: int = 8
    decoder_layers: int = 3
    decoder_heads: int = 8
    decoder_ffn: int = 2048
    decoder_dropout: float = 0.1
    temperature: float = 3.0
    local_weight: float = 0.5
    frame_pooling: str = "attention"  # "attention" = the GIM; "mean" = plain mean of frames (ablation baseline)
    # GIM frame-weight logits: "dot" = (e . v_t) / tau on raw features (the paper); "cosine" = cos(e, v_t) / tau,
    # whose sharpness does not change with the features' norms (an option; tau then needs a cosine-sized value).
    gim_logits: str = "dot"
    # What the LIM's queries attend to: "masked" = real frames and tokens only; "unmasked" = every position,
    # padding included, as the official code calls its decoder (no memory mask): padded tokens carry the
    # sentence through CLIP's causal attention, padded frames are the features of a blank frame.
    lim_memory: str = "masked"
    # Weights never trained nor loaded (`glscl checkpoint random`): a smoke-test model, said wherever the mode is.
    random_weights: bool = False

    def __post_init__(self) -> None:
        if self.frame_pooling not in ("attention", "mean"):
            raise ValueError(f"frame_pooling must be 'attention' or 'mean', got {self.frame_pooling!r}")
        if self.gim_logits not in ("dot", "cosine"):
            raise ValueError(f"gim_logits must be 'dot' or 'cosine', got {self.gim_logits!r}")
        if self.lim_memory not in ("masked", "unmasked"):
            raise ValueError(f"lim_memory must be 'masked' or 'unmasked', got {self.lim_memory!r}")
        if self.num_queries < 0:
            raise ValueError(f"num_queries must be >= 0 (0 turns the LIM off), got {self.num_queries}")
        for name in ("num_frames", "temporal_layers", "temporal_positions", "decoder_layers", "decoder_heads",
                     "decoder_ffn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_words < 3:
            raise ValueError(f"max_words must be >= 3 (the start and end tokens count), got {self.max_words}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature:g}")
        if not self.local_weight >= 0:
            raise ValueError(f"local_weight must be >= 0, got {self.local_weight:g}")
        if not 0 <= self.decoder_dropout < 1:
            raise ValueError(f"decoder_dropout must be in [0, 1), got {self.decoder_dropout:g}")
        if self.clip_config:
            self._check_against_architecture()

    def _check_against_architecture(self) -> None:
        """Settings the open_clip architecture bounds; each would otherwise fail in the first forward pass."""
        context = int(self.clip_config.get("text_cfg", {}).get("context_length", 77))
        if self.max_words > context:
            # Text is tokenised to max_words and read through the tower's context_length positions.
            raise ValueError(
                f"max_words {self.max_words} is more than the text context_length {context} of {self.clip_model}: "
                f"use --max-words {context} (or fewer), or an architecture whose context_length is at least "
                f"{self.max_words}"
            )
        if not self.trained:
            return
        if self.num_frames > self.temporal_positions:
            raise ValueError(
                f"num_frames {self.num_frames} is more than the {self.temporal_positions} frame positions of the "
                f"temporal encoder of {self.clip_model} (its text context_length): use --frames "
                f"{self.temporal_positions} or fewer"
            )
        if self.num_queries and self.embed_dim % self.decoder_heads:
            raise ValueError(
                f"decoder_heads {self.decoder_heads} does not divide the width {self.embed_dim} of "
                f"{self.clip_model}: use --lim-heads with a divisor of {self.embed_dim}"
            )

    @property
    def embed_dim(self) -> int:
        return int(self.clip_config["embed_dim"])

    @property
    def image_size(self) -> int:
        size = self.clip_config["vision_cfg"].get("image_size", 224)
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    @property
    def text_width(self) -> int:
        return int(self.clip_config["text_cfg"].get("width", 512))

    @property
    def quick_gelu(self) -> bool:
        return bool(self.clip_config.get("quick_gelu", False))

    @property
    def mode(self) -> str:
        return "trained" if self.trained else "zero-shot"

    @property
    def mode_label(self) -> str:
        """The mode as shown to people: "trained", "zero-shot", with "(random weights)" when they are."""
        return self.mode + (" (random weights)" if self.random_weights else "")

    @property
    def concepts(self) -> int:
        """K stored per unit: the LIM only exists in a trained model with queries."""
        return self.num_queries if self.trained else 0

    @property
    def pooling_temperature(self) -> float:
        """tau of the GIM; infinite tau makes its weights uniform, i.e. mean pooling."""
        return float("inf") if self.frame_pooling == "mean" else self.temperature

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    def fingerprint_dict(self) -> dict[str, Any]:
        """The fields that change scores, as hashed into a model's fingerprint.

        Provenance (``pretrained``) is left out, and so is each field added after format 1
        shipped while it holds the value older checkpoints implicitly had: their recorded
        fingerprints, and the indexes built with them, keep matching.
        """
        semantic = self.to_dict()
        semantic.pop("pretrained")
        semantic.pop("random_weights")  # provenance too: same tensors, same model
        for name, legacy in LEGACY_DEFAULTS.items():
            if semantic.get(name) == legacy:
                semantic.pop(name)
        return semantic

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GLSCLConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown GLSCL config fields: {', '.join(unknown)}")
        return cls(**copy.deepcopy(data))
