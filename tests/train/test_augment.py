"""Clip-consistent RandAugment: one set of operations per clip, different clips differ, reproducible."""

import random

import numpy as np

from glscl_index.train.augment import ClipAugment


def frames_of(clips: int, per_clip: int, size: int = 48) -> np.ndarray:
    """``[clips, per_clip, size, size, 3]``: the frames of one clip are all the same image."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (clips, 1, size, size, 3), dtype=np.uint8)
    return np.repeat(base, per_clip, axis=1)


def test_every_frame_of_a_clip_gets_the_same_operations():
    frames = frames_of(clips=3, per_clip=4)  # identical frames within each clip
    out = ClipAugment(image_size=48)(frames, np.array([4, 4, 2]), seeds=np.array([7, 8, 9]))
    for clip, count in zip(out, (4, 4, 2), strict=False):
        assert all(np.array_equal(clip[0], frame) for frame in clip[1:count])  # same input, same ops: same output
    assert not np.array_equal(out, frames)  # it does change the pixels
    assert np.array_equal(out[2, 2:], frames[2, 2:])  # padding frames are left alone


def test_seeds_differ_but_a_seed_repeats_and_global_generators_are_untouched():
    frames = frames_of(clips=1, per_clip=2)
    augment = ClipAugment(image_size=48)
    random.seed(1)
    np.random.seed(1)
    before = random.random(), np.random.rand()
    random.seed(1)
    np.random.seed(1)
    first = augment(frames, np.array([2]), seeds=np.array([3]))
    assert (random.random(), np.random.rand()) == before
    assert np.array_equal(augment(frames, np.array([2]), seeds=np.array([3])), first)
    outputs = {augment(frames, np.array([2]), seeds=np.array([s])).tobytes() for s in range(6)}
    assert len(outputs) > 3
