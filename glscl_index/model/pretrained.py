"""Pretrained CLIP weights: resolve an open_clip tag or a weights file, download it, load it into a backbone.

Tags are open_clip's registry (``open_clip.list_pretrained()``); files are
OpenAI TorchScript ``.pt`` archives or open_clip checkpoints.
"""

from __future__ import annotations

import os
import socket
import zipfile

import huggingface_hub.constants
import open_clip
import torch
from open_clip.pretrained import download_pretrained, get_pretrained_cfg, list_pretrained_tags_by_model

from glscl_index.errors import CheckpointError, WeightsUnavailableError, first_line
from glscl_index.model.backbone import ClipBackbone


def resolve_pretrained(name: str, clip_config: dict, pretrained: str) -> tuple[str, dict]:
    """(local weights path, clip_config adjusted for them) for a weights file or a tag of architecture ``name``.

    A tag's weights are downloaded into the hub cache (or taken from it).
    """
    if os.path.isfile(pretrained):
        if is_zip_torchscript(pretrained):
            # OpenAI's released .pt files are TorchScript archives of QuickGELU models.
            clip_config["quick_gelu"] = True
        return pretrained, clip_config
    tag_cfg = get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        tags = ", ".join(list_pretrained_tags_by_model(name)) or "none"
        raise WeightsUnavailableError(
            f"{pretrained!r} is neither a weights file nor a pretrained tag of {name} (tags: {tags}); "
            f"give a weights file or a tag with --pretrained, or --pretrained '' for random weights"
        )
    if tag_cfg.get("quick_gelu"):
        clip_config["quick_gelu"] = True
    go_offline_if_hub_unreachable()
    try:
        path = download_pretrained(tag_cfg)
    except Exception as exc:  # hub and network errors come in many types
        raise WeightsUnavailableError(
            f"could not fetch the {name}/{pretrained} CLIP weights (no internet, or not in the hub cache); "
            f"download them elsewhere and pass --pretrained /path/to/weights (GLSCL_PRETRAINED=/path/to/weights), "
            f"or use a trained GLSCL checkpoint: --checkpoint /path/to/checkpoint "
            f"(GLSCL_CHECKPOINT=/path/to/checkpoint)"
        ) from exc
    if not path:
        raise WeightsUnavailableError(f"open_clip has no download for {name}/{pretrained}")
    return path, clip_config


def go_offline_if_hub_unreachable(host: str = "huggingface.co", timeout_s: float = 3.0) -> None:
    """Without a route to the hub, switch huggingface_hub to offline mode (a process-wide setting).

    Cached weights then still load, and missing ones fail at once instead of
    after a minute of connection retries.
    """
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        huggingface_hub.constants.HF_HUB_OFFLINE = True


def load_clip_weights(backbone: ClipBackbone, path: str) -> None:
    """Load a CLIP weights file (TorchScript archive or open_clip checkpoint) into ``backbone``, strictly."""
    try:
        if is_zip_torchscript(path):
            state = torch.jit.load(path, map_location="cpu").state_dict()
            # Scripted archives also carry these buffers, which are not weights.
            for key in ("input_resolution", "context_length", "vocab_size", "attn_mask"):
                state.pop(key, None)
            backbone.clip.load_state_dict(state, strict=True)
        else:
            open_clip.load_checkpoint(backbone.clip, path, strict=True, weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a bad file
        raise CheckpointError(
            f"{path} is not usable CLIP weights for {backbone.config.clip_model}: {first_line(exc)}"
        ) from exc


def is_zip_torchscript(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("constants.pkl") for n in archive.namelist())
