"""Issue 16, item 4, a training CLI people can steer: the model's shape as options of `glscl train` and
`glscl checkpoint random`, a text context checked at start-up, progress lines and mean losses off a
terminal, and what `--pretrained ''` means.

In-process (Typer's CliRunner): a library error reaches the runner as the exception that cli/errors.py
prints as one ``glscl: error:`` line with its exit code, so the tests check that exception.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli.app import app
from cli.train_commands import TrainDisplay
from glscl_index.errors import CheckpointError, DatasetError, InvalidOptionError, WeightsUnavailableError
from glscl_index.model.checkpoint import read_checkpoint_config
from glscl_index.train.loop import StepLog
from tests.cli.train_data import FAST, TINY, colour_dataset, dataset_args
from tests.tiny import TINY_ARCH

CLEAN_ENV = {"GLSCL_CHECKPOINT": None, "GLSCL_MODEL": None, "GLSCL_PRETRAINED": None, "GLSCL_INDEX": None}
SHAPE = [
    "--frames", "6", "--max-words", "16", "--temporal-layers", "2", "--num-queries", "4", "--lim-layers", "1",
    "--lim-heads", "2", "--lim-ffn", "64", "--frame-pooling", "mean", "--tau", "2", "--lambda", "0.25",
]
SHAPE_FIELDS = {
    "num_frames": 6, "max_words": 16, "temporal_layers": 2, "num_queries": 4, "decoder_layers": 1,
    "decoder_heads": 2, "decoder_ffn": 64, "frame_pooling": "mean", "temperature": 2.0, "local_weight": 0.25,
}


def glscl(*args: str):
    return CliRunner().invoke(app, list(args), env=CLEAN_ENV)


def error_of(result, kind: type[Exception]) -> str:
    """The message of the library error a run ended with (asserting its type and that it is one line)."""
    assert isinstance(result.exception, kind), (result.exception, result.output)
    message = str(result.exception).strip()
    assert message and "\n" not in message
    return message


@pytest.fixture
def missing_videos(tmp_path) -> list[str]:
    """Options of a run whose dataset names a video that is not there: reading the dataset is a DatasetError,
    so any other error came before the dataset was read, let alone a clip decoded."""
    (tmp_path / "captions.jsonl").write_text(json.dumps({"video": "none.mp4", "caption": "a red square"}) + "\n")
    return ["-a", str(tmp_path / "captions.jsonl"), "-v", str(tmp_path / "videos"), "-o", str(tmp_path / "run")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return colour_dataset(tmp_path_factory.mktemp("generic"))


def test_a_text_context_shorter_than_max_words_is_refused_at_start_up(tmp_path, missing_videos):
    arch = json.loads(Path(TINY_ARCH).read_text())
    arch["text_cfg"]["context_length"] = 16
    short = tmp_path / "short-context.json"
    short.write_text(json.dumps(arch))

    message = error_of(glscl("train", *missing_videos, "--model", str(short), "--pretrained", ""), InvalidOptionError)
    assert "context_length 16" in message and "--max-words 16" in message
    message = error_of(glscl("checkpoint", "random", str(tmp_path / "ck"), "--model", str(short)), InvalidOptionError)
    assert "--max-words 16" in message
    # As many words as the context holds: the model builds, and the run gets as far as reading the dataset.
    fits = ["--model", str(short), "--pretrained", "", "--max-words", "16"]
    error_of(glscl("train", *missing_videos, *fits), DatasetError)


def test_checkpoint_random_takes_the_model_shape(tmp_path):
    made = glscl("checkpoint", "random", str(tmp_path / "ck"), "--model", TINY_ARCH, *SHAPE)
    assert made.exit_code == 0, made.output
    config, _ = read_checkpoint_config(tmp_path / "ck")
    assert {name: getattr(config, name) for name in SHAPE_FIELDS} == SHAPE_FIELDS


@pytest.mark.parametrize(
    "option, value, fragment",
    [
        ("--frames", "0", "--frames must be >= 1, got 0"),
        ("--max-words", "2", "--max-words must be >= 3"),
        ("--temporal-layers", "0", "--temporal-layers must be >= 1"),
        ("--num-queries", "-1", "--num-queries must be >= 0"),
        ("--lim-ffn", "0", "--lim-ffn must be >= 1"),
        ("--frame-pooling", "max", "--frame-pooling must be 'attention' or 'mean'"),
        ("--tau", "0", "--tau must be > 0"),
        ("--lambda", "-1", "--lambda must be >= 0"),
        ("--lim-heads", "5", "--lim-heads with a divisor of 32"),  # limits of the tiny architecture (D = 32,
        ("--frames", "40", "--frames 32 or fewer"),  # 32 text positions for the temporal encoder)
    ],
)
def test_bad_model_shape_values_are_one_line_option_errors(tmp_path, option, value, fragment):
    result = glscl("checkpoint", "random", str(tmp_path / "ck"), "--model", TINY_ARCH, option, value)
    assert fragment in error_of(result, InvalidOptionError)
    assert not (tmp_path / "ck").exists()


def test_bad_train_values_are_refused_before_the_dataset_is_read(missing_videos):
    assert "--lim-heads" in error_of(glscl("train", *missing_videos, *TINY, "--lim-heads", "5"), InvalidOptionError)
    assert "--beta" in error_of(glscl("train", *missing_videos, *TINY, "--beta", "-1"), InvalidOptionError)
    assert "--log-every" in error_of(glscl("train", *missing_videos, *TINY, "--log-every", "-1"), InvalidOptionError)


class Captured(Exception):
    pass


def test_train_passes_the_shape_and_an_explicit_beta_beats_the_recipe(monkeypatch, missing_videos):
    import pipelines.train

    jobs = []

    def capture(config, **_):
        jobs.append(config)
        raise Captured

    monkeypatch.setattr(pipelines.train, "run_train", capture)
    for weights in ([], ["--alpha", "0.01", "--beta", "0.3"]):
        result = glscl("train", *missing_videos, *TINY, "--recipe", "official", *SHAPE, *weights)
        assert isinstance(result.exception, Captured), result.output
    by_recipe, explicit = jobs
    assert by_recipe.model_overrides == SHAPE_FIELDS
    assert (by_recipe.train.loss.diversity_weight, by_recipe.train.loss.consistency_weight) == (1e-4, 0.02)
    assert (explicit.train.loss.diversity_weight, explicit.train.loss.consistency_weight) == (0.01, 0.3)
    assert explicit.train.schedule == "official" and explicit.train.lr_clip == 0  # the rest of the recipe stays


def test_a_trained_checkpoint_keeps_its_shape(tiny_checkpoint, missing_videos):
    message = error_of(glscl("train", *missing_videos, "-c", str(tiny_checkpoint), "--frames", "6"), CheckpointError)
    assert "cannot change (num_frames)" in message
    # Without shape options it continues (and the run gets as far as reading the dataset).
    error_of(glscl("train", *missing_videos, "-c", str(tiny_checkpoint)), DatasetError)


def test_a_json_architecture_without_weights_says_pretrained_empty_means_random_weights(missing_videos):
    message = error_of(glscl("train", *missing_videos, "--model", TINY_ARCH), WeightsUnavailableError)
    assert "'openai'" in message and "--pretrained '' for random weights" in message


def _step(step: int, total: int = 5) -> StepLog:
    return StepLog(
        step=step, total_steps=total, epoch=0, loss=1.5, contrastive=1.25, diversity=2e-3, consistency=4e-3,
        lr_new=1e-4, lr_clip=1e-7,
    )


@pytest.mark.parametrize("quiet", [False, True])
def test_off_a_terminal_a_plain_line_every_n_steps_and_at_the_last(quiet):
    out = io.StringIO()
    display = TrainDisplay(Console(file=out, width=60), live=False, quiet=quiet, log_every=2)
    display.on_start(5, 0)
    for step in range(1, 6):
        display.on_step(_step(step))
    lines = out.getvalue().splitlines()
    if quiet:
        assert lines == []
        return
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]  # one line each, not wrapped at 60
    for term in ("loss 1.5000", "InfoNCE 1.2500", "diversity 2.00e-03", "consistency 4.00e-03", "lr 1.0e-04"):
        assert term in lines[0]


def test_a_run_in_a_log_file_shows_its_steps(dataset, tmp_path):
    run = glscl("train", "-o", str(tmp_path / "run"), *dataset_args(dataset), "--epochs", "1", "--log-every", "1",
                *TINY, *FAST)
    assert run.exit_code == 0, run.output
    steps = [line for line in run.stderr.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/2", "2/2"]
    assert all("InfoNCE" in line and "consistency" in line and " lr " in line for line in steps)


def test_mean_pooling_trains_and_its_checkpoint_indexes_and_searches(dataset, tmp_path):
    run = glscl("train", "-o", str(tmp_path / "run"), *dataset_args(dataset), "--epochs", "2",
                "--frame-pooling", "mean", "--json", *TINY, *FAST)
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout)
    assert summary["steps"] == 4
    for epoch, entry in enumerate(summary["history"]):
        assert entry["epoch"] == epoch and entry["loss"]["steps"] == 2  # the epoch's mean losses
        assert set(entry["loss"]) == {"total", "contrastive", "diversity", "consistency", "steps"}
        assert entry["loss"]["total"] > 0
    checkpoint = tmp_path / "run" / "last"
    config, _ = read_checkpoint_config(checkpoint)
    assert config.trained and config.frame_pooling == "mean"

    index = tmp_path / "index"
    indexed = glscl("index", str(dataset / "videos"), "-i", str(index), "-c", str(checkpoint), "--workers", "1", "-q")
    assert indexed.exit_code == 0, indexed.output
    found = glscl("search", "a red square", "-i", str(index), "--json")
    assert found.exit_code == 0, found.output
    document = json.loads(found.stdout)
    assert document["mode"] == "trained" and len(document["results"]) == 4
