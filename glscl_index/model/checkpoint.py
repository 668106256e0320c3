"""Model factory and checkpoint format.

A GLSCL checkpoint is a directory:

- ``config.json``: ``{"format": "glscl-checkpoint", "format_version": 1,
  "glscl": GLSCLConfig, "fingerprint": "..."}`` (the full open_clip
  architecture is inside ``glscl.clip_config``);
- ``model.safetensors``: every tensor of the model (no pickle, so loading
  never runs arbitrary code).

The fingerprint is a hash of the config and of every tensor the model scores
with; indexes record it so that an index is never searched with another model.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import zipfile
from pathlib import Path

import huggingface_hub.constants
import open_clip
import torch
from open_clip.pretrained import (
    download_pretrained,
    get_pretrained_cfg,
    list_pretrained_tags_by_model,
)
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glscl_index.errors import CheckpointError, WeightsUnavailableError
from glscl_index.model.backbone import ClipBackbone, build_clip
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.glscl import GLSCL
from glscl_index.model.spec import ModelSpec

CHECKPOINT_FORMAT = "glscl-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when available else cpu; "cuda" without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError("--device cuda was asked for but no CUDA GPU is available")
    return torch.device(device)


def load_model(spec: ModelSpec) -> GLSCL:
    """Build the model a spec names, on CPU in eval mode."""
    model = load_checkpoint(spec.checkpoint) if spec.checkpoint else zero_shot_model(spec.clip_model, spec.pretrained)
    return model.eval()


def load_model_and_fingerprint(spec: ModelSpec) -> tuple[GLSCL, str]:
    """As ``load_model``, plus the fingerprint (a checkpoint's was verified on load, so not hashed twice)."""
    if spec.checkpoint:
        model, digest = _load_verified(spec.checkpoint)
        return model.eval(), digest
    model = load_model(spec)
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
            f"unknown open_clip architecture {clip_model!r}; see `python -c \"import open_clip; print(open_clip.list_models())\"`"
        )
    return clip_model, copy.deepcopy(config)


def zero_shot_model(clip_model: str, pretrained: str) -> GLSCL:
    """Plain CLIP weights, no trained GLSCL modules (zero-shot mode: s = sim1)."""
    name, clip_config = architecture_config(clip_model)
    weights_path = ""
    if pretrained:
        weights_path, clip_config = _resolve_pretrained(name, clip_config, pretrained)
    config = GLSCLConfig(
        clip_model=name, clip_config=clip_config, pretrained=pretrained, trained=False,
        temporal_positions=_text_context(clip_config),
    )
    model = GLSCL(config)
    if weights_path:
        _load_clip_weights(model.backbone, weights_path)
    return model


def _resolve_pretrained(name: str, clip_config: dict, pretrained: str) -> tuple[str, dict]:
    if os.path.isfile(pretrained):
        if _is_zip_torchscript(pretrained):
            # OpenAI's released .pt files are TorchScript archives of QuickGELU models.
            clip_config["quick_gelu"] = True
        return pretrained, clip_config
    tag_cfg = get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        tags = ", ".join(list_pretrained_tags_by_model(name)) or "none"
        raise WeightsUnavailableError(
            f"{pretrained!r} is neither a weights file nor a pretrained tag of {name} (tags: {tags})"
        )
    if tag_cfg.get("quick_gelu"):
        clip_config["quick_gelu"] = True
    _go_offline_if_hub_unreachable()
    try:
        path = download_pretrained(tag_cfg)
    except Exception as exc:  # hub and network errors come in many types
        raise WeightsUnavailableError(
            f"could not fetch the {name}/{pretrained} CLIP weights (no internet, or not in the hub cache); "
            f"download them elsewhere and pass --pretrained /path/to/weights (GLSCL_PRETRAINED=/path/to/weights), "
            f"or use a trained GLSCL checkpoint: --checkpoint /path/to/checkpoint (GLSCL_CHECKPOINT=/path/to/checkpoint)"
        ) from exc
    if not path:
        raise WeightsUnavailableError(f"open_clip has no download for {name}/{pretrained}")
    return path, clip_config


