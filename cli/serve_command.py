"""`glscl serve`: the search page, a JSON API and a Python-free way to browse results, from one warm process."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from cli.options import CheckpointOption, DeviceOption, IndexOption, ModelOption, PretrainedOption, index_dir


def serve(
    index: Path = IndexOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but loopback needs --token."),
    port: int = typer.Option(8765, min=0, max=65535, help="TCP port."),
    token: str = typer.Option(
        None, envvar="GLSCL_SERVE_TOKEN", help="Secret every request must carry (Authorization: Bearer, or ?token=)."
    ),
    thumbnails: Path = typer.Option(
        None, "--thumbnail-cache", help="Folder for cached thumbnails [default: ~/.cache/glscl/thumbnails].",
        show_default=False,
    ),
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    device: str = DeviceOption,
) -> None:
    """Serve a search page (thumbnails, in-page playback) and a JSON API at http://HOST:PORT/ (API docs: /docs).

    The model and the index stay loaded; a new generation committed by `glscl index` is picked up
    without a restart.
    """
    from glscl_index.serve.security import check_bind

    check_bind(host, token)
    # Imported here, not at start-up: torch, the model and the web stack take seconds (see cli/app.py).
    import uvicorn

    from glscl_index.errors import IndexNotFoundError
    from glscl_index.live_index import LiveIndex
    from glscl_index.serve import create_app
    from glscl_index.serve.thumbnails import ThumbnailCache, default_cache_dir

    live = LiveIndex(index_dir(index), checkpoint, model, pretrained, device)
    try:
        live.current()  # load the model now, so the first search is warm and a model problem stops here
    except IndexNotFoundError as exc:
        print(f"glscl: warning: {exc}; serving anyway, searches answer 503 until an index exists", file=sys.stderr)
    app = create_app(live, ThumbnailCache(thumbnails or default_cache_dir()), token)
    print(f"glscl: serving {live.root} at http://{host}:{port}/", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level="warning")
