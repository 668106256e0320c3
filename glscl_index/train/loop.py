"""The training loop: epochs of shuffled batches, AdamW + warm-up/cosine, validation, resumable checkpoints."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from glscl_index.errors import CheckpointError
from glscl_index.eval.evaluate import EvalReport, evaluate
from glscl_index.model.checkpoint import read_checkpoint_config
from glscl_index.model.glscl import GLSCL
from glscl_index.model.losses import LossTerms
from glscl_index.train import distributed, state
from glscl_index.train.augment import ClipAugment
from glscl_index.train.config import TrainConfig
from glscl_index.train.frames import ClipFrames
from glscl_index.train.optim import build_optimizer, build_scheduler, gradient_clip
from glscl_index.train.step import BatchEncoder, batch_loss

LAST_DIR = "last"
BEST_DIR = "best"


@dataclass
class TrainData:
    """Training pairs: ``tokens`` int64 ``[P, L]`` captions, ``pair_clip`` int64 ``[P]`` their clip in ``frames``."""

    frames: ClipFrames
    tokens: torch.Tensor
    pair_clip: np.ndarray


@dataclass
class EvalData:
    """Validation captions ``texts [C]`` and the clip of each, ``caption_clip`` int64 ``[C]``."""

    frames: ClipFrames
    texts: list[str]
    caption_clip: np.ndarray


@dataclass
class StepLog:
    step: int  # 1-based, counted over the whole run
    total_steps: int
    epoch: int  # 0-based
    loss: float
    contrastive: float
    diversity: float
    consistency: float
    lr_new: float
    lr_clip: float


@dataclass
class TrainResult:
    steps: int
    last_dir: Path
    best_dir: Path
    best_r1: float | None  # text-to-video R@1 on the validation split, None without one
    best_epoch: int | None
    # One entry per validation (each epoch end, each --eval-every), with the epoch's mean losses so far.
    history: list[dict] = field(default_factory=list)


class TrainCallbacks(Protocol):
    def on_start(self, total_steps: int, start_step: int) -> None: ...
    def on_step(self, log: StepLog) -> None: ...
    def on_epoch(self, epoch: int, report: EvalReport | None, is_best: bool) -> None: ...


class _Silent:
    def on_start(self, total_steps: int, start_step: int) -> None:
        pass

    def on_step(self, log: StepLog) -> None:
        pass

    def on_epoch(self, epoch: int, report: EvalReport | None, is_best: bool) -> None:
        pass


def steps_per_epoch(num_pairs: int, batch_size: int) -> int:
    """Full batches per epoch (the ragged tail is dropped: a tiny last batch makes a noisy InfoNCE)."""
    return max(1, num_pairs // batch_size)


def epoch_batch(num_pairs: int, config: TrainConfig, epoch: int, index: int) -> np.ndarray:
    """Pair indices ``[B]`` of batch ``index`` of ``epoch``: a permutation seeded by (seed, epoch), so a
    resumed run sees exactly the batches a straight run would."""
    order = np.random.default_rng([config.seed, epoch]).permutation(num_pairs)
    size = min(config.batch_size, num_pairs)
    return order[index * size : (index + 1) * size]


def train(
    model: GLSCL,
    data: TrainData,
    config: TrainConfig,
    out_dir: Path,
    validation: EvalData | None = None,
    device: torch.device | str = "cpu",
    callbacks: TrainCallbacks | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train ``model`` in place; checkpoints go to ``out_dir/last`` and ``out_dir/best``.

    With ``resume`` and an existing ``out_dir/last``, training continues from
    its step with the same data order, schedule and random state.
    """
    callbacks = callbacks or _Silent()
    device = torch.device(device)
    rank = distributed.init_from_env()
    if model.zero_shot:
        raise CheckpointError("a zero-shot model has nothing to train; build it with trained=True")
    model.to(device).train()
    if config.freezes_clip:
        model.backbone.requires_grad_(False)
    optimizer = build_optimizer(model, config)
    per_epoch = steps_per_epoch(len(data.pair_clip), config.batch_size)
    total_steps = per_epoch * config.epochs
    scheduler = build_scheduler(optimizer, total_steps, config)
    amp_dtype = _amp_dtype(device, config)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    out_dir = Path(out_dir)
    progress = _start_state(out_dir, model, optimizer, scheduler, scaler, config, resume)
    augment = ClipAugment(config.augment, model.config.image_size) if config.augment else None
    encoder: torch.nn.Module = BatchEncoder(model)
    if distributed.active():
        encoder = DistributedDataParallel(encoder, device_ids=[rank.local_rank] if device.type == "cuda" else None)
    callbacks.on_start(total_steps, progress.step)
    history: list[dict] = []
    epoch_logs: list[StepLog] = []  # this epoch's steps (run in this process), for its mean losses
    step = progress.step
    while step < total_steps:
        epoch, index = divmod(step, per_epoch)
        batch = epoch_batch(len(data.pair_clip), config, epoch, index)
        frames, counts = _batch_frames(data, batch, augment, config.seed, step, rank)
        terms = _train_step(
            encoder, model, data, batch, frames, counts, optimizer, config, amp_dtype, scaler, device, rank
        )
        scheduler.step()
        step += 1
        log = _log(step, total_steps, epoch, terms, optimizer, device)
        epoch_logs.append(log)
        callbacks.on_step(log)
        end_of_epoch = step % per_epoch == 0
        if end_of_epoch or (config.eval_every_steps and step % config.eval_every_steps == 0):
            report, is_best = _validate(model, epoch, step, validation, device, progress, out_dir, rank)
            history.append({
                "epoch": epoch, "step": step, "loss": mean_losses(epoch_logs),
                "validation": report and report.to_dict(), "best": is_best,
            })
            if end_of_epoch:
                callbacks.on_epoch(epoch, report, is_best)
                epoch_logs = []
        if end_of_epoch or (config.save_every_steps and step % config.save_every_steps == 0):
            progress.step = step
            _save_last(out_dir, model, optimizer, scheduler, scaler, progress, rank)
    best_dir = out_dir / BEST_DIR if validation is not None else out_dir / LAST_DIR
    return TrainResult(
        steps=step, last_dir=out_dir / LAST_DIR, best_dir=best_dir,
        best_r1=progress.best_r1 if validation is not None else None,
        best_epoch=progress.best_epoch if validation is not None else None,
        history=history,
    )


