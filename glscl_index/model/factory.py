"""Build a GLSCL model: from a spec (checkpoint or CLIP weights), with random weights, or to start training from.

Architectures are open_clip model configs, named (``ViT-B-32``) or given as a
JSON file; weights come from ``pretrained.py`` (CLIP) or ``checkpoint.py`` (GLSCL).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import open_clip
import torch

from glscl_index.errors import CheckpointError, InvalidOptionError, first_line
from glscl_index.model.backbone import ClipBackbone, build_clip
from glscl_index.model.checkpoint import load_checkpoint_and_fingerprint, model_fingerprint
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.glscl import GLSCL
from glscl_index.model.pretrained import load_clip_weights, resolve_pretrained
from glscl_index.model.spec import ModelSpec


def load_model(spec: ModelSpec) -> GLSCL:
    """Build the model a spec names, on CPU in eval mode."""
    return load_model_and_fingerprint(spec)[0]


def load_model_and_fingerprint(spec: ModelSpec) -> tuple[GLSCL, str]:
    """As ``load_model``, plus the fingerprint (a checkpoint's was verified on load, so not hashed twice)."""
    if spec.checkpoint:
        model, digest = load_checkpoint_and_fingerprint(spec.checkpoint)
        return model.eval(), digest
    model = zero_shot_model(spec.clip_model, spec.pretrained).eval()
    return model, model_fingerprint(model)


def architecture_config(clip_model: str) -> tuple[str, dict]:
    """open_clip architecture name or JSON file -> (name, open_clip model config dict)."""
    path = Path(clip_model)
    if clip_model.endswith(".json"):
        if not path.is_file():
            raise CheckpointError(f"architecture file {clip_model} does not exist")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"architecture file {clip_model} is not valid JSON: {exc}") from exc
        data = data.get("model_cfg", data)
        if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(data):
            raise CheckpointError(
                f"architecture file {clip_model} needs embed_dim, vision_cfg and text_cfg (an open_clip model config)"
            )
        return path.stem, copy.deepcopy(data)
    config = open_clip.get_model_config(clip_model)
    if config is None:
        raise CheckpointError(
            f"unknown open_clip architecture {clip_model!r}; "
            f"see `python -c \"import open_clip; print(open_clip.list_models())\"`"
        )
    return clip_model, copy.deepcopy(config)


def new_config(clip_model: str, pretrained: str = "", **settings) -> GLSCLConfig:
    """The config of a new model of architecture ``clip_model`` (name or JSON file), checked against it.

    ``settings`` are GLSCLConfig fields. A value out of range, or one the architecture cannot
    take (more words than its text context), is an InvalidOptionError here, before any weights
    are fetched or clips decoded, not an error in the first forward pass.
    """
    name, clip_config = architecture_config(clip_model)
    settings.setdefault("temporal_positions", text_context(clip_config))
    return checked_config(dict(settings, clip_model=name, clip_config=clip_config, pretrained=pretrained))


def checked_config(settings: dict) -> GLSCLConfig:
    """GLSCLConfig from fields chosen by a caller (options, overrides): a bad value is an InvalidOptionError."""
    try:
        return GLSCLConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(f"invalid model settings: {first_line(exc)}") from exc


def zero_shot_model(clip_model: str, pretrained: str, **settings) -> GLSCL:
    """Plain CLIP weights, no trained GLSCL modules (zero-shot mode: s = sim1); ``settings``: GLSCLConfig fields."""
    config = new_config(clip_model, pretrained, **settings, trained=False)
    weights_path = ""
    if pretrained:
        weights_path, config.clip_config = resolve_pretrained(config.clip_model, config.clip_config, pretrained)
    model = GLSCL(config)
    if weights_path:
        load_clip_weights(model.backbone, weights_path)
    return model


def text_context(clip_config: dict) -> int:
    """The text tower's context length: the number of learned positions the temporal encoder gets."""
    return int(clip_config["text_cfg"].get("context_length", 77))


def create_random_model(clip_model: str, trained: bool, seed: int = 0, **overrides) -> GLSCL:
    """A model with random weights of any architecture (name or JSON file), for offline smoke tests.

    ``trained`` True builds the temporal encoder and LIM too (randomly
    initialised, TE copied from the random text tower as training would).
    ``overrides``: GLSCLConfig fields (``num_frames``, ``max_words``, ...).
    """
    config = new_config(clip_model, "", **overrides, trained=trained, random_weights=True)
    torch.manual_seed(seed)
    model = GLSCL(config, ClipBackbone(config, build_clip(config)))
    model.init_new_modules_from_clip()
    return model.eval()


def trainable_model(spec: ModelSpec, **overrides) -> GLSCL:
    """The model training starts from, in trained mode.

    A trained GLSCL checkpoint continues as it is (``overrides`` must then be
    empty: its architecture is fixed). CLIP weights (a zero-shot checkpoint,
    an open_clip tag or a weights file) get a fresh temporal encoder, copied
    from CLIP's text tower, and a fresh LIM (``overrides``: GLSCLConfig fields,
    e.g. ``num_queries``). Every setting is checked before weights are fetched.
    """
    if spec.checkpoint:
        source = load_model(spec)
        if not source.zero_shot:
            if overrides:
                raise CheckpointError(
                    f"{spec.checkpoint} is already a trained GLSCL model; its architecture cannot change "
                    f"({', '.join(sorted(overrides))}): leave out the model-shape options to continue it"
                )
            source.config.random_weights = False  # what training writes is trained, whatever it started from
            return source
    else:
        new_config(spec.clip_model, spec.pretrained, **overrides, trained=True)  # fail before any download
        source = zero_shot_model(spec.clip_model, spec.pretrained, **overrides)
    settings = source.config.to_dict()
    settings.update(overrides, trained=True, random_weights=False)
    config = checked_config(settings)
    model = GLSCL(config, ClipBackbone(config, source.backbone.clip))
    model.init_new_modules_from_clip()
    return model