def _go_offline_if_hub_unreachable(host: str = "huggingface.co", timeout_s: float = 3.0) -> None:
    """Without a route to the hub, switch huggingface_hub to offline mode.

    Cached weights then still load, and missing ones fail at once instead of
    after a minute of connection retries.
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        huggingface_hub.constants.HF_HUB_OFFLINE = True


def _load_clip_weights(backbone: ClipBackbone, path: str) -> None:
    try:
        if _is_zip_torchscript(path):
            state = torch.jit.load(path, map_location="cpu").state_dict()
            # Scripted archives also carry these buffers, which are not weights.
            for key in ("input_resolution", "context_length", "vocab_size", "attn_mask"):
                state.pop(key, None)
            backbone.clip.load_state_dict(state, strict=True)
        else:
            open_clip.load_checkpoint(backbone.clip, path, strict=True, weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a bad file
        raise CheckpointError(f"{path} is not usable CLIP weights for {backbone.config.clip_model}: {_first_line(exc)}") from exc


def _is_zip_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") for n in archive.namelist())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def scoring_state(model: GLSCL) -> dict[str, torch.Tensor]:
    """Every tensor the model scores with (the state dict; zero-shot models have no TE/LIM)."""
    return model.state_dict()


def fingerprint(config: GLSCLConfig, state: dict[str, torch.Tensor]) -> str:
    """Hash of the scoring config and every tensor (name, dtype, shape, bytes)."""
    semantic = config.to_dict()
    semantic.pop("pretrained")  # provenance only: same weights, same fingerprint
    if semantic.get("frame_pooling") == "attention":
        # Added after format 1 shipped: leaving the default out keeps older
        # checkpoints and indexes matching their recorded fingerprints.
        semantic.pop("frame_pooling")
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(semantic, sort_keys=True).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model: GLSCL) -> str:
    return fingerprint(model.config, scoring_state(model))


def save_checkpoint(model: GLSCL, directory: str | Path) -> str:
    """Write ``config.json`` + ``model.safetensors``; returns the fingerprint.

    Weights are written first and the config last, each through a temporary
    file and an atomic rename, so a crash never leaves a config pointing at
    half-written weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in scoring_state(model).items()}
    digest = fingerprint(model.config, state)
    tmp_weights = directory / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp_weights), metadata={"format": CHECKPOINT_FORMAT, "fingerprint": digest})
    # safetensors creates the file 0600; give it the mode every other file gets (0666 less the umask).
    os.chmod(tmp_weights, 0o666 & ~_current_umask())
    os.replace(tmp_weights, directory / WEIGHTS_FILE)
    document = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": digest,
        "glscl": model.config.to_dict(),
    }
    tmp_config = directory / (CONFIG_FILE + ".tmp")
    tmp_config.write_text(json.dumps(document, indent=2, sort_keys=True))
    os.replace(tmp_config, directory / CONFIG_FILE)
    return digest


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_checkpoint_config(directory: str | Path) -> tuple[GLSCLConfig, str]:
    """``config.json`` of a checkpoint -> (config, recorded fingerprint)."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    if directory.is_file():
        raise CheckpointError(
            f"checkpoint {directory} is a file; give the checkpoint directory (the folder holding {CONFIG_FILE} "
            f"and {WEIGHTS_FILE}), e.g. --checkpoint {directory.parent}"
        )
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint directory {directory} does not exist")
    if not config_path.is_file():
        raise CheckpointError(f"{directory} is not a GLSCL checkpoint ({CONFIG_FILE} is missing)")
    try:
        document = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{config_path} is damaged: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{config_path} is not a GLSCL checkpoint config")
    if document.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} was written by a newer glscl (format {document['format_version']}); upgrade glscl"
        )
    try:
        config = GLSCLConfig.from_dict(document["glscl"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{config_path} has an invalid GLSCL config: {exc}") from exc
    return config, str(document.get("fingerprint", ""))


def load_checkpoint(directory: str | Path) -> GLSCL:
    """Rebuild a model from a checkpoint directory, offline; verifies the fingerprint."""
    return _load_verified(directory)[0]


def _load_verified(directory: str | Path) -> tuple[GLSCL, str]:
    directory = Path(directory)
    config, recorded = read_checkpoint_config(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path} is damaged or truncated: {_first_line(exc)}") from exc
    try:
        model = GLSCL(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: cannot build the architecture in config.json: {_first_line(exc)}") from exc
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path} does not match its config: missing {_names(missing)}; unexpected {_names(unexpected)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights_path} does not match its config: {_first_line(exc)}") from exc
    digest = fingerprint(config, state)
    if recorded and digest != recorded:
        raise CheckpointError(f"{weights_path} does not match the fingerprint in {CONFIG_FILE} (modified or mixed files)")
    return model, digest


def _text_context(clip_config: dict) -> int:
    return int(clip_config["text_cfg"].get("context_length", 77))


def _names(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def create_random_model(clip_model: str, trained: bool, seed: int = 0, **overrides) -> GLSCL:
    """A model with random weights of any architecture (name or JSON file), for offline smoke tests.

    ``trained`` True builds the temporal encoder and LIM too (randomly
    initialised, TE copied from the random text tower as training would).
    """
    name, clip_config = architecture_config(clip_model)
    torch.manual_seed(seed)
    overrides.setdefault("temporal_positions", _text_context(clip_config))
    config = GLSCLConfig(clip_model=name, clip_config=clip_config, pretrained="", trained=trained, **overrides)
    model = GLSCL(config, ClipBackbone(config, build_clip(config)))
    model.init_new_modules_from_clip()
    return model.eval()


def trainable_model(spec: ModelSpec, **overrides) -> GLSCL:
    """The model training starts from, in trained mode.

    A trained GLSCL checkpoint continues as it is (``overrides`` must then be
    empty: its architecture is fixed). CLIP weights (a zero-shot checkpoint,
    an open_clip tag or a weights file) get a fresh temporal encoder, copied
    from CLIP's text tower, and a fresh LIM (``overrides``: GLSCLConfig fields,
    e.g. ``num_queries``).
    """
    source = load_model(spec)
    if not source.zero_shot:
        if overrides:
            raise CheckpointError(
                f"{spec.checkpoint} is already a trained GLSCL model; its architecture cannot change "
                f"({', '.join(sorted(overrides))})"
            )
        return source
    settings = source.config.to_dict()
    settings.update(overrides, trained=True)
    try:
        config = GLSCLConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"invalid model settings: {exc}") from exc
    model = GLSCL(config, ClipBackbone(config, source.backbone.clip))
    model.init_new_modules_from_clip()
    return model
