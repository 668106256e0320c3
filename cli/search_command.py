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

if TYPE_CHECKING:
    from glscl_index.search import QueryResult

console = Console()
notices = Console(stderr=True)


def search(
    query: list[str] = typer.Argument(None, help="What to look for, e.g. \"a man cooking pasta\"."),
    queries_file: str = typer.Option(
        None, "--queries", "-f", help="File with one query per line ('-' for stdin); prints JSON Lines."
    ),
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of videos to return."),
    index: Path = IndexOption,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    paths_only: bool = typer.Option(False, "--paths-only", help="Print one video path per line (for piping)."),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Score every unit exactly (no FAISS); for checking and small collections."),
    candidates: int = typer.Option(0, help=escape("FAISS candidates per query [default: max(20k, 200)]."), show_default=False),
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
    mode_note = None if not searcher.model.zero_shot else "zero-shot mode: ranked by sim1 only (no trained GLSCL checkpoint)"
    for result in results:
        for notice in result.notices:
            notices.print(f"notice: {notice}")
    if queries_file is not None:
        for result in results:
            print(json.dumps(_result_json(result, searcher), ensure_ascii=False))
        return
    result = results[0]
    if paths_only:
        for hit in result.hits:
            print(hit.video_path)
    elif as_json:
        print(json.dumps(_result_json(result, searcher), indent=2, ensure_ascii=False))
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
            raise EmptyQueryError(f"cannot read queries from {queries_file}: {exc.strerror}") from exc
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


def _result_json(result: QueryResult, searcher) -> dict:
    return {
        "query": result.query,
        "truncated": result.truncated,
        "mode": searcher.model.config.mode,
        "index": str(searcher.reader.root),
        "generation": searcher.reader.manifest.generation,
        "results": [
            {
                "rank": rank,
                "path": hit.video_path,
                "paths": hit.paths,
                "offline": hit.offline,
                "video_id": hit.video_id,
                "score": round(hit.score, 6),
                "global_score": round(hit.global_score, 6),
                "local_score": None if hit.local_score is None else round(hit.local_score, 6),
                "segment": {"index": hit.segment_index, "start_s": round(hit.start_s, 3), "end_s": round(hit.end_s, 3)},
                "best_frame_s": round(hit.best_frame_s, 3),
            }
            for rank, hit in enumerate(result.hits, start=1)
        ],
    }


def _print_table(result: QueryResult) -> None:
    if not result.hits:
        console.print("no videos in the index yet; run `glscl index PATH` first")
        return
    table = Table("#", "score", "video", "segment", "best frame", title=result.query, title_justify="left")
    for rank, hit in enumerate(result.hits, start=1):
        table.add_row(
            str(rank), f"{hit.score:.4f}", _video_cell(hit), f"{_clock(hit.start_s)}–{_clock(hit.end_s)}", _clock(hit.best_frame_s)
        )
    console.print(table)


def _video_cell(hit) -> str:
    """The path, then the other paths with the same content, one per line; "(offline)" for an unmounted root."""
    cell = "\n".join(escape(p) for p in hit.paths or [hit.video_path])
    return cell + (" [dim](offline)[/dim]" if hit.offline else "")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"