def mean_losses(logs: list[StepLog]) -> dict[str, float]:
    """Means over ``logs`` (one epoch's steps) of the total loss and its three terms (InfoNCE, intra-diversity,
    inter-consistency), and how many steps they cover."""
    names = {"total": "loss", "contrastive": "contrastive", "diversity": "diversity", "consistency": "consistency"}
    means = {key: float(np.mean([getattr(log, name) for log in logs])) for key, name in names.items()}
    return {**means, "steps": len(logs)}


def _amp_dtype(device: torch.device, config: TrainConfig) -> torch.dtype | None:
    if device.type != "cuda" or not config.mixed_precision:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _start_state(out_dir, model, optimizer, scheduler, scaler, config, resume) -> state.Resumable:
    fresh = state.Resumable(
        step=0, best_r1=-1.0, best_epoch=-1, optimizer={}, scheduler={}, scaler={}, rng={},
        train_config=config.to_dict(),
    )
    source = state.existing(out_dir / LAST_DIR) if resume else None
    if source is None:
        return fresh
    # Settings without tensors of their own (tau, lambda, pooling, T, L) would load and go on silently.
    if read_checkpoint_config(source)[0].fingerprint_dict() != model.config.fingerprint_dict():
        raise CheckpointError(
            f"{source} holds a model of another shape; resume with the same model options, or choose a new "
            f"--output (or --restart)"
        )
    saved = state.load_resumable(source, model)
    if saved.train_config != config.to_dict():
        raise CheckpointError(
            f"{source} was trained with other settings; resume with the same settings or choose a new --output"
        )
    optimizer.load_state_dict(saved.optimizer)
    scheduler.load_state_dict(saved.scheduler)
    if saved.scaler:
        scaler.load_state_dict(saved.scaler)
    state.restore_rng(saved.rng)
    return saved


