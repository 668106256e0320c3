"""`glscl index` and `glscl search` through the real entry point, errors included."""

import json

import pytest

from tests.cli.helpers import one_line_error, run_glscl, run_in_process
from tests.media import make_broken_files, make_clip
from tests.tiny import TINY_ARCH

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`glscl checkpoint random`, `glscl index` and the searches of the tests below, one after another in one
    interpreter (torch is imported once); each test checks its own command's result."""
    root = tmp_path_factory.mktemp("cli")
    videos = root / "videos"
    make_clip(videos / "red.mp4", color=(220, 20, 20))
    make_clip(videos / "green.mp4", color=(20, 220, 20))
    broken = make_broken_files(videos / "broken")
    index = str(root / "index")
    made, result, as_json, paths_only, from_stdin = run_in_process(
        ["checkpoint", "random", str(root / "ck"), "--model", TINY_ARCH, "--decoder-ffn", "64"],
        ["index", str(videos), "--index", index, "--checkpoint", str(root / "ck"), "--json", "--workers", "2"],
        ["search", "a red square", "--index", index, "--json", "-k", "5"],
        ["search", "a red square", "--index", index, "--paths-only"],
        ["search", "--queries", "-", "--index", index],
        input="a red square\n\ngreen things\n",  # read by the one command given `--queries -`
    )
    assert made["code"] == 0, made["stderr"]
    assert result["code"] == 0, result["stderr"]
    return {"root": root, "broken": broken, "index": result, "search": (as_json, paths_only, from_stdin)}


@pytest.fixture(scope="module")
def indexed(runs):
    # Only files with a video extension are picked up from a folder.
    broken_videos = [p for p in runs["broken"].values() if p.suffix in (".mp4", ".mkv", ".avi", ".mov", ".webm")]
    return runs["root"], json.loads(runs["index"]["stdout"]), len(broken_videos)


def test_index_summary_json(indexed):
    _, summary, broken = indexed
    assert summary["added"] == 2 and summary["failed"] == broken and summary["units"] == 2
    assert {"added", "updated", "removed", "unchanged", "failed", "seconds"} <= set(summary)
    assert all(f["reason"] for f in summary["failures"])


def test_search_json_schema_and_paths_only(runs):
    result, paths, _ = runs["search"]  # `search "a red square" --json -k 5`, then the same with --paths-only
    assert result["code"] == 0, result["stderr"]
    document = json.loads(result["stdout"])
    assert set(document) == {"query", "truncated", "mode", "random_weights", "index", "generation", "results"}
    assert document["random_weights"] is True  # the tests' checkpoint is `glscl checkpoint random`
    assert document["mode"] == "trained" and len(document["results"]) == 2
    hit = document["results"][0]
    assert set(hit) == {
        "rank",
        "path",
        "paths",
        "offline",
        "video_id",
        "score",
        "global_score",
        "local_score",
        "segment",
        "best_frame_s",
    }
    assert hit["paths"] == [hit["path"]] and hit["offline"] is False
    assert set(hit["segment"]) == {"index", "start_s", "end_s"}
    assert paths["code"] == 0, paths["stderr"]
    assert sorted(paths["stdout"].split("\n")[:2]) == sorted(r["path"] for r in document["results"])


def test_many_queries_from_stdin_give_json_lines(runs):
    *_, result = runs["search"]  # `search --queries -` given "a red square\n\ngreen things\n" on stdin
    assert result["code"] == 0, result["stderr"]
    lines = [json.loads(line) for line in result["stdout"].splitlines()]
    assert [line["query"] for line in lines] == ["a red square", "green things"]


def test_second_run_is_unchanged(indexed):
    root, _, broken = indexed
    result = run_glscl("index", str(root / "videos"), "--index", str(root / "index"), "--json", "--workers", "2")
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and summary["videos_embedded"] == 0 and summary["unchanged"] == 2 + broken


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("glscl: error:") and fragment in lines[0], result.stderr


def test_search_errors(indexed, tmp_path):
    """The five commands run one after another in one process (a process each would pay torch's import five times)."""
    root, _, broken = indexed
    index = str(root / "index")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("{not json")
    empty, missing, other, mismatch, garbled = run_in_process(
        ["search", "   ", "--index", index],
        ["search", "x", "--index", str(tmp_path / "none")],
        ["checkpoint", "random", str(tmp_path / "other"), "--model", TINY_ARCH, "--zero-shot"],
        ["search", "x", "--index", index, "--checkpoint", str(tmp_path / "other")],
        ["search", "x", "--index", str(damaged)],
    )
    assert other["code"] == 0, other["stderr"]
    for result, fragment in ((empty, "empty"), (missing, "no index"), (mismatch, "--rebuild"), (garbled, "damaged")):
        one_line_error(result, fragment)


def test_index_errors(tmp_path):
    assert_one_line_error(run_glscl("index", str(tmp_path / "missing"), "--index", str(tmp_path / "i")), "no such file")
