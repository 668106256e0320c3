"""The synthetic benchmark's generator: captions need time and identity, and the split is clean.

Reference: the properties promised in benchmarks/synthetic_data.py's docstring.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "synthetic_data.py"
_SPEC = importlib.util.spec_from_file_location("synthetic_data", _PATH)
synthetic_data = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("synthetic_data", synthetic_data)  # dataclasses look their module up there
_SPEC.loader.exec_module(synthetic_data)

CONFIG = synthetic_data.SyntheticConfig(train_clips=40, test_families=6, seed=5)


@pytest.fixture(scope="module")
def split():
    return synthetic_data.make_split(CONFIG)


def test_shapes_and_captions(split):
    train, test = split
    for part in (train, test):
        assert part.frames.dtype == np.uint8
        assert part.frames.shape[1:] == (CONFIG.num_frames, CONFIG.image_size, CONFIG.image_size, 3)
        assert len(part.captions) == len(part.caption_clip) == len(part.caption_events) == 3 * len(part.frames)
    assert len(train.frames) == CONFIG.train_clips and len(test.frames) == 2 * CONFIG.test_families


def test_reversed_clip_has_the_same_frames_in_the_opposite_order(split):
    _, test = split
    for i in range(0, len(test.frames), 2):
        forward, backward = test.frames[i], test.frames[i + 1]
        np.testing.assert_array_equal(backward, forward[::-1])
        np.testing.assert_array_equal(test.events[i + 1], test.events[i][::-1])
        # The same set of frames (an unordered bag cannot tell them apart) but not the same sequence.
        assert sorted(f.tobytes() for f in forward) == sorted(f.tobytes() for f in backward)
        assert not np.array_equal(forward, backward)
        # ... and they satisfy opposite captions.
        pairs_forward = {tuple(p) for p in test.caption_events[test.caption_clip == i]}
        pairs_backward = {tuple(p) for p in test.caption_events[test.caption_clip == i + 1]}
        assert pairs_backward == {(b, a) for a, b in pairs_forward}


def test_every_test_caption_has_exactly_one_correct_clip(split):
    _, test = split
    owners: dict[tuple[int, int], set[int]] = {}
    for clip, events in enumerate(test.events):
        for pair in synthetic_data.ordered_pairs(events):
            owners.setdefault(pair, set()).add(clip)
    assert all(len(clips) == 1 for clips in owners.values())
    for (earlier, later), clip in zip(test.caption_events, test.caption_clip, strict=False):
        assert owners[(int(earlier), int(later))] == {int(clip)}


def test_train_and_test_object_sets_are_disjoint(split):
    train, test = split
    assert not {frozenset(map(int, e)) for e in train.events} & {frozenset(map(int, e)) for e in test.events}


def test_caption_names_both_objects_and_their_order():
    red_square, blue_circle = 0, 2 * len(synthetic_data.SHAPES) + 1
    assert synthetic_data.object_name(red_square) == "a red square"
    assert synthetic_data.object_name(blue_circle) == "a blue circle"
    texts = [synthetic_data.caption_for(red_square, blue_circle, t) for t in range(len(synthetic_data.TEMPLATES))]
    reversed_texts = [
        synthetic_data.caption_for(blue_circle, red_square, t) for t in range(len(synthetic_data.TEMPLATES))
    ]
    assert "a red square then a blue circle" in texts
    assert "a red square appears after a blue circle" in reversed_texts
    assert not set(texts) & set(reversed_texts)


def test_each_event_is_a_run_of_frames_of_one_object():
    config = synthetic_data.SyntheticConfig(distractor_prob=0.0)
    rng = np.random.default_rng(0)
    lengths = synthetic_data.event_lengths(config.num_frames, rng)
    assert lengths.sum() == config.num_frames and lengths.min() >= synthetic_data.MIN_EVENT_FRAMES
    colours = list(synthetic_data.COLOURS.values())
    events = np.array([0, 9, 22])  # a red, a blue and an orange object
    frames = synthetic_data.render_clip(events, config, rng).astype(int)
    # The object colour that dominates each frame (backgrounds are dark grey) runs 0 ... 1 ... 2.
    shown = []
    for frame in frames:
        bright = frame[frame.max(-1) > 100]
        distance = [np.abs(bright - np.array(c)).sum(-1).mean() for c in colours]
        shown.append(int(np.argmin(distance)))
    expected = [int(e) // len(synthetic_data.SHAPES) for e in events]
    runs = [c for i, c in enumerate(shown) if i == 0 or shown[i - 1] != c]
    assert runs == expected


def test_same_seed_same_data():
    small = synthetic_data.SyntheticConfig(train_clips=5, test_families=2, seed=1)
    first, second = synthetic_data.make_split(small), synthetic_data.make_split(small)
    for a, b in zip(first, second, strict=False):
        np.testing.assert_array_equal(a.frames, b.frames)
        assert a.captions == b.captions
