"""`glscl train` and `glscl eval` end to end on a generic JSONL dataset of generated clips."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import run_glscl
from tests.cli.train_data import FAST, TINY, colour_dataset

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return colour_dataset(tmp_path_factory.mktemp("generic"))


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    result = run_glscl(
        "train", "-o", str(output), "-a", str(dataset / "captions.jsonl"), "-v", str(dataset / "videos"),
        "--epochs", "2", "--val-split", "all", "--json", *TINY, *FAST,
    )
    assert result.returncode == 0, result.stderr
    return output, json.loads(result.stdout)


def test_train_writes_usable_checkpoints(trained_run):
    output, summary = trained_run
    assert summary["steps"] == 4 and summary["train_clips"] == 4
    assert len(summary["history"]) == 2 and 0 <= summary["best_r1"] <= 100
    for name in ("best", "last"):
        assert (output / name / "config.json").is_file() and (output / name / "model.safetensors").is_file()


def test_checkpoint_indexes_and_searches(trained_run, dataset, tmp_path):
    output, _ = trained_run
    index = tmp_path / "index"
    assert (
        run_glscl("index", str(dataset / "videos"), "-i", str(index), "-c", str(output / "best"), "-q").returncode == 0
    )
    result = run_glscl("search", "a red square", "-i", str(index), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["mode"] == "trained"
    hits = document["results"]
    assert len(hits) == 4
    assert all(hit["local_score"] is not None for hit in hits)  # trained mode: sim2 is part of the score


def test_eval_via_index_matches_in_memory(trained_run, dataset, tmp_path):
    output, _ = trained_run
    result = run_glscl(
        "eval", "-a", str(dataset / "captions.jsonl"), "-v", str(dataset / "videos"), "--split", "all",
        "-c", str(output / "best"), "--via-index", str(tmp_path / "index"), "--json", "--workers", "1",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["in_memory"]["queries"] == 8 and report["in_memory"]["videos"] == 4
    in_memory, indexed = report["in_memory"]["text_to_video"], report["via_index"]["text_to_video"]
    # int8 storage (scores move by up to ~1e-3) may swap near-ties of this barely trained model, never move a
    # video far: a swap moves MnR by 1/8 here.
    assert indexed["R@5"] == in_memory["R@5"]
    assert abs(indexed["MnR"] - in_memory["MnR"]) <= 0.5
    assert set(report["in_memory"]["video_to_text"]) == {"R@1", "R@5", "R@10", "MdR", "MnR"}


def test_missing_video_is_an_error_before_training(dataset, tmp_path):
    annotations = tmp_path / "captions.jsonl"
    annotations.write_text(
        (dataset / "captions.jsonl").read_text() + json.dumps({"video": "gone.mp4", "caption": "x"}) + "\n"
    )
    result = run_glscl(
        "train", "-o", str(tmp_path / "run"), "-a", str(annotations), "-v", str(dataset / "videos"), *TINY, *FAST
    )
    assert result.returncode == 9 and "gone" in result.stderr and "--skip-missing" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "run" / "last").exists()


def test_missing_annotation_file_is_one_line(tmp_path):
    result = run_glscl("eval", "-a", str(tmp_path / "none.jsonl"), "-v", str(tmp_path), *TINY)
    assert result.returncode == 9
    assert result.stderr.startswith("glscl: error:") and result.stderr.strip().count("\n") == 0
