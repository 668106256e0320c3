"""`glscl index PATH...`: build or update an index (safe to run from cron)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from cli.options import CheckpointOption, DeviceOption, IndexOption, ModelOption, PretrainedOption, index_dir
from glscl_index.errors import InvalidOptionError
from glscl_index.video.decode_config import DecodeConfig

if TYPE_CHECKING:
    from pipelines.index import IndexSummary

EXIT_STRICT_FAILURES = 10
EXIT_STRICT_OFFLINE = 11


def index(
    paths: list[str] = typer.Argument(
        None,
        help="Video files and/or folders (searched recursively); the index remembers them. "
        "Without paths, every remembered root is indexed again.",
        show_default=False,
    ),
    index: Path = IndexOption,
    checkpoint: str = CheckpointOption,
    model: str = ModelOption,
    pretrained: str = PretrainedOption,
    device: str = DeviceOption,
    exclude: list[str] = typer.Option(
        [], "--exclude", "-x", help="Glob of paths to skip (repeatable), e.g. '*.tmp' or 'raw/*'."
    ),
    include_hidden: bool = typer.Option(False, "--include-hidden", help="Also index hidden files and folders."),
    workers: str = typer.Option(
        "auto",
        help="Decoding worker processes: a number, or auto (with a GPU, as many as keep up with the model, bounded "
        f"by the cores; on a CPU, {DecodeConfig().workers} here: the cores but one).",
    ),
    timeout: float = typer.Option(120.0, "--timeout", help="Seconds one file may take to decode before it is failed."),
    memory_limit: int = typer.Option(4096, "--memory-limit", help="MiB of memory one decoding worker may use."),
    segment_seconds: float = typer.Option(30.0, help="Length of one indexed segment of a long video (seconds)."),
    segment_overlap: float = typer.Option(10.0, help="Overlap between consecutive segments (seconds)."),
    single_unit_max: float = typer.Option(60.0, help="Videos up to this many seconds are indexed as one unit."),
    commit_every: int = typer.Option(100, help="Commit after this many videos (a crash loses at most this many)."),
    batch_frames: int = typer.Option(256, help="Frames per model forward pass."),
    faiss_type: str = typer.Option(
        "auto",
        "--faiss",
        help="Candidate index: auto (flat while small, then a PQ scan tuned to recall the exact top 10), flat or "
        "pqscan.",
    ),
    rebuild: bool = typer.Option(
        False,
        "--rebuild",
        help="Start a fresh index (e.g. with another model); the old one stays readable until the first commit.",
    ),
    retry_failed: bool = typer.Option(
        False,
        "--retry-failed",
        help="Decode again the files that failed before although they did not change (e.g. after upgrading decord "
        "or raising --timeout/--memory-limit); by default they stay failed and are counted in the summary.",
    ),
    forget: list[str] = typer.Option(
        [],
        "--forget",
        help="Stop indexing this root and drop its entries (repeatable). A root that is missing is never dropped "
        "by itself: its entries are kept, marked offline.",
    ),
    strict: bool = typer.Option(
        False,
        "--strict",
        help=f"Exit with {EXIT_STRICT_FAILURES} when any file is failed (in this run, or in an earlier one and "
        f"unchanged since), or {EXIT_STRICT_OFFLINE} when a root is offline (missing, unreadable, or empty where it "
        f"had videos).",
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        help="local (worker processes on this machine) or ray (a Ray Data pipeline on a Ray cluster; needs "
        "pip install 'glscl[distributed]'; see docs/scale.md).",
    ),
    ray_address: str = typer.Option(
        "",
        "--ray-address",
        help="With --engine ray: the cluster to join, auto (the one started on this machine) or ray://HOST:PORT "
        "[default: $RAY_ADDRESS, else a new local Ray instance].",
        show_default=False,
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary (errors still go to stderr)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document."),
) -> None:
    """Index videos: decode, embed with GLSCL, store in Parquet shards + FAISS.

    Re-running brings the index up to date: new files are added, changed files
    re-embedded, deleted files dropped, moved files recognised by content, and
    nothing unchanged is decoded again (a file that failed stays failed until it
    changes, or until --retry-failed). The index remembers its roots: `glscl index`
    alone re-indexes all of them, and a root that is missing (an unmounted drive)
    keeps its videos, marked offline; only --forget drops a root. Exit code 0 when
    the index was committed (broken files are listed), non-zero when nothing
    could be committed.
    """
    # Imported here, not at start-up: torch and the pipeline take seconds to load (see cli/app.py).
    from cli.progress import RichIndexProgress
    from glscl_index.index_model import explicit_spec, reloadable_spec
    from pipelines.index import IndexJobConfig, run_index

    directory = index_dir(index)
    auto_workers, decode_workers = parse_workers(workers)
    config = IndexJobConfig(
        paths=[str(Path(p).absolute()) for p in paths or []],
        index_dir=directory,
        model=reloadable_spec(explicit_spec(checkpoint, model, pretrained)),
        device=device,
        segment_s=segment_seconds,
        segment_overlap_s=segment_overlap,
        single_unit_max_s=single_unit_max,
        decode=DecodeConfig(workers=decode_workers, timeout_s=timeout, memory_limit_mb=memory_limit),
        auto_workers=auto_workers,
        exclude=list(exclude),
        include_hidden=include_hidden,
        commit_every=commit_every,
        batch_frames=batch_frames,
        faiss_type=faiss_type,
        rebuild=rebuild,
        retry_failed=retry_failed,
        forget=list(forget),
        engine=engine,
        ray_address=ray_address,
    )
    console = Console(stderr=True)
    progress = RichIndexProgress(console) if console.is_terminal and not quiet and not as_json else None
    try:
        summary = run_index(config, progress=progress)
    finally:
        if progress is not None:
            progress.stop()
    _warn(console, summary)
    if as_json:
        print(json.dumps({"index": str(directory), **summary.to_dict()}, indent=2))
    elif not quiet:
        _print_summary(Console(), directory, summary)
    # A scheduled --strict run keeps failing while a broken file stays in the folder, not only on the run that found it.
    if strict and (summary.failed or summary.failed_not_retried):
        sys.exit(EXIT_STRICT_FAILURES)
    if strict and summary.offline_roots:
        sys.exit(EXIT_STRICT_OFFLINE)


def parse_workers(value: str) -> tuple[bool, int]:
    """``--workers``: (auto, the count on a CPU or the number given); anything else is a one-line error."""
    if value.strip().lower() == "auto":
        return True, DecodeConfig().workers
    try:
        return False, int(value)
    except ValueError:
        raise InvalidOptionError(f"--workers must be a number or auto (got {value!r})") from None


def _warn(console: Console, summary: IndexSummary) -> None:
    """Offline roots and warnings go to stderr even with --quiet: a cron job's mail shows them."""
    for root in summary.offline_roots:
        console.print(
            f"glscl: warning: {root['path']} is offline ({root['reason']}); its {root['entries']} entries are kept, "
            f"not removed (`glscl index --forget {root['path']}` drops them)",
            markup=False, highlight=False, soft_wrap=True,
        )
    for action in summary.repaired:
        console.print(f"glscl: repaired: {action}", markup=False, highlight=False, soft_wrap=True)
    for warning in summary.warnings:
        console.print(f"glscl: warning: {warning}", markup=False, highlight=False, soft_wrap=True)


