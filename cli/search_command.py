"""`glscl search QUERY`: two-stage retrieval with the exact GLSCL rerank."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.options import CheckpointOption, DeviceOption, IndexOption, ModelOption, PretrainedOption, index_dir
from glscl_index.errors import EmptyQueryError, InvalidOptionError
from glscl_index.results import result_document

if TYPE_CHECKING:
    from glscl_index.search import QueryResult

console = Console()
MIN_PATH_WIDTH = 24  # a path is never shortened below this, whatever the console width
notices = Console(stderr=True)


def search(
    query: list[str] = typer.Argument(None, help='What to look for, e.g. "a man cooking pasta".'),
    queries_file: str = typer.Option(
        None, "--queries", "-f", help="File with one query per line ('-' for stdin); prints JSON Lines."
    ),
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of videos to return."),
    index: Path = IndexOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    paths_only: bool = typer.Option(False, "--paths-only", help="Print one video path per line (for piping)."),
    exhaustive: bool = typer.Option(
        False, "--exhaustive", help="Score every unit exactly (no FAISS); for checking and small collections."
    ),
    candidates: int = typer.Option(
        0, help=escape("FAISS candidates per query [default: 20 x --top, at least 200]."), show_default=False
    ),
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    device: str = DeviceOption,
) -> None:
    """Search the index with natural language; best segment of each video, with timestamps.

    A query that starts with '-' goes after `--`: glscl search -- "-red circle".
    """
    _refuse_conflicts(query, queries_file, as_json, paths_only)
    texts = _read_queries(query, queries_file)
    # Imported here, not at start-up: torch and the model take seconds to load (see cli/app.py).
    from glscl_index.search import SearchConfig, open_searcher

    searcher = open_searcher(index_dir(index), checkpoint, model, pretrained, device)
    config = SearchConfig(k=k, candidates=candidates, exhaustive=exhaustive)
    results = searcher.search(texts, config)
    mode_note = (
        None if not searcher.model.zero_shot else "zero-shot mode: ranked by sim1 only (no trained GLSCL checkpoint)"
    )
    for result in results:
        for notice in result.notices:
            notices.print(f"notice: {notice}")
    if queries_file is not None:
        for result in results:
            print(json.dumps(result_document(result, searcher), ensure_ascii=False))
        return
    result = results[0]
    if paths_only:
        for hit in result.hits:
            print(hit.video_path)
    elif as_json:
        print(json.dumps(result_document(result, searcher), indent=2, ensure_ascii=False))
    else:
        if mode_note:
            notices.print(f"[yellow]{mode_note}[/yellow]")
        _print_table(result)


def _refuse_conflicts(query: list[str] | None, queries_file: str | None, as_json: bool, paths_only: bool) -> None:
    """Options that cannot both be honoured are refused rather than one being silently ignored."""
    if query and queries_file is not None:
        raise InvalidOptionError("give either a QUERY or --queries FILE, not both")
    if as_json and paths_only:
        raise InvalidOptionError("--json and --paths-only cannot be used together; pick one output format")
    if queries_file is not None and paths_only:
        raise InvalidOptionError("--queries always prints JSON Lines; --paths-only works with a single QUERY")


def _read_queries(query: list[str] | None, queries_file: str | None) -> list[str]:
    if queries_file is not None:
        try:
            stream = sys.stdin if queries_file == "-" else open(queries_file, encoding="utf-8")
        except OSError as exc:
            raise InvalidOptionError(f"cannot read queries from {queries_file}: {exc.strerror}") from exc
        try:
            with stream:
                lines = [line.strip() for line in stream]
        except UnicodeDecodeError as exc:
            raise InvalidOptionError(
                f"queries file {queries_file} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as UTF-8"
            ) from None
        texts = [line for line in lines if line]
        if not texts:
            raise EmptyQueryError(f"no queries in {queries_file}")
        return texts
    return [" ".join(query or [])]


def _print_table(result: QueryResult) -> None:
    if not result.hits:
        console.print("no videos in the index yet; run `glscl index PATH` first")
        return
    table = Table(title=result.query, title_justify="left")
    for name in ("#", "score", "video", "segment", "best frame"):
        table.add_column(name, no_wrap=True)
    rows = [
        (str(rank), f"{hit.score:.4f}", f"{_clock(hit.start_s)}–{_clock(hit.end_s)}", _clock(hit.best_frame_s))
        for rank, hit in enumerate(result.hits, start=1)
    ]
    # Rich would cut a long path at its end (the file name); the path is shortened here instead, in the middle,
    # to what the console leaves beside the other columns (their widths, 3 characters of borders per column).
    headings = ("#", "score", "segment", "best frame")
    others = sum(max(len(heading), *(len(row[i]) for row in rows)) for i, heading in enumerate(headings))
    offline = len(" (offline)") if any(hit.offline for hit in result.hits) else 0
    width = max(console.width - others - 16 - offline, MIN_PATH_WIDTH)
    for (rank, score, segment, frame), hit in zip(rows, result.hits, strict=True):
        table.add_row(rank, score, _video_cell(hit, width), segment, frame)
    console.print(table)


def _video_cell(hit, width: int) -> str:
    """The path, then the other paths with the same content, one per line, each at most ``width`` characters
    (cut in the middle); "(offline)" for an unmounted root."""
    cell = "\n".join(escape(shorten_middle(p, width)) for p in hit.paths or [hit.video_path])
    return cell + (" [dim](offline)[/dim]" if hit.offline else "")


def shorten_middle(path: str, width: int) -> str:
    """``path`` in at most ``width`` characters: its start, "…", and its end, which keeps the whole file name
    when it fits (a file name longer than ``width`` keeps its end, with the extension)."""
    if len(path) <= width:
        return path
    name = path.rsplit("/", 1)[-1]
    if len(name) + 2 > width:
        return "…" + path[len(path) - (width - 1) :]
    tail = max(len(name) + 1, (width - 1) // 2)  # the file name with its "/", or half the room if more is left
    return path[: width - 1 - tail] + "…" + path[len(path) - tail :]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
