"""Procedural text-video data whose captions need time and object identity.

A clip is ``T`` frames of three *events*: a coloured shape (one of
``len(COLOURS) * len(SHAPES)`` objects) shown for a contiguous run of frames,
drifting near the centre, on a noisy background with small grey distractor
shapes. A caption
names two of the three events in their temporal order, with one of several
templates (some put the later event first in the sentence: "a blue circle
after a red square"). So no single frame answers a caption (it shows one
object), and an unordered bag of the frames does not either: the test set
holds every clip together with its reversal (the same frames played
backwards: events C, B, A instead of A, B, C), which satisfies the opposite
captions.

Split (``make_split``): test clips come in reversed pairs chosen so that each
ordered object pair occurs in at most one test clip; every test caption then
has exactly one correct test clip. Training clips are random event triples
whose object *set* is never a test clip's set, rendered with another seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 235),
    "yellow": (230, 215, 40), "purple": (165, 60, 210), "orange": (240, 140, 30),
}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle", "cross")
# {a} is the earlier event, {b} the later one.
TEMPLATES: tuple[str, ...] = (
    "{a} then {b}",
    "{a} appears before {b}",
    "{b} appears after {a}",
    "first {a} , later {b}",
)
EVENTS = 3
MIN_EVENT_FRAMES = 2


@dataclass(frozen=True)
class SyntheticConfig:
    num_frames: int = 8  # T
    image_size: int = 32  # S
    train_clips: int = 3000
    test_families: int = 60  # each gives a clip and its reversal
    distractor_prob: float = 0.5  # per frame
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_frames < EVENTS * MIN_EVENT_FRAMES:
            raise ValueError(f"num_frames must be >= {EVENTS * MIN_EVENT_FRAMES}")
        if self.image_size < 16:
            raise ValueError("image_size must be >= 16")


@dataclass
class SyntheticSplit:
    """Clips and captions of one split.

    ``frames`` uint8 ``[N, T, S, S, 3]``; ``events`` int64 ``[N, 3]`` object ids in
    temporal order; ``captions [C]`` with ``caption_clip`` int64 ``[C]`` (clip of
    each caption) and ``caption_events`` int64 ``[C, 2]`` (earlier, later object).
    """

    frames: np.ndarray
    events: np.ndarray
    captions: list[str]
    caption_clip: np.ndarray
    caption_events: np.ndarray


def num_objects() -> int:
    return len(COLOURS) * len(SHAPES)


def object_name(obj: int) -> str:
    """Object id -> "a red square", "an orange cross"."""
    colour = list(COLOURS)[obj // len(SHAPES)]
    article = "an" if colour[0] in "aeiou" else "a"
    return f"{article} {colour} {SHAPES[obj % len(SHAPES)]}"


def caption_for(earlier: int, later: int, template: int) -> str:
    return TEMPLATES[template].format(a=object_name(earlier), b=object_name(later))


def ordered_pairs(events: np.ndarray) -> list[tuple[int, int]]:
    """The (earlier, later) object pairs of one clip's events, in caption order."""
    return [(int(events[i]), int(events[j])) for i in range(len(events)) for j in range(i + 1, len(events))]


