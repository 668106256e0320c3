"""`glscl info` and `glscl checkpoint ...`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.options import CheckpointOption, DeviceOption, IndexOption, ModelOption, PretrainedOption, index_dir
from glscl_index.model.checkpoint import create_random_model, load_model_and_fingerprint, resolve_device, save_checkpoint
from glscl_index.model.official_import import import_official_state_dict, read_official_state_dict
from glscl_index.model_source import resolve_spec

checkpoint_app = typer.Typer(help="Create and convert GLSCL checkpoints.", no_args_is_help=True)
console = Console()


def info(
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    index: Path = IndexOption,
    device: str = DeviceOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the model: architecture, D, K, mode (trained or zero-shot), fingerprint, device.

    Without model options it shows the model the index was built with.
    """
    spec = resolve_spec(index_dir(index), checkpoint, model, pretrained)
    glscl, digest = load_model_and_fingerprint(spec)
    config = glscl.config
    details = {
        "architecture": config.clip_model,
        "source": spec.checkpoint or (spec.pretrained or "random weights"),
        "mode": config.mode,
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
    if as_json:
        print(json.dumps(details, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key, value in details.items():
        table.add_row(f"[bold]{key}[/bold]", str(value))
    console.print(table)


@checkpoint_app.command("random")
def checkpoint_random(
    out: Path = typer.Argument(..., help="Directory to write the checkpoint into."),
    model: str = typer.Option("ViT-B-32", "--model", "-m", help="open_clip architecture name or JSON model config."),
    trained: bool = typer.Option(True, "--trained/--zero-shot", help="Include (random) temporal encoder and LIM."),
    seed: int = typer.Option(0, help="Random seed."),
    decoder_ffn: int = typer.Option(2048, help="LIM decoder feed-forward width (small for tiny test models)."),
) -> None:
    """Write a random-weight checkpoint of any architecture, for offline smoke tests."""
    glscl = create_random_model(model, trained=trained, seed=seed, decoder_ffn=decoder_ffn)
    digest = save_checkpoint(glscl, out)
    console.print(f"wrote {glscl.config.mode} random checkpoint {out} (fingerprint {digest})")


@checkpoint_app.command("import-official")
def checkpoint_import_official(
    source: Path = typer.Argument(..., help="State dict saved by the official GLSCL code (pytorch_model.bin)."),
    out: Path = typer.Argument(..., help="Directory to write our checkpoint into."),
    model: str = typer.Option(
        "", "--model", "-m", help="open_clip architecture name or JSON config [default: inferred from the weights]."
    ),
) -> None:
    """Convert a checkpoint trained with the official GLSCL code into a glscl checkpoint."""
    glscl = import_official_state_dict(read_official_state_dict(source), clip_model=model)
    digest = save_checkpoint(glscl, out)
    console.print(f"imported {source} -> {out} (fingerprint {digest})")
