"""Which model an index is built and searched with.

An index remembers the model that built it (manifest ``model_config.source``),
so scheduled re-runs of ``glscl index ./videos`` and a plain ``glscl search``
need no model flags. Flags given explicitly win; a fingerprint mismatch is then
reported by the store.
"""

from __future__ import annotations

from pathlib import Path

from glscl_index.errors import IndexNotFoundError
from glscl_index.model.checkpoint import ModelSpec
from glscl_index.store.manifest import read_manifest


def recorded_spec(index_dir: Path) -> ModelSpec | None:
    """The model spec stored in an index's manifest, or None when there is no index yet."""
    try:
        manifest = read_manifest(index_dir)
    except IndexNotFoundError:
        return None
    source = manifest.model_config.get("source") if isinstance(manifest.model_config, dict) else None
    if not isinstance(source, dict):
        return None
    return ModelSpec(
        checkpoint=str(source.get("checkpoint", "")),
        clip_model=str(source.get("clip_model", "ViT-B-32")),
        pretrained=str(source.get("pretrained", "")),
    )


def explicit_spec(checkpoint: str | None, clip_model: str | None, pretrained: str | None) -> ModelSpec | None:
    """The model the options name (a checkpoint wins over --model/--pretrained), None when they name none."""
    if checkpoint:
        return ModelSpec(checkpoint=checkpoint)
    if clip_model is not None or pretrained is not None:
        return ModelSpec(clip_model=clip_model or "ViT-B-32", pretrained="openai" if pretrained is None else pretrained)
    return None


def resolve_spec(index_dir: Path, checkpoint: str | None, clip_model: str | None, pretrained: str | None) -> ModelSpec:
    """Explicit options > the index's recorded model > defaults (ViT-B-32, openai weights)."""
    return explicit_spec(checkpoint, clip_model, pretrained) or recorded_spec(index_dir) or ModelSpec()
