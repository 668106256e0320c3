"""Which model an index is built and searched with.

An index remembers the model that built it (manifest ``model_config.source``),
so scheduled re-runs of ``glscl index ./videos`` and a plain ``glscl search``
need no model flags. Flags given explicitly win; a fingerprint mismatch is then
reported by the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from glscl_index.errors import CheckpointError, IndexNotFoundError
from glscl_index.model.spec import ModelSpec
from glscl_index.store.manifest import read_manifest

if TYPE_CHECKING:
    from glscl_index.model.glscl import GLSCL


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


def reloadable_spec(spec: ModelSpec | None) -> ModelSpec | None:
    """``spec``, unless it names random weights: they differ at every load, so an index built with them
    could never be searched (its fingerprint would never match again)."""
    if spec is not None and not spec.checkpoint and not spec.pretrained:
        raise CheckpointError(
            "random weights (--pretrained '') cannot build an index: they differ at each load, so it could never "
            "be searched; write them once with `glscl checkpoint random DIR`, then `glscl index --checkpoint DIR`"
        )
    return spec


def load_index_model(
    index_dir: Path, checkpoint: str | None, clip_model: str | None, pretrained: str | None
) -> tuple[GLSCL, str]:
    """(model, fingerprint) of ``resolve_spec``; a checkpoint the index remembers but that moved is named as such."""
    explicit = explicit_spec(checkpoint, clip_model, pretrained)
    spec = explicit or recorded_spec(index_dir) or ModelSpec()
    if explicit is None and spec.checkpoint and not Path(spec.checkpoint).exists():
        raise CheckpointError(
            f"the index {index_dir} was built with the checkpoint directory {spec.checkpoint}, which does not exist "
            f"any more (the index remembers that path); if it moved, pass --checkpoint NEW_DIR"
        )
    from glscl_index.model.factory import load_model_and_fingerprint  # torch: only when a model is loaded

    return load_model_and_fingerprint(spec)
