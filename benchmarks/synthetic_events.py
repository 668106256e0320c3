"""A second synthetic family: two persistent events in order (issue 16).

A clip is ``T`` frames in which two objects (coloured shapes, the objects of
``synthetic_data``) appear one after the other and *stay in view*: the first
appears at frame 0 or 1, the second at least three frames later, and each
arrives with a motion (enters from the left, enters from the right, grows in
place, falls from the top) that takes two frames, then rests. So the frames
before the second onset show the first object alone, the later ones show
both. A caption names both events, motion included, and their order ("a red
square falls then a blue circle enters left"); some templates put the later
event first in the sentence.

What separates this from ``synthetic_data``: every late frame shows both
objects, so one frame (for example the last) names both objects but not their
order; the order is in which object is alone early on. A pooling that
collapses onto one frame cannot tell a clip from its counterpart.

Split (``make_split``): test clips come in counterpart pairs -- objects A, B
with motions mA, mB, and B, A with the same motions -- and every unordered
object pair occurs in one test pair only, so each test caption has exactly one
correct test clip. Training clips never show a test pair's two objects
together. Positions, timings and noise are drawn afresh for every clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from synthetic_data import COLOURS, SHAPES, SyntheticSplit, num_objects, object_name, shape_mask

MOTIONS: tuple[str, ...] = ("enters left", "enters right", "grows", "falls")
# {a} is the earlier event, {b} the later one (object and motion).
TEMPLATES: tuple[str, ...] = (
    "{a} then {b}",
    "{a} before {b}",
    "{b} after {a}",
    "first {a} , later {b}",
)
MOTION_FRAMES = 2  # frames an object moves before it rests
MIN_GAP = 3  # frames between the two onsets: the first object is alone in at least three frames


@dataclass(frozen=True)
class EventsConfig:
    num_frames: int = 8  # T
    image_size: int = 32  # S
    train_clips: int = 4500
    train_captions_per_clip: int = 2  # distinct templates: 9,000 training pairs, as synthetic_data's default
    test_families: int = 60  # each gives a clip and its counterpart
    test_captions_per_clip: int = 2
    distractor_prob: float = 0.5  # per frame
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_frames < 2 + MIN_GAP + MOTION_FRAMES:
            raise ValueError(f"num_frames must be >= {2 + MIN_GAP + MOTION_FRAMES}")
        if self.image_size < 16:
            raise ValueError("image_size must be >= 16")
        for name in ("train_captions_per_clip", "test_captions_per_clip"):
            if not 1 <= getattr(self, name) <= len(TEMPLATES):
                raise ValueError(f"{name} must be in 1..{len(TEMPLATES)}")


@dataclass
class EventsSplit(SyntheticSplit):
    """``SyntheticSplit`` with ``events`` int64 ``[N, 2]`` (objects in order), plus ``motions`` int64
    ``[N, 2]`` (index into MOTIONS, per event) and ``onsets`` int64 ``[N, 2]`` (first frame of each event)."""

    motions: np.ndarray | None = None
    onsets: np.ndarray | None = None


def event_phrase(obj: int, motion: int) -> str:
    return f"{object_name(obj)} {MOTIONS[motion]}"


def caption_for(events: np.ndarray, motions: np.ndarray, template: int) -> str:
    a, b = (event_phrase(int(o), int(m)) for o, m in zip(events, motions, strict=True))
    return TEMPLATES[template].format(a=a, b=b)


def draw_onsets(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``[2]`` onsets: the first at 0 or 1, the second >= MIN_GAP later and in view for >= 2 frames."""
    first = int(rng.integers(0, 2))
    second = int(rng.integers(first + MIN_GAP, num_frames - 1))
    return np.array([first, second], dtype=np.int64)


