"""The tiny open_clip architecture with random weights that every model test uses (no download, ever)."""

from __future__ import annotations

from pathlib import Path

from glscl_index.model.factory import create_random_model

ASSETS = Path(__file__).parent / "assets"
TINY_ARCH = str(ASSETS / "tiny-clip.json")


def tiny_model(trained: bool = True, seed: int = 0):
    return create_random_model(TINY_ARCH, trained=trained, seed=seed, decoder_ffn=64)
