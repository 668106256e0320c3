"""Shared fixtures: a tiny open_clip architecture with random weights (no download, ever)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from glscl_index.model.checkpoint import create_random_model, save_checkpoint

ASSETS = Path(__file__).parent / "assets"
TINY_ARCH = str(ASSETS / "tiny-clip.json")
SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def tiny_model(trained: bool = True, seed: int = 0):
    return create_random_model(TINY_ARCH, trained=trained, seed=seed, decoder_ffn=64)


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
