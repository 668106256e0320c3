"""`glscl --help`, `glscl info`, `glscl checkpoint random` through the real entry point."""

import json

import pytest

from tests.cli.helpers import run_glscl, run_in_process
from tests.tiny import TINY_ARCH

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses

# The commands of one test run one after another in one process (``run_in_process``): torch is imported once.


def test_help_lists_commands():
    result = run_glscl("--help")
    assert result.returncode == 0
    for command in ("info", "checkpoint"):
        assert command in result.stdout


def test_random_checkpoint_then_info(tmp_path):
    made, info = run_in_process(
        ["checkpoint", "random", str(tmp_path / "ck"), "--model", TINY_ARCH, "--decoder-ffn", "64"],
        ["info", "--checkpoint", str(tmp_path / "ck"), "--json", "--device", "cpu"],
    )
    assert made["code"] == 0, made["stderr"]
    assert info["code"] == 0, info["stderr"]
    details = json.loads(info["stdout"])
    assert details["mode"] == "trained"
    assert details["embed_dim"] == 32 and details["num_queries"] == 8
    assert len(details["fingerprint"]) == 32


def test_zero_shot_info_says_so(tmp_path):
    made, info = run_in_process(
        ["checkpoint", "random", str(tmp_path / "zs"), "--model", TINY_ARCH, "--zero-shot"],
        ["info", "--checkpoint", str(tmp_path / "zs")],
    )
    assert made["code"] == 0, made["stderr"]
    assert info["code"] == 0
    assert "zero-shot" in info["stdout"] and "sim1" in info["stdout"]


def test_errors_are_one_line_without_traceback(tmp_path):
    missing, offline = run_in_process(
        ["info", "--checkpoint", str(tmp_path / "missing")], ["info", "--model", "ViT-B-32", "--pretrained", "openai"]
    )
    assert missing["code"] != 0
    assert missing["stderr"].strip().startswith("glscl: error:")
    assert "Traceback" not in missing["stderr"] and len(missing["stderr"].strip().splitlines()) == 1
    assert offline["code"] != 0 and "Traceback" not in offline["stderr"]
    assert "--pretrained" in offline["stderr"]  # says how to point at a local weights file
