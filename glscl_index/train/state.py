"""What training writes: ``last/`` (resume point) and ``best/`` (best validation R@1), both GLSCL checkpoints.

Each directory is a complete checkpoint in our format (``glscl index
--checkpoint DIR`` takes it as is); ``last/`` also holds ``train_state.pt``
with the optimiser, schedule, step and random-generator states. A directory
is written beside its final name and swapped in, so a crash at any moment
leaves either the previous or the new one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from glscl_index.atomic import atomic_write, atomic_write_bytes, fsync_dir
from glscl_index.errors import CheckpointError, first_line
from glscl_index.model.checkpoint import WEIGHTS_FILE, save_checkpoint
from glscl_index.model.glscl import GLSCL

STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.json"


@dataclass
class Resumable:
    """Everything besides the weights that a resumed run needs to continue as if never stopped."""

    step: int
    best_r1: float
    best_epoch: int
    optimizer: dict
    scheduler: dict
    scaler: dict
    rng: dict
    train_config: dict


def save_directory(target: Path, model: GLSCL, extra: dict[str, object]) -> None:
    """Write a checkpoint (+ extra files: ``name -> dict`` as JSON or torch state) and swap it in atomically."""
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    save_checkpoint(model, staging)
    for name, payload in extra.items():
        if name.endswith(".json"):
            atomic_write_bytes(staging / name, json.dumps(payload, indent=2).encode())
        else:
            with atomic_write(staging / name) as tmp:
                torch.save(payload, tmp)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def existing(target: Path) -> Path | None:
    """The complete directory for ``target``: itself, or its predecessor if a crash hit between the two renames."""
    for candidate in (target, target.with_name(target.name + ".old")):
        if (candidate / WEIGHTS_FILE).is_file():
            return candidate
    return None


def save_resumable(target: Path, model: GLSCL, state: Resumable) -> None:
    save_directory(target, model, {STATE_FILE: state.__dict__})


def load_resumable(source: Path, model: GLSCL) -> Resumable:
    """Load ``last/`` weights into ``model`` and return the rest of the training state."""
    try:
        weights = load_file(str(source / WEIGHTS_FILE))
        model.load_state_dict(weights, strict=True)
        payload = torch.load(source / STATE_FILE, map_location="cpu", weights_only=True)
        return Resumable(**payload)
    except (OSError, RuntimeError, TypeError, KeyError) as exc:
        raise CheckpointError(f"cannot resume from {source}: {first_line(exc, 200)}; remove it to start over") from exc


def rng_state() -> dict:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
