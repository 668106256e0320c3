"""A tiny served index: generated clips (one long enough for several segments), a random tiny checkpoint."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from glscl_index.model.checkpoint import save_checkpoint
from glscl_index.model.spec import ModelSpec
from glscl_index.video.decode_config import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.media import default_codec, make_clip
from tests.tiny import tiny_model

# H.264 in MP4 plays in Chromium; the PyAV build falls back to MPEG-4 part 2 only without libx264.
CODEC = default_codec()


@dataclass
class ServedIndex:
    root: Path
    videos: Path
    index: Path
    checkpoint: Path

    def copy(self, destination: Path) -> Path:
        """A copy of the index (same videos, same model) that a test may change."""
        shutil.copytree(self.index, destination)
        return destination


def make_videos(folder: Path) -> None:
    make_clip(folder / "red square.mp4", color=(220, 20, 20), codec=CODEC)
    make_clip(folder / "nested" / "green.mp4", color=(20, 220, 20), codec=CODEC)
    # 75 s: four 30 s segments (overlapping by 10 s), so a hit can start after 0.
    make_clip(folder / "long blue.mp4", color=(40, 60, 230), codec=CODEC, seconds=75, fps=2)


@pytest.fixture(scope="session")
def served_index(tmp_path_factory) -> ServedIndex:
    root = tmp_path_factory.mktemp("serve")
    make_videos(root / "videos")
    # In process (the CLI path is tested elsewhere): what `glscl checkpoint random --model TINY --decoder-ffn 64`
    # and `glscl index --checkpoint` write, without two interpreter start-ups.
    model = tiny_model()
    save_checkpoint(model, root / "ck")
    config = IndexJobConfig(
        paths=[str(root / "videos")], index_dir=root / "index", model=ModelSpec(checkpoint=str(root / "ck")),
        decode=DecodeConfig(workers=1),
    )
    run_index(config, model=model)
    return ServedIndex(root, root / "videos", root / "index", root / "ck")
