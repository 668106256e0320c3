"""The model-shape options of a new model, shared by `glscl train` and `glscl checkpoint random`.

Each option is a GLSCLConfig field (docs/architecture.md §2); left out, the field keeps its default.
"""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.markup import escape

from glscl_index.errors import InvalidOptionError
from glscl_index.model.config import GLSCLConfig  # a plain dataclass: no torch for --help

DEFAULTS = GLSCLConfig()

# option -> GLSCLConfig field
OPTION_FIELDS = {
    "--frames": "num_frames",
    "--max-words": "max_words",
    "--temporal-layers": "temporal_layers",
    "--num-queries": "num_queries",
    "--lim-layers": "decoder_layers",
    "--lim-heads": "decoder_heads",
    "--lim-ffn": "decoder_ffn",
    "--frame-pooling": "frame_pooling",
    "--tau": "temperature",
    "--lambda": "local_weight",
}


def _option(name: str, text: str, *aliases: str) -> Any:
    default = getattr(DEFAULTS, OPTION_FIELDS[name])
    return typer.Option(None, name, *aliases, help=escape(f"{text} [default: {default}]."), show_default=False)


FramesOption = _option("--frames", "T, frames sampled per clip (1 fps, at most T)")
MaxWordsOption = _option(
    "--max-words", "L, text tokens read per caption, start and end included (at most the text context_length)"
)
TemporalLayersOption = _option("--temporal-layers", "Blocks of the temporal encoder")
NumQueriesOption = _option("--num-queries", "K, learnable queries of the LIM (0 turns it off)")
LimLayersOption = _option("--lim-layers", "Decoder layers of the LIM")
LimHeadsOption = _option("--lim-heads", "Attention heads of the LIM decoder (must divide the width D)")
LimFfnOption = _option(
    "--lim-ffn", "Feed-forward width of the LIM decoder (small for tiny test models)", "--decoder-ffn"
)
FramePoolingOption = _option(
    "--frame-pooling", "attention: the GIM's text-conditioned frame weights; mean: plain mean of the frames"
)
TauOption = _option("--tau", "Temperature of the GIM's frame weights")
LambdaOption = _option("--lambda", "Weight of the local score: s = sim1 + lambda sim2")


def model_shape(**fields: Any) -> dict[str, Any]:
    """The GLSCLConfig fields given on the command line (None = left out), checked one by one.

    A value out of range is an InvalidOptionError naming its option; limits that depend on the
    architecture (max words against its text context) are checked when the model is built.
    """
    given = {name: value for name, value in fields.items() if value is not None}
    try:
        GLSCLConfig(**given)
    except ValueError as exc:
        message = str(exc)
        for option, name in OPTION_FIELDS.items():
            message = re.sub(rf"\b{name}\b", option, message)
        raise InvalidOptionError(message) from exc
    return given