def _print_summary(console: Console, directory: Path, summary: IndexSummary) -> None:
    rate = summary.videos_embedded / summary.seconds if summary.seconds else 0.0
    console.print(
        f"[bold]{directory}[/bold] generation {summary.generation}: {summary.units} units "
        f"({summary.mode} mode{', random weights' if summary.random_weights else ''}) in {summary.seconds:.1f} s"
    )
    console.print(
        f"added {summary.added}, updated {summary.updated}, moved {summary.moved}, removed {summary.removed}, "
        f"unchanged {summary.unchanged}, failed {summary.failed}"
        + (
            f" — {rate:.1f} videos/s, {summary.frames_embedded / summary.seconds:.0f} frames/s"
            if summary.videos_embedded
            else ""
        )
    )
    if summary.failures:
        table = Table(
            "failed file", "reason", title=f"{summary.failed} file(s) could not be indexed", title_justify="left"
        )
        for failure in summary.failures:
            table.add_row(failure["path"], failure["reason"])
        console.print(table)
    if summary.duplicates:
        console.print(f"same content as an indexed video (kept as more paths of it): {summary.duplicates}")
    if summary.forgotten:
        console.print(f"forgotten: {summary.forgotten} entries")
    if summary.failed_not_retried:
        # Files that failed in an earlier run and did not change since; the hint says how to try them again.
        console.print(f"failed (unchanged, not retried): {summary.failed_not_retried} — try again with --retry-failed")
