"""A rich progress bar for indexing (videos/s, frames/s, ETA), shown on interactive terminals only."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipelines.index import IndexProgress


class RichIndexProgress(IndexProgress):
    def __init__(self, console: Console):
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]indexing[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = None
        self.frames = 0
        self.failed = 0
        self.started = time.monotonic()

    def start(self, total_videos: int) -> None:
        if total_videos == 0:
            return
        self.started = time.monotonic()
        self.bar.start()
        self.task = self.bar.add_task("index", total=total_videos, rate="")

    def advance(self, path: str, frames: int, failed: bool) -> None:
        if self.task is None:
            return
        self.frames += frames
        self.failed += int(failed)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = self.bar.tasks[0].completed + 1
        rate = f"{done / elapsed:.1f} videos/s  {self.frames / elapsed:.0f} frames/s"
        if self.failed:
            rate += f"  [red]{self.failed} failed[/red]"
        self.bar.update(self.task, advance=1, rate=rate)

    def upkeep(self, what: str) -> None:
        self.console.print(f"[dim]upkeep of the index: {what}[/dim]")

    def stop(self) -> None:
        if self.task is not None:
            self.bar.stop()
