"""``glscl``: a thin Typer layer over the glscl_index library.

Each command parses its options, calls one library function and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import run_with_clean_errors
from cli.options import CheckpointOption, DeviceOption, ModelOption, PretrainedOption, model_spec
from glscl_index.model.checkpoint import (
    create_random_model,
    load_model,
    model_fingerprint,
    resolve_device,
    save_checkpoint,
)
from glscl_index.model.official_import import import_official_state_dict, read_official_state_dict

app = typer.Typer(
    help="Natural-language search over your own videos with GLSCL.\n\n"
    "Index a folder with `glscl index ./videos`, then `glscl search \"a man cooking pasta\"`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
checkpoint_app = typer.Typer(help="Create and convert GLSCL checkpoints.", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")
console = Console()


@app.command()
def info(
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    device: str = DeviceOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show the model: architecture, D, K, mode (trained or zero-shot), fingerprint, device."""
    glscl = load_model(model_spec(checkpoint, model, pretrained))
    config = glscl.config
    details = {
        "architecture": config.clip_model,
        "source": checkpoint or (pretrained or "random weights"),
        "mode": config.mode,
        "embed_dim": config.embed_dim,
        "num_queries": config.concepts,
        "num_frames": config.num_frames,
        "max_words": config.max_words,
        "image_size": config.image_size,
        "score": "sim1 + %g * sim2" % config.local_weight if config.trained else "sim1 (zero-shot: no trained GLSCL modules)",
        "fingerprint": model_fingerprint(glscl),
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


def main() -> None:
    run_with_clean_errors(app)


if __name__ == "__main__":
    main()
