"""``glscl``: a thin Typer layer over the glscl_index library.

Each command parses its options, calls one library function and prints.
Heavy modules (torch, open_clip, faiss, the pipelines) are imported inside the
command functions, so `glscl --help` and `glscl info` start in well under a second.
"""

from __future__ import annotations

import typer

from cli.check_command import check
from cli.errors import GlsclGroup, run_with_clean_errors
from cli.index_command import index
from cli.model_commands import checkpoint_app, info
from cli.search_command import search
from cli.serve_command import serve
from cli.train_commands import evaluate, train

app = typer.Typer(
    help="Natural-language search over your own videos with GLSCL.\n\n"
    "Index a folder with `glscl index ./videos`, then `glscl search \"a man cooking pasta\"`.",
    no_args_is_help=True,
    cls=GlsclGroup,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(index)
app.command()(search)
app.command()(info)
app.command()(train)
app.command(name="eval")(evaluate)
app.command()(check)
app.command()(serve)
app.add_typer(checkpoint_app, name="checkpoint")


def main() -> None:
    run_with_clean_errors(app)


if __name__ == "__main__":
    main()