def _rest_positions(size: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Resting centres ``[2, 2]`` (y, x): one object in each half, the halves at random, never overlapping."""
    sides = rng.permutation([-1.0, 1.0])
    ys = rng.uniform(radius, size - radius, 2)
    xs = size / 2 + sides * rng.uniform(radius, size / 2 - radius, 2)
    return np.stack([ys, xs], axis=1)


def render_clip(
    events: np.ndarray, motions: np.ndarray, onsets: np.ndarray, config: EventsConfig, rng: np.random.Generator
) -> np.ndarray:
    """Objects, motions and onsets ``[2]`` each -> uint8 frames ``[T, S, S, 3]``."""
    size, colours = config.image_size, list(COLOURS.values())
    background = rng.integers(0, 50)
    frames = np.clip(
        background + rng.normal(0, 12, (config.num_frames, size, size, 3)), 0, 255
    ).astype(np.float32)
    radius = rng.uniform(0.18, 0.22) * size
    rest = _rest_positions(size, radius, rng)
    for obj, motion, onset, (ry, rx) in zip(events, motions, onsets, rest, strict=True):
        colour = np.asarray(colours[obj // len(SHAPES)], np.float32) + rng.normal(0, 12, 3)
        shape = SHAPES[obj % len(SHAPES)]
        for t in range(int(onset), config.num_frames):
            progress = min(1.0, (t - onset + 1) / MOTION_FRAMES)  # 1/2 on the first frame, 1 from the second
            cy, cx, r = ry, rx, radius
            name = MOTIONS[motion]
            if name == "enters left":
                cx = -radius + (rx + radius) * progress
            elif name == "enters right":
                cx = size + radius - (size + radius - rx) * progress
            elif name == "grows":
                r = radius * (0.35 + 0.65 * progress)
            else:  # falls
                cy = -radius + (ry + radius) * progress
            frames[t][shape_mask(shape, size, cy, cx, r)] = colour
    for frame in frames:
        if rng.random() < config.distractor_prob:
            grey = rng.uniform(110, 200)
            shape = SHAPES[rng.integers(len(SHAPES))]
            cy, cx = rng.uniform(2, size - 2, 2)
            frame[shape_mask(shape, size, cy, cx, rng.uniform(0.06, 0.1) * size)] = grey
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_pairs(count: int, rng: np.random.Generator) -> np.ndarray:
    """``[count, 2]`` distinct unordered object pairs (smaller id first)."""
    objects = num_objects()
    all_pairs = np.array([(a, b) for a in range(objects) for b in range(a + 1, objects)], dtype=np.int64)
    if count > len(all_pairs) // 2:
        raise ValueError(f"at most {len(all_pairs) // 2} test families (half the object pairs stay for training)")
    return all_pairs[rng.choice(len(all_pairs), count, replace=False)]


def build_split(
    events: np.ndarray, motions: np.ndarray, captions_per_clip: int, config: EventsConfig, rng: np.random.Generator
) -> EventsSplit:
    """Render clips ``events, motions [N, 2]`` and give each ``captions_per_clip`` captions of distinct templates."""
    onsets = np.stack([draw_onsets(config.num_frames, rng) for _ in events])
    frames = np.stack([render_clip(e, m, o, config, rng) for e, m, o in zip(events, motions, onsets, strict=True)])
    captions, caption_clip, caption_events = [], [], []
    for clip, (pair, motion) in enumerate(zip(events, motions, strict=True)):
        for template in rng.choice(len(TEMPLATES), captions_per_clip, replace=False):
            captions.append(caption_for(pair, motion, int(template)))
            caption_clip.append(clip)
            caption_events.append(pair)
    return EventsSplit(
        frames=frames, events=events, captions=captions,
        caption_clip=np.asarray(caption_clip, dtype=np.int64),
        caption_events=np.asarray(caption_events, dtype=np.int64).reshape(-1, 2),
        motions=motions, onsets=onsets,
    )


def make_split(config: EventsConfig) -> tuple[EventsSplit, EventsSplit]:
    """(train, test). Test clip 2i shows pair i in one order, clip 2i+1 in the other, same motion per object."""
    rng = np.random.default_rng([config.seed, 11])
    held = test_pairs(config.test_families, rng)
    test_motions = rng.integers(0, len(MOTIONS), (config.test_families, 2))
    test_events = np.stack([held, held[:, ::-1]], axis=1).reshape(-1, 2)
    test_motion_rows = np.stack([test_motions, test_motions[:, ::-1]], axis=1).reshape(-1, 2)
    forbidden = {frozenset(map(int, pair)) for pair in held}
    train_events = []
    while len(train_events) < config.train_clips:
        pair = rng.choice(num_objects(), 2, replace=False)
        if frozenset(map(int, pair)) not in forbidden:
            train_events.append(pair)
    train_motions = rng.integers(0, len(MOTIONS), (config.train_clips, 2))
    train = build_split(
        np.asarray(train_events, dtype=np.int64), train_motions, config.train_captions_per_clip, config, rng
    )
    test = build_split(
        test_events, test_motion_rows, config.test_captions_per_clip, config, np.random.default_rng([config.seed, 12])
    )
    return train, test
