"""The second synthetic family: two persistent events in order, a clean split, captions that fit the model.

Reference: the properties promised in benchmarks/synthetic_events.py's docstring.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there; synthetic_events imports synthetic_data
    spec.loader.exec_module(module)
    return module


synthetic_data = _load("synthetic_data")
synthetic_events = _load("synthetic_events")
CONFIG = synthetic_events.EventsConfig(train_clips=40, test_families=6, distractor_prob=0.0, seed=3)


@pytest.fixture(scope="module")
def split():
    return synthetic_events.make_split(CONFIG)


def _colour_masks(frame: np.ndarray) -> list[int]:
    """Pixel counts of each object colour in one frame: bright pixels (backgrounds are dark, no distractors
    here) assigned to the nearest object colour."""
    bright = frame.astype(int)[frame.max(-1) > 110]
    colours = np.array(list(synthetic_data.COLOURS.values()))
    nearest = np.abs(bright[:, None, :] - colours[None]).sum(-1).argmin(-1)
    return np.bincount(nearest, minlength=len(colours)).tolist()


def test_shapes_and_captions(split):
    train, test = split
    for part, per_clip in ((train, CONFIG.train_captions_per_clip), (test, CONFIG.test_captions_per_clip)):
        assert part.frames.dtype == np.uint8
        assert part.frames.shape[1:] == (CONFIG.num_frames, CONFIG.image_size, CONFIG.image_size, 3)
        assert len(part.captions) == len(part.caption_clip) == per_clip * len(part.frames)
        assert part.events.shape == part.motions.shape == part.onsets.shape == (len(part.frames), 2)
    assert len(train.frames) == CONFIG.train_clips and len(test.frames) == 2 * CONFIG.test_families


def test_first_object_alone_then_both_stay_in_view(split):
    train, _ = split
    for frames, events, onsets in zip(train.frames, train.events, train.onsets, strict=True):
        first, second = (int(e) // len(synthetic_data.SHAPES) for e in events)
        if first == second:  # same colour, different shapes: pixel counts cannot tell them apart
            continue
        assert onsets[1] - onsets[0] >= synthetic_events.MIN_GAP and onsets[1] <= CONFIG.num_frames - 2
        for t, frame in enumerate(frames):
            counts = _colour_masks(frame)
            assert (counts[first] > 3) == (t >= onsets[0])
            assert (counts[second] > 3) == (t >= onsets[1])


def test_counterparts_swap_the_order_and_each_caption_has_one_clip(split):
    _, test = split
    for i in range(0, len(test.frames), 2):
        np.testing.assert_array_equal(test.events[i + 1], test.events[i][::-1])
        np.testing.assert_array_equal(test.motions[i + 1], test.motions[i][::-1])
    owners: dict[str, set[int]] = {}
    for text, clip in zip(test.captions, test.caption_clip, strict=True):
        owners.setdefault(text, set()).add(int(clip))
    phrases = {
        synthetic_events.caption_for(e, m, t)
        for e, m in zip(test.events, test.motions, strict=True) for t in range(len(synthetic_events.TEMPLATES))
    }
    assert len(phrases) == len(test.frames) * len(synthetic_events.TEMPLATES)  # no caption fits two test clips
    assert all(len(clips) == 1 for clips in owners.values())


def test_train_never_shows_a_test_pair(split):
    train, test = split
    assert not {frozenset(map(int, e)) for e in train.events} & {frozenset(map(int, e)) for e in test.events}


def test_captions_name_both_events_in_order_and_fit_16_tokens():
    red_square, blue_circle = 0, 2 * len(synthetic_data.SHAPES) + 1
    events, motions = np.array([red_square, blue_circle]), np.array([3, 0])
    texts = [synthetic_events.caption_for(events, motions, t) for t in range(len(synthetic_events.TEMPLATES))]
    assert texts[0] == "a red square falls then a blue circle enters left"
    assert texts[2] == "a blue circle enters left after a red square falls"
    longest = synthetic_events.caption_for(np.array([20, 21]), np.array([1, 1]), 3)  # "first an orange ..., later"
    assert len(longest.split()) + 2 <= 16  # start and end tokens; each word here is one CLIP BPE token


def test_same_seed_same_data():
    small = synthetic_events.EventsConfig(train_clips=5, test_families=2, seed=1)
    for a, b in zip(synthetic_events.make_split(small), synthetic_events.make_split(small), strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)
        assert a.captions == b.captions
