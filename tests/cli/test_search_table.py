"""The terminal table of `glscl search`: a long path is cut in the middle, so the file name stays visible."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cli import search_command
from cli.search_command import shorten_middle
from glscl_index.search import Hit, QueryResult

LONG = "/mnt/archive/family/2019 summer holiday in the mountains/day 3 - the lake/GOPR0042 jumping into the lake.mp4"


@pytest.mark.parametrize("width", [24, 40, 60, 80])
def test_shorten_middle_keeps_the_start_and_the_file_name(width):
    short = shorten_middle(LONG, width)
    assert len(short) == width and "…" in short
    assert short.startswith(LONG[: short.index("…")])
    if width >= len("GOPR0042 jumping into the lake.mp4") + 2:
        assert short.endswith("/GOPR0042 jumping into the lake.mp4")
    else:
        assert short.endswith("lake.mp4")


def test_short_paths_are_untouched():
    assert shorten_middle("/videos/a.mp4", 40) == "/videos/a.mp4"
    assert shorten_middle(LONG, len(LONG)) == LONG


def test_table_in_a_100_column_console_shows_each_file_name(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(search_command, "console", Console(file=out, width=100, color_system=None))
    hits = [
        Hit(video_path=LONG, video_id="a", score=0.5, global_score=0.4, local_score=0.2, segment_index=0,
            start_s=0.0, end_s=30.0, best_frame_s=12.0, paths=[LONG, "/home/me/copy of it/" + "x" * 70 + "/short.mkv"]),
        Hit(video_path="/v/b.mp4", video_id="b", score=0.4, global_score=0.4, local_score=0.0, segment_index=1,
            start_s=20.0, end_s=50.0, best_frame_s=31.0, paths=["/v/b.mp4"], offline=True),
    ]
    search_command._print_table(QueryResult("a jump into a lake", hits, truncated=False))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 100 for line in lines)
    shown = out.getvalue()
    assert "/GOPR0042 jumping into the lake.mp4" in shown and "/short.mkv" in shown and "/v/b.mp4" in shown
    assert "…" in shown and "(offline)" in shown
