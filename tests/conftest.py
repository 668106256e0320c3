"""Shared fixtures: a tiny open_clip architecture with random weights (no download, ever)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glscl_index.model.checkpoint import save_checkpoint
from tests.tiny import TINY_ARCH, tiny_model

__all__ = ["TINY_ARCH", "tiny_model"]  # tests written before tests/tiny.py import them from here


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_arch() -> str:
    return TINY_ARCH


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A trained-mode random-weight checkpoint directory of the tiny architecture."""
    directory = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(tiny_model(trained=True), directory)
    return directory


@pytest.fixture(scope="session")
def tiny_zero_shot_checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("ckpt") / "tiny-zs"
    save_checkpoint(tiny_model(trained=False), directory)
    return directory