def shape_mask(shape: str, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """Boolean ``[size, size]`` mask of one shape centred at (cy, cx)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy, dx = y - cy, x - cx
    if shape == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    if shape == "circle":
        return dy * dy + dx * dx <= radius * radius
    if shape == "triangle":  # apex up
        inside_height = (dy >= -radius) & (dy <= radius * 0.8)
        return inside_height & (np.abs(dx) <= (dy + radius) * 0.55)
    if shape == "cross":
        arm = radius * 0.32
        return ((np.abs(dy) <= arm) & (np.abs(dx) <= radius)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= radius))
    raise ValueError(f"unknown shape {shape!r}")


def event_lengths(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Random run lengths ``[3]`` of the events, each >= MIN_EVENT_FRAMES, summing to T."""
    spare = num_frames - EVENTS * MIN_EVENT_FRAMES
    cuts = np.sort(rng.integers(0, spare + 1, EVENTS - 1))
    return np.diff(np.concatenate([[0], cuts, [spare]])) + MIN_EVENT_FRAMES


def render_clip(events: np.ndarray, config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Object ids ``[3]`` in temporal order -> uint8 frames ``[T, S, S, 3]``."""
    size, colours = config.image_size, list(COLOURS.values())
    background = rng.integers(0, 50)
    frames = np.clip(
        background + rng.normal(0, 12, (config.num_frames, size, size, 3)), 0, 255
    ).astype(np.float32)
    t = 0
    for obj, length in zip(events, event_lengths(config.num_frames, rng), strict=False):
        colour = np.asarray(colours[obj // len(SHAPES)], np.float32) + rng.normal(0, 12, 3)
        shape = SHAPES[obj % len(SHAPES)]
        # Large and near the centre, drifting a little: identity is easy to see in one frame, so
        # what the benchmark measures is combining frames (which objects, in which order).
        radius = rng.uniform(0.3, 0.38) * size
        start = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
        end = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
        for step in range(length):
            cy, cx = start + (end - start) * step / max(1, length - 1)
            frames[t][shape_mask(shape, size, cy, cx, radius)] = colour
            t += 1
    for frame in frames:
        if rng.random() < config.distractor_prob:
            grey = rng.uniform(110, 200)
            shape = SHAPES[rng.integers(len(SHAPES))]
            cy, cx = rng.uniform(2, size - 2, 2)
            frame[shape_mask(shape, size, cy, cx, rng.uniform(0.06, 0.1) * size)] = grey
    return np.clip(frames, 0, 255).astype(np.uint8)


def reversal_families(count: int, rng: np.random.Generator, max_tries: int = 20000) -> np.ndarray:
    """Event triples ``[2 * count, 3]``: clip 2i and its reversal 2i+1, no ordered pair used twice."""
    used: set[tuple[int, int]] = set()
    triples = []
    for _ in range(max_tries):
        if len(triples) == 2 * count:
            break
        events = rng.choice(num_objects(), EVENTS, replace=False)
        pairs = ordered_pairs(events) + ordered_pairs(events[::-1])
        if used.isdisjoint(pairs):
            used.update(pairs)
            triples += [events, events[::-1].copy()]
    if len(triples) < 2 * count:
        raise ValueError(f"cannot draw {count} test families with unique ordered pairs; ask for fewer")
    return np.asarray(triples, dtype=np.int64)


def train_triples(count: int, held_out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random event triples ``[count, 3]`` whose object set is not any held-out triple's set."""
    forbidden = {frozenset(map(int, t)) for t in held_out}
    triples = []
    while len(triples) < count:
        events = rng.choice(num_objects(), EVENTS, replace=False)
        if frozenset(map(int, events)) not in forbidden:
            triples.append(events)
    return np.asarray(triples, dtype=np.int64)


def build_split(
    triples: np.ndarray, config: SyntheticConfig, rng: np.random.Generator, reversal_pairs: bool = False
) -> SyntheticSplit:
    """Render clips and caption them: every ordered pair of a clip once, with a random template.

    With ``reversal_pairs``, clip 2i+1 (events of clip 2i reversed) is clip 2i's frames played
    backwards: the same set of frames, only their order differs.
    """
    if reversal_pairs:
        forward = [render_clip(events, config, rng) for events in triples[0::2]]
        frames = np.stack([clip[::-1] if i % 2 else clip for clip in forward for i in range(2)])
    else:
        frames = np.stack([render_clip(events, config, rng) for events in triples])
    captions, caption_clip, caption_events = [], [], []
    for clip, events in enumerate(triples):
        for earlier, later in ordered_pairs(events):
            captions.append(caption_for(earlier, later, int(rng.integers(len(TEMPLATES)))))
            caption_clip.append(clip)
            caption_events.append((earlier, later))
    return SyntheticSplit(
        frames=frames, events=triples, captions=captions,
        caption_clip=np.asarray(caption_clip, dtype=np.int64),
        caption_events=np.asarray(caption_events, dtype=np.int64),
    )


def make_split(config: SyntheticConfig) -> tuple[SyntheticSplit, SyntheticSplit]:
    """(train, test): three captions per clip (each ordered pair once, random template)."""
    rng = np.random.default_rng([config.seed, 1])
    held_out = reversal_families(config.test_families, rng)
    train = build_split(train_triples(config.train_clips, held_out, rng), config, rng)
    test = build_split(held_out, config, np.random.default_rng([config.seed, 2]), reversal_pairs=True)
    return train, test
