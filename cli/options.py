"""Options shared by several commands (model selection, index location, device).

Help texts go through rich markup, where "[default: ...]" would be a tag and vanish: they are escaped.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape


def default_index_dir() -> Path:
    """$GLSCL_INDEX, else $XDG_DATA_HOME/glscl/index, else ~/.local/share/glscl/index."""
    if os.environ.get("GLSCL_INDEX"):
        return Path(os.environ["GLSCL_INDEX"])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "glscl" / "index"


def index_dir(value: Path | None) -> Path:
    return value if value is not None else default_index_dir()


IndexOption = typer.Option(
    None,
    "--index",
    "-i",
    help=escape(
        "Index directory [default: $GLSCL_INDEX, else $XDG_DATA_HOME/glscl/index or ~/.local/share/glscl/index]."
    ),
    show_default=False,
)
CheckpointOption = typer.Option(
    None, "--checkpoint", "-c", envvar="GLSCL_CHECKPOINT",
    help="Trained GLSCL checkpoint directory (config.json + model.safetensors). Overrides --model/--pretrained.",
)
ModelOption = typer.Option(
    None,
    "--model",
    "-m",
    envvar="GLSCL_MODEL",
    help=escape(
        "open_clip architecture name or JSON model config, zero-shot mode [default: the index's model, else ViT-B-32]."
    ),
)
PretrainedOption = typer.Option(
    None, "--pretrained", "-p", envvar="GLSCL_PRETRAINED",
    help=escape(
        "open_clip pretrained tag (downloaded once), a local weights file, or '' for random weights "
        "[default: the index's weights, else openai]."
    ),
)
DeviceOption = typer.Option("auto", "--device", help="auto (GPU when present), cpu or cuda.")
