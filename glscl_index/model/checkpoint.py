"""The GLSCL checkpoint format: save, load, fingerprint.

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

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from glscl_index.atomic import atomic_write, atomic_write_bytes
from glscl_index.errors import CheckpointError, first_line
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.glscl import GLSCL

CHECKPOINT_FORMAT = "glscl-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def fingerprint(config: GLSCLConfig, state: dict[str, torch.Tensor]) -> str:
    """Hash of the scoring config and every tensor (name, dtype, shape, bytes)."""
    semantic = config.fingerprint_dict()
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(semantic, sort_keys=True).encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_fingerprint(model: GLSCL) -> str:
    """The fingerprint of a model in memory: its config and its whole state dict (zero-shot models have no TE/LIM)."""
    return fingerprint(model.config, model.state_dict())


def save_checkpoint(model: GLSCL, directory: str | Path) -> str:
    """Write ``config.json`` + ``model.safetensors``; returns the fingerprint.

    Weights are written first and the config last, each with ``atomic_write``,
    so a crash never leaves a config pointing at half-written weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    digest = fingerprint(model.config, state)
    with atomic_write(directory / WEIGHTS_FILE) as tmp_weights:
        save_file(state, str(tmp_weights), metadata={"format": CHECKPOINT_FORMAT, "fingerprint": digest})
        # safetensors creates the file 0600; give it the mode every other file gets (0666 less the umask).
        os.chmod(tmp_weights, 0o666 & ~_current_umask())
    document = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": digest,
        "glscl": model.config.to_dict(),
    }
    atomic_write_bytes(directory / CONFIG_FILE, json.dumps(document, indent=2, sort_keys=True).encode())
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
    return load_checkpoint_and_fingerprint(directory)[0]


def load_checkpoint_and_fingerprint(directory: str | Path) -> tuple[GLSCL, str]:
    """As ``load_checkpoint``, plus the verified fingerprint."""
    directory = Path(directory)
    config, recorded = read_checkpoint_config(directory)
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path} is damaged or truncated: {first_line(exc)}") from exc
    try:
        model = GLSCL(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory}: cannot build the architecture in config.json: {first_line(exc)}") from exc
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{weights_path} does not match its config: missing {_names(missing)}; unexpected {_names(unexpected)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights_path} does not match its config: {first_line(exc)}") from exc
    digest = fingerprint(config, state)
    if recorded and digest != recorded:
        raise CheckpointError(
            f"{weights_path} does not match the fingerprint in {CONFIG_FILE} (modified or mixed files)"
        )
    return model, digest


def _names(keys: list[str], limit: int = 5) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
