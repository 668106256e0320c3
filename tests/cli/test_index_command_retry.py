"""`glscl index --retry-failed`: the summary counts unchanged failed files and hints at the flag; the flag retries.

Runs the Typer app in-process (the subprocess tests in test_index_search_commands.py
cover the real entry point); each invocation then costs no interpreter start.
"""

import json

from typer.testing import CliRunner

from cli.app import app
from cli.index_command import EXIT_STRICT_FAILURES
from tests.media import make_broken_files, make_clip


def test_failed_files_are_counted_then_retried_with_the_flag(tmp_path, tiny_checkpoint):
    videos, index = tmp_path / "videos", tmp_path / "index"
    make_clip(videos / "good.mp4", seconds=1)
    make_broken_files(tmp_path / "broken")["truncated"].rename(videos / "truncated.mp4")
    runner = CliRunner()

    def glscl_index(*flags):
        result = runner.invoke(app, ["index", str(videos), "--index", str(index), "--workers", "1", *flags])
        assert result.exit_code == 0, result.output
        return result.stdout

    assert json.loads(glscl_index("--checkpoint", str(tiny_checkpoint), "--json"))["failed"] == 1

    human = glscl_index()
    assert "failed (unchanged, not retried): 1" in human and "--retry-failed" in human

    summary = json.loads(glscl_index("--retry-failed", "--json"))
    assert (summary["failed"], summary["failed_not_retried"], summary["unchanged"]) == (1, 0, 1)
    assert [f["path"] for f in summary["failures"]] == [str(videos / "truncated.mp4")]


def test_strict_fails_while_a_broken_file_stays_even_when_not_retried(tmp_path, tiny_checkpoint):
    videos, index = tmp_path / "videos", tmp_path / "index"
    make_clip(videos / "good.mp4", seconds=1)
    broken = make_broken_files(tmp_path / "broken")["truncated"].rename(videos / "truncated.mp4")
    runner = CliRunner()

    def strict_exit_code(*flags):
        args = ["index", str(videos), "--index", str(index), "--workers", "1", "--strict", "--quiet", *flags]
        return runner.invoke(app, args).exit_code

    assert strict_exit_code("--checkpoint", str(tiny_checkpoint)) == EXIT_STRICT_FAILURES
    assert strict_exit_code() == EXIT_STRICT_FAILURES  # unchanged and not decoded again, still broken
    broken.unlink()
    assert strict_exit_code() == 0
