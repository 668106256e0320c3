"""`glscl train` and `glscl eval`: the training and evaluation jobs behind a thin layer of options."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cli.model_shape import (
    FramePoolingOption,
    FramesOption,
    LambdaOption,
    LimFfnOption,
    LimHeadsOption,
    LimLayersOption,
    MaxWordsOption,
    NumQueriesOption,
    TauOption,
    TemporalLayersOption,
    model_shape,
)
from cli.options import CheckpointOption, DeviceOption, ModelOption, PretrainedOption
from glscl_index.data import READERS
from glscl_index.errors import DatasetError
from glscl_index.video.decode_config import DecodeConfig

# torch and the training/evaluation pipelines are imported inside the commands (see cli/app.py).
if TYPE_CHECKING:
    from glscl_index.eval.evaluate import EvalReport
    from glscl_index.model.spec import ModelSpec
    from glscl_index.train.config import TrainConfig
    from glscl_index.train.loop import StepLog
    from pipelines.train import DatasetSource

DATASETS = ", ".join(READERS)
DatasetOption = typer.Option("generic", "--dataset", "-d", help=f"Dataset layout: {DATASETS}.")
AnnotationsOption = typer.Option(
    ..., "--annotations", "-a",
    help="Annotation folder of the dataset (for generic: the JSONL/CSV file with video, caption[, start, end, split]).",
)
VideosOption = typer.Option(..., "--videos", "-v", help="Folder the dataset's videos are looked up in.")
SkipMissingOption = typer.Option(
    False,
    "--skip-missing",
    help="Leave out clips whose video is missing or does not decode (counted) instead of failing.",
)
WorkersOption = typer.Option(DecodeConfig().workers, help="Decoding worker processes.")
OutputOption = typer.Option(
    ..., "--output", "-o", help="Run folder: last/ (resume point) and best/ checkpoints go here."
)
ViaIndexOption = typer.Option(
    None, "--via-index",
    help="Also index the split's videos into this folder and rank through glscl search's two-stage path.",
)
# RUN/frame-cache is pipelines.train.FRAME_CACHE_DIR, spelled out so that --help does not import torch.
CacheOption = typer.Option(None, "--cache", help="Keep decoded frames here for the next run (e.g. RUN/frame-cache).")


def _spec(checkpoint: str | None, model: str | None, pretrained: str | None) -> ModelSpec:
    """No index to remember a model here: without options, the default CLIP weights."""
    from glscl_index.index_model import explicit_spec
    from glscl_index.model.spec import ModelSpec

    return explicit_spec(checkpoint, model, pretrained) or ModelSpec()


def _dataset(name: str, annotations: Path, videos: Path, skip_missing: bool) -> DatasetSource:
    from pipelines.train import DatasetSource

    if name.lower() not in READERS:
        raise DatasetError(f"unknown dataset {name!r} (known: {DATASETS})")
    return DatasetSource(name.lower(), annotations, videos, skip_missing)


def train(
    output: Path = OutputOption,
    dataset: str = DatasetOption,
    annotations: Path = AnnotationsOption,
    videos: Path = VideosOption,
    split: str = typer.Option("train", help="Split to train on."),
    val_split: str = typer.Option(
        "", "--val-split", help="Split to validate on after each epoch (keeps best/ by R@1); '' for none."
    ),
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    recipe_name: str = typer.Option(
        "paper",
        "--recipe",
        help="paper: the paper's settings; official: the official code's MSR-VTT run (beta 0.02, its cosine, decay "
        "on all but biases, clipping x GPUs, CLIP towers frozen). The table is in docs/training.md.",
    ),
    epochs: int = typer.Option(5, help="Passes over the training captions."),
    batch_size: int = typer.Option(128, help="Caption-video pairs per step (global, across GPUs)."),
    lr_new: float = typer.Option(1e-4, help="Learning rate of the temporal encoder and LIM."),
    lr_clip: float = typer.Option(
        None,
        help="Learning rate of the CLIP towers; 0 freezes them [default: 1e-7, 0 with --recipe official].",
        show_default=False,
    ),
    weight_decay: float = typer.Option(0.2, help="AdamW weight decay (not on biases, norms, embeddings)."),
    warmup: float = typer.Option(0.1, help="Fraction of steps of linear warm-up before the cosine decay."),
    grad_clip: float = typer.Option(1.0, help="Maximum gradient norm."),
    frames: int = FramesOption,
    max_words: int = MaxWordsOption,
    temporal_layers: int = TemporalLayersOption,
    num_queries: int = NumQueriesOption,
    lim_layers: int = LimLayersOption,
    lim_heads: int = LimHeadsOption,
    lim_ffn: int = LimFfnOption,
    frame_pooling: str = FramePoolingOption,
    tau: float = TauOption,
    local_weight: float = LambdaOption,
    alpha: float = typer.Option(
        None, help=escape("Weight of the intra-diversity loss [default: 1e-4]."), show_default=False
    ),
    beta: float = typer.Option(
        None,
        help=escape("Weight of the inter-consistency loss [default: 5e-3, 0.02 with --recipe official]."),
        show_default=False,
    ),
    seed: int = typer.Option(0, help="Seed of the data order and initialisation."),
    augment: str = typer.Option(
        "rand-m7-n4-mstd0.5-inc1",
        "--augment",
        help="RandAugment of training frames, the same operations on every frame of a clip (timm policy, the "
        "official one by default); '' for none.",
    ),
    save_every: int = typer.Option(0, help="Also save last/ every N steps (0: at each epoch end)."),
    eval_every: int = typer.Option(
        0,
        help="Also validate on --val-split every N steps and keep the best (the official code: 150 on the test split).",
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Ignore an existing last/ in --output and start from step 0."
    ),
    skip_missing: bool = SkipMissingOption,
    device: str = DeviceOption,
    workers: int = WorkersOption,
    log_every: int = typer.Option(
        50, help="Off a terminal (a log file, nohup): print the losses and lr every N steps and at the last (0: never)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON document."),
) -> None:
    """Train GLSCL on a captioned dataset (reference recipe: AdamW, warm-up + cosine, 5 epochs).

    Starts from CLIP weights (--model/--pretrained) or a GLSCL checkpoint, and
    resumes from OUTPUT/last when it exists. The model-shape options (--frames ...
    --lambda) shape a new model; a trained checkpoint keeps its own. The checkpoints in
    OUTPUT/best and OUTPUT/last index directly: `glscl index ./videos --checkpoint OUTPUT/best`.
    Multi-GPU: `torchrun --nproc-per-node N -m cli.app train ...`.
    """
    from glscl_index.errors import InvalidOptionError
    from pipelines.train import TrainJobConfig, run_train

    if log_every < 0:
        raise InvalidOptionError(f"--log-every must be >= 0 (0: never), got {log_every}")
    overrides = model_shape(
        num_frames=frames, max_words=max_words, temporal_layers=temporal_layers, num_queries=num_queries,
        decoder_layers=lim_layers, decoder_heads=lim_heads, decoder_ffn=lim_ffn, frame_pooling=frame_pooling,
        temperature=tau, local_weight=local_weight,
    )
    config = TrainJobConfig(
        dataset=_dataset(dataset, annotations, videos, skip_missing),
        output=output,
        model=_spec(checkpoint, model, pretrained),
        model_overrides=overrides,  # refused for a trained checkpoint, whose architecture is fixed
        train=_train_config(
            recipe_name, {"diversity_weight": alpha, "consistency_weight": beta},
            epochs=epochs, batch_size=batch_size, lr_new=lr_new, weight_decay=weight_decay,
            warmup_fraction=warmup, grad_clip=grad_clip, seed=seed, save_every_steps=save_every, augment=augment,
            eval_every_steps=eval_every,
            **({} if lr_clip is None else {"lr_clip": lr_clip}),
        ),
        train_split=split,
        val_split=val_split,
        device=device,
        decode=DecodeConfig(workers=workers),
        resume=not restart,
    )
    console = Console(stderr=True)
    display = TrainDisplay(
        console, live=console.is_terminal and not quiet and not as_json, quiet=quiet or as_json, log_every=log_every
    )
    try:
        result, training, _validation = run_train(config, callbacks=display, on_video=display.decoded)
    finally:
        display.stop()
    if as_json:
        print(json.dumps({
            "output": str(output), "steps": result.steps, "last": str(result.last_dir), "best": str(result.best_dir),
            "best_r1": result.best_r1, "best_epoch": result.best_epoch, "train_clips": len(training.split.clips),
            "skipped": training.split.skipped, "history": result.history,
        }, indent=2))
    elif not quiet:
        best = (
            f", best text-to-video R@1 {result.best_r1:.1f} at epoch {result.best_epoch + 1}"
            if result.best_r1 is not None
            else ""
        )
        Console().print(
            f"trained {result.steps} steps on {len(training.split.clips)} clips"
            + (f" ({training.split.skipped} skipped)" if training.split.skipped else "")
            + f"{best}\ncheckpoint: {result.best_dir}  (glscl index PATH --checkpoint {result.best_dir})"
        )


def _train_config(name: str, loss_weights: dict[str, float | None], **settings) -> TrainConfig:
    """The recipe ``name`` with the options given: ``settings`` (TrainConfig fields) and the loss weights
    that are not None (LossConfig fields; an explicit --beta beats the recipe's)."""
    from glscl_index.errors import InvalidOptionError
    from glscl_index.train.config import RECIPES, recipe

    if name not in RECIPES:
        raise InvalidOptionError(f"--recipe {name}: use one of {', '.join(RECIPES)}")
    weights = {field: value for field, value in loss_weights.items() if value is not None}
    for field, value in weights.items():
        if not value >= 0:
            option = "--alpha" if field == "diversity_weight" else "--beta"
            raise InvalidOptionError(f"{option} must be >= 0, got {value:g}")
    try:
        config = recipe(name, **settings)
    except ValueError as exc:
        raise InvalidOptionError(f"invalid training settings: {exc}") from exc
    return replace(config, loss=replace(config.loss, **weights))


class TrainDisplay:
    """Rich progress for training: decoding, then steps with the three loss terms.

    Off a terminal (``live`` False: a log file, nohup) and not ``quiet``, one plain line every
    ``log_every`` steps and at the last step instead of the bar.
    """

    def __init__(self, console: Console, live: bool, quiet: bool, log_every: int = 50):
        self.console = console
        self.live = live
        self.quiet = quiet
        self.log_every = log_every
        self.bar = Progress(
            TextColumn("[bold]{task.description}[/bold]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console, transient=True,
        )
        self.decode_task = None
        self.train_task = None

    def decoded(self) -> None:
        if not self.live:
            return
        if self.decode_task is None:
            self.bar.start()
            self.decode_task = self.bar.add_task("decoding videos", total=None, info="")
        self.bar.update(self.decode_task, advance=1)

    def on_start(self, total_steps: int, start_step: int) -> None:
        if start_step and not self.quiet:
            self.console.print(f"resuming at step {start_step} of {total_steps}")
        if self.live:
            if self.decode_task is not None:
                self.bar.remove_task(self.decode_task)
            else:
                self.bar.start()
            self.train_task = self.bar.add_task("training", total=total_steps, completed=start_step, info="")

    def on_step(self, log: StepLog) -> None:
        info = (
            f"epoch {log.epoch + 1}  loss {log.loss:.4f} (InfoNCE {log.contrastive:.4f}, "
            f"diversity {log.diversity:.2e}, consistency {log.consistency:.2e})  lr {log.lr_new:.1e}"
        )
        if self.train_task is not None:
            self.bar.update(self.train_task, completed=log.step, info=info)
        elif not self.live and not self.quiet and self.log_every and (
            log.step % self.log_every == 0 or log.step == log.total_steps
        ):
            self.console.print(
                f"step {log.step}/{log.total_steps}  {info}", markup=False, highlight=False, soft_wrap=True
            )

    def on_epoch(self, epoch: int, report: EvalReport | None, is_best: bool) -> None:
        if self.quiet:
            return
        text = f"epoch {epoch + 1} done"
        if report is not None:
            t2v = report.text_to_video
            text += f": val R@1 {t2v['R@1']:.1f} R@5 {t2v['R@5']:.1f} R@10 {t2v['R@10']:.1f}" + (
                " (best)" if is_best else ""
            )
        self.console.print(text)

    def stop(self) -> None:
        if self.live:
            self.bar.stop()


def evaluate(
    dataset: str = DatasetOption,
    annotations: Path = AnnotationsOption,
    videos: Path = VideosOption,
    split: str = typer.Option("test", help="Split to evaluate."),
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    via_index: Path = ViaIndexOption,
    cache: Path = CacheOption,
    skip_missing: bool = SkipMissingOption,
    device: str = DeviceOption,
    workers: int = WorkersOption,
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON document."),
) -> None:
    """Text-to-video and video-to-text retrieval metrics (R@1/5/10, MdR, MnR) of a model on a dataset split."""
    from pipelines.evaluate import EvalJobConfig, run_eval

    config = EvalJobConfig(
        dataset=_dataset(dataset, annotations, videos, skip_missing),
        split=split,
        model=_spec(checkpoint, model, pretrained),
        device=device,
        decode=DecodeConfig(workers=workers),
        cache_dir=cache,
        via_index=via_index,
    )
    result = run_eval(config)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    table = Table("direction", "R@1", "R@5", "R@10", "MdR", "MnR", title=f"{result.split_name}: "
                  f"{result.in_memory.queries} queries, {result.in_memory.videos} videos", title_justify="left")
    rows = [("text-to-video", result.in_memory.text_to_video), ("video-to-text", result.in_memory.video_to_text)]
    if result.via_index is not None:
        rows.append(("text-to-video via index", result.via_index.text_to_video))
    for name, metrics in rows:
        table.add_row(name, *(f"{metrics[k]:.1f}" for k in ("R@1", "R@5", "R@10", "MdR", "MnR")))
    Console().print(table)
    if result.skipped:
        print(f"{result.skipped} clip(s) skipped (missing or undecodable videos)", file=sys.stderr)


__all__ = ["evaluate", "train"]
