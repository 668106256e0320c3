"""Where a model comes from; a plain record, importable without torch (the CLI and the index planner use it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelSpec:
    """Where a model comes from: a GLSCL checkpoint directory, or a CLIP architecture + weights.

    ``clip_model`` is an open_clip architecture name or a path to a JSON file
    with an open_clip model config; ``pretrained`` is an open_clip tag
    (downloaded once through open_clip's hub cache), a local weights file, or
    "" for random weights.
    """

    checkpoint: str = ""
    clip_model: str = "ViT-B-32"
    pretrained: str = "openai"
