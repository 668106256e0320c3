"""`glscl train` and `glscl eval` end to end on a generic JSONL dataset of generated clips."""

from __future__ import annotations

import json

import pytest

from tests.cli.helpers import run_in_process
from tests.cli.train_data import FAST, TINY, colour_dataset

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return colour_dataset(tmp_path_factory.mktemp("generic"))


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """The commands of the tests below, one after another in one interpreter (torch is imported once): `glscl
    train`, then index, search and eval with its best checkpoint, then the two error cases. Each test checks its
    own command's result."""
    output, work = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("work")
    annotations = work / "captions.jsonl"  # the dataset's, plus a caption of a video that is not there
    annotations.write_text(
        (dataset / "captions.jsonl").read_text() + json.dumps({"video": "gone.mp4", "caption": "x"}) + "\n"
    )
    train, index, search, evaluate, missing_video, missing_annotations = run_in_process(
        ["train", "-o", str(output), "-a", str(dataset / "captions.jsonl"), "-v", str(dataset / "videos"),
         "--epochs", "2", "--val-split", "all", "--json", *TINY, *FAST],
        ["index", str(dataset / "videos"), "-i", str(work / "index"), "-c", str(output / "best"), "-q"],
        ["search", "a red square", "-i", str(work / "index"), "--json"],
        ["eval", "-a", str(dataset / "captions.jsonl"), "-v", str(dataset / "videos"), "--split", "all",
         "-c", str(output / "best"), "--via-index", str(work / "eval-index"), "--json", "--workers", "1"],
        ["train", "-o", str(work / "bad-run"), "-a", str(annotations), "-v", str(dataset / "videos"), *TINY, *FAST],
        ["eval", "-a", str(work / "none.jsonl"), "-v", str(work), *TINY],
    )
    return {"output": output, "work": work, "train": train, "index": index, "search": search, "eval": evaluate,
            "missing_video": missing_video, "missing_annotations": missing_annotations}


@pytest.fixture(scope="module")
def trained_run(runs):
    result = runs["train"]
    assert result["code"] == 0, result["stderr"]
    return runs["output"], json.loads(result["stdout"])


def test_train_writes_usable_checkpoints(trained_run):
    output, summary = trained_run
    assert summary["steps"] == 4 and summary["train_clips"] == 4
    assert len(summary["history"]) == 2 and 0 <= summary["best_r1"] <= 100
    for name in ("best", "last"):
        assert (output / name / "config.json").is_file() and (output / name / "model.safetensors").is_file()


def test_checkpoint_indexes_and_searches(trained_run, runs):
    built, result = runs["index"], runs["search"]  # `index VIDEOS -c RUN/best -q`, then `search "a red square"`
    assert built["code"] == 0, built["stderr"]
    assert result["code"] == 0, result["stderr"]
    document = json.loads(result["stdout"])
    assert document["mode"] == "trained"
    hits = document["results"]
    assert len(hits) == 4
    assert all(hit["local_score"] is not None for hit in hits)  # trained mode: sim2 is part of the score


def test_eval_via_index_matches_in_memory(trained_run, runs):
    result = runs["eval"]  # `eval --split all -c RUN/best --via-index NEW_INDEX --json`
    assert result["code"] == 0, result["stderr"]
    report = json.loads(result["stdout"])
    assert report["in_memory"]["queries"] == 8 and report["in_memory"]["videos"] == 4
    in_memory, indexed = report["in_memory"]["text_to_video"], report["via_index"]["text_to_video"]
    # int8 storage (scores move by up to ~1e-3) may swap near-ties of this barely trained model, never move a
    # video far: a swap moves MnR by 1/8 here.
    assert indexed["R@5"] == in_memory["R@5"]
    assert abs(indexed["MnR"] - in_memory["MnR"]) <= 0.5
    assert set(report["in_memory"]["video_to_text"]) == {"R@1", "R@5", "R@10", "MdR", "MnR"}


def test_missing_video_is_an_error_before_training(runs):
    result = runs["missing_video"]  # `train -o WORK/bad-run` on the captions plus one of a missing gone.mp4
    assert result["code"] == 9 and "gone" in result["stderr"] and "--skip-missing" in result["stderr"]
    assert result["stderr"].strip().count("\n") == 0
    assert not (runs["work"] / "bad-run" / "last").exists()


def test_missing_annotation_file_is_one_line(runs):
    result = runs["missing_annotations"]  # `eval -a WORK/none.jsonl`
    assert result["code"] == 9
    assert result["stderr"].startswith("glscl: error:") and result["stderr"].strip().count("\n") == 0
