"""Generated captioned clips for training tests: colour and background name what a caption says."""

from __future__ import annotations

import pytest

from glscl_index.data.records import Clip, DatasetSplit
from glscl_index.train.frames import clip_sampling, decode_clips
from glscl_index.video.workers import DecodeConfig
from tests.media import make_clip

COLOURS = {
    "red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
    "white": (235, 235, 235), "purple": (150, 40, 180),
}


@pytest.fixture(scope="session")
def colour_split(tmp_path_factory) -> DatasetSplit:
    """Six 2 s clips of a moving square, two captions each."""
    root = tmp_path_factory.mktemp("colours")
    clips = []
    for name, rgb in COLOURS.items():
        path = make_clip(root / f"{name}.mp4", seconds=2.0, fps=5, size=(64, 48), color=rgb)
        clips.append(Clip(name, str(path), (f"a {name} square moves", f"something {name} slides right")))
    return DatasetSplit("colours", clips)


@pytest.fixture(scope="session")
def colour_frames(colour_split):
    frames, kept = decode_clips(colour_split.clips, clip_sampling(4, 32), DecodeConfig(workers=1), None)
    assert kept == list(range(len(colour_split.clips)))
    return frames
