"""`glscl info` and `glscl checkpoint ...`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
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
from cli.options import CheckpointOption, DeviceOption, IndexOption, ModelOption, PretrainedOption, index_dir
from glscl_index.errors import IndexNotFoundError

if TYPE_CHECKING:
    from glscl_index.store.stats import IndexStats

checkpoint_app = typer.Typer(help="Create and convert GLSCL checkpoints.", no_args_is_help=True)
console = Console()


def info(
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    index: Path = IndexOption,
    device: str = DeviceOption,
    failures: bool = typer.Option(
        False, "--failures", help="Also list the files that could not be indexed, with the reason."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the index: its model (architecture, D, K, mode, fingerprint) and its units, videos and failed files.

    Reads the index's manifest and catalog only; with model options (or without an
    index) the model is loaded to show its fingerprint and device.
    """
    from glscl_index.store.stats import index_stats  # pyarrow: imported when the command runs, not for --help

    directory = index_dir(index)
    explicit = checkpoint is not None or model is not None or pretrained is not None
    try:
        stats = index_stats(directory)
    except IndexNotFoundError:
        if failures:
            raise
        stats = None
    details = (
        _loaded_model_details(directory, checkpoint, model, pretrained, device) if explicit or stats is None else {}
    )
    if stats is not None:
        details = {**stats.to_dict(failures=failures and as_json), **details}
    if as_json:
        print(json.dumps(details, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in details.items():
        if key == "random_weights":
            continue  # shown with the mode
        shown = f"{value} (random weights)" if key == "mode" and details.get("random_weights") else value
        table.add_row(f"[bold]{key}[/bold]", escape(_shown(key, shown)))
    console.print(table)
    if failures and stats is not None:
        _print_failures(stats)


def _shown(key: str, value: object) -> str:
    if key == "updated_at":
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(value)))
    return ", ".join(value) if isinstance(value, list) else str(value)


def _loaded_model_details(
    directory: Path, checkpoint: str | None, model: str | None, pretrained: str | None, device: str
) -> dict:
    # torch and open_clip are loaded only here (seconds), not for the index's own record.
    from glscl_index.device import resolve_device
    from glscl_index.index_model import load_index_model, resolve_spec

    spec = resolve_spec(directory, checkpoint, model, pretrained)
    glscl, digest = load_index_model(directory, checkpoint, model, pretrained)
    config = glscl.config
    return {
        "architecture": config.clip_model,
        "source": spec.checkpoint or (spec.pretrained or "random weights"),
        "mode": config.mode,
        "random_weights": config.random_weights,
        "embed_dim": config.embed_dim,
        "num_queries": config.concepts,
        "num_frames": config.num_frames,
        "max_words": config.max_words,
        "image_size": config.image_size,
        "score": f"sim1 + {config.local_weight:g} * sim2"
        if config.trained
        else "sim1 (zero-shot: no trained GLSCL modules)",
        "fingerprint": digest,
        "device": str(resolve_device(device)),
    }


def _print_failures(stats: IndexStats) -> None:
    if not stats.failures:
        console.print("no failed files")
        return
    table = Table(
        "failed file", "reason", title=f"{stats.failed_files} file(s) could not be indexed", title_justify="left"
    )
    for failure in stats.failures:
        table.add_row(escape(failure.path), escape(failure.reason))
    console.print(table)


@checkpoint_app.command("random")
def checkpoint_random(
    out: Path = typer.Argument(..., help="Directory to write the checkpoint into."),
    model: str = typer.Option("ViT-B-32", "--model", "-m", help="open_clip architecture name or JSON model config."),
    trained: bool = typer.Option(True, "--trained/--zero-shot", help="Include (random) temporal encoder and LIM."),
    seed: int = typer.Option(0, help="Random seed."),
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
) -> None:
    """Write a random-weight checkpoint of any architecture and shape, for offline smoke tests."""
    from glscl_index.model.checkpoint import save_checkpoint
    from glscl_index.model.factory import create_random_model

    shape = model_shape(
        num_frames=frames, max_words=max_words, temporal_layers=temporal_layers, num_queries=num_queries,
        decoder_layers=lim_layers, decoder_heads=lim_heads, decoder_ffn=lim_ffn, frame_pooling=frame_pooling,
        temperature=tau, local_weight=local_weight,
    )
    glscl = create_random_model(model, trained=trained, seed=seed, **shape)
    digest = save_checkpoint(glscl, out)
    console.print(f"wrote {glscl.config.mode} random checkpoint {out} (fingerprint {digest})")


@checkpoint_app.command("import-official")
def checkpoint_import_official(
    source: Path = typer.Argument(..., help="State dict saved by the official GLSCL code (pytorch_model.bin)."),
    out: Path = typer.Argument(..., help="Directory to write our checkpoint into."),
    model: str = typer.Option(
        "",
        "--model",
        "-m",
        help=escape("open_clip architecture name or JSON config [default: inferred from the weights]."),
    ),
) -> None:
    """Convert a checkpoint trained with the official GLSCL code into a glscl checkpoint."""
    from glscl_index.model.checkpoint import save_checkpoint
    from glscl_index.model.official_import import import_official_state_dict, read_official_state_dict

    glscl = import_official_state_dict(read_official_state_dict(source), clip_model=model)
    digest = save_checkpoint(glscl, out)
    console.print(f"imported {source} -> {out} (fingerprint {digest})")