def _batch_frames(
    data, batch, augment: ClipAugment | None, seed: int, step: int, rank
) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of the batch: uint8 clips ``[B, T, S, S, 3]`` and real frames per clip ``[B]``.

    Each clip is augmented from a seed fixed by (run seed, step, its position in the global
    batch): a resumed run, and the same batch split across ranks, augment exactly alike.
    """
    shares = np.array_split(np.arange(len(batch)), rank.world_size)
    positions = shares[rank.rank]
    frames, counts = data.frames.batch(data.pair_clip[batch[positions]])
    if augment is None:
        return frames, counts
    return augment(frames, counts, seeds=(seed * 1_000_003 + step) * 4096 + positions), counts


def _train_step(
    encoder, model, data, batch, frames, counts, optimizer, config, amp_dtype, scaler, device, rank
) -> LossTerms:
    local = np.array_split(batch, rank.world_size)[rank.rank]
    tokens = data.tokens[local].to(device)
    video_ids = torch.from_numpy(data.pair_clip[local]).to(device)
    autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    with autocast:
        video, text = encoder(torch.from_numpy(frames).to(device), torch.from_numpy(counts).to(device), tokens)
        terms = batch_loss(model, video, text, video_ids, config.loss)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms.total).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), gradient_clip(config, rank.world_size))
    scaler.step(optimizer)
    scaler.update()
    with torch.no_grad():
        # CLIP's learned temperature may not exceed 100 (log 100 on the parameter).
        model.backbone.logit_scale.clamp_(0, math.log(config.loss.logit_scale_max))
    return terms


def _log(step, total_steps, epoch, terms: LossTerms, optimizer, device) -> StepLog:
    lrs = {group["name"]: group["lr"] for group in optimizer.param_groups}
    return StepLog(
        step=step, total_steps=total_steps, epoch=epoch,
        loss=distributed.all_reduce_mean(float(terms.total.detach()), device),
        contrastive=float(terms.contrastive.detach()),
        diversity=float(terms.diversity.detach()),
        consistency=float(terms.consistency.detach()),
        lr_new=lrs.get("new", lrs.get("new-no-decay", 0.0)),
        lr_clip=lrs.get("clip", lrs.get("clip-no-decay", 0.0)),
    )


def _validate(model, epoch, step, validation, device, progress, out_dir, rank) -> tuple[EvalReport | None, bool]:
    """Evaluate on the validation split (main rank) and keep best/ by text-to-video R@1: (report, is_best)."""
    if validation is None or not rank.is_main:
        return None, False
    report = evaluate(model, validation.frames, validation.texts, validation.caption_clip, device)
    r1 = report.text_to_video["R@1"]
    if r1 <= progress.best_r1:
        return report, False
    progress.best_r1, progress.best_epoch = r1, epoch
    metrics = {"epoch": epoch, "step": step, **report.to_dict()}
    state.save_directory(out_dir / BEST_DIR, model, {state.METRICS_FILE: metrics})
    return report, True


def _save_last(out_dir, model, optimizer, scheduler, scaler, progress: state.Resumable, rank) -> None:
    if not rank.is_main:
        return
    progress.optimizer = optimizer.state_dict()
    progress.scheduler = scheduler.state_dict()
    progress.scaler = scaler.state_dict()
    progress.rng = state.rng_state()
    state.save_resumable(out_dir / LAST_DIR, model, progress)
