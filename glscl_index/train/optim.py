"""AdamW with two learning rates and a warm-up + cosine schedule (docs/architecture.md §2)."""

from __future__ import annotations

import math

import torch
from torch import nn

from glscl_index.train.config import TrainConfig


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Four AdamW groups: {new modules, CLIP towers} x {decayed, not decayed}.

    New modules (temporal encoder, LIM) learn at ``lr_new``, everything under
    ``backbone`` (CLIP and its logit scale) at ``lr_clip``. As in CLIP
    fine-tuning code, biases, norms, embeddings and scalars are not decayed:
    decay on them only shrinks the model without regularising it (``no_decay="bias"``
    exempts biases only, as the official code). Frozen parameters are left out.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_clip = name.startswith("backbone.")
        if config.no_decay == "bias":
            decayed = not name.endswith("bias")
        else:
            decayed = param.ndim >= 2 and "embedding" not in name and not name.endswith("queries")
        groups.setdefault((is_clip, decayed), []).append(param)
    return [
        {
            "params": params,
            "lr": config.lr_clip if is_clip else config.lr_new,
            "weight_decay": config.weight_decay if decayed else 0.0,
            "name": f"{'clip' if is_clip else 'new'}{'' if decayed else '-no-decay'}",
        }
        for (is_clip, decayed), params in sorted(groups.items())
    ]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(parameter_groups(model, config), betas=(0.9, 0.98), eps=1e-6)


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear 0 -> 1 over the warm-up, then cosine 1 -> 0."""
    warmup = int(total_steps * warmup_fraction)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def official_warmup_cosine(step: int, total_steps: int, warmup_fraction: float) -> float:
    """The official code's multiplier: x = (step + 1) / total; x / warmup during the warm-up, then
    0.5 (1 + cos(pi x)), a cosine over the whole run that starts below 1 where the warm-up ends."""
    x = (step + 1) / total_steps
    if x < warmup_fraction:
        return x / warmup_fraction
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, x)))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, config: TrainConfig):
    multiplier = official_warmup_cosine if config.schedule == "official" else warmup_cosine
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: multiplier(step, total_steps, config.warmup_fraction)
    )


def gradient_clip(config: TrainConfig, world_size: int) -> float:
    """Maximum global gradient norm for this run."""
    return config.grad_clip * (world_size if config.grad_clip_per_rank else 1)
