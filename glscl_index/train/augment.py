"""Clip-consistent RandAugment for training frames: the same random operations on every frame of a clip.

The official GLSCL loader augments training clips with timm's RandAugment
("rand-m7-n4-mstd0.5-inc1": 4 operations at magnitude 7 +- 0.5, the
"increasing" operation set), drawing the operations once per clip so that the
clip stays temporally coherent. timm's transform draws its operations and
magnitudes from the global ``random`` and ``numpy.random`` generators per
image, so each frame of a clip is transformed with both generators reset to
the clip's seed: every frame then gets the same operations and magnitudes.
The generators' states are restored afterwards, so nothing else is disturbed.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

OFFICIAL_RANDAUGMENT = "rand-m7-n4-mstd0.5-inc1"


class ClipAugment:
    """uint8 clips ``[B, T, S, S, 3]`` with ``counts [B]`` real frames each -> augmented clips, same shape
    (the padding frames beyond each count are left as they are)."""

    def __init__(self, policy: str = OFFICIAL_RANDAUGMENT, image_size: int = 224):
        from timm.data.auto_augment import rand_augment_transform

        # As the official loader: translations up to 45% of the image side, bicubic resampling.
        self.transform = rand_augment_transform(
            policy, {"translate_const": int(image_size * 0.45), "interpolation": Image.Resampling.BICUBIC}
        )

    def __call__(self, clips: np.ndarray, counts: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Clip b is augmented from ``seeds[b]`` (int ``[B]``): reproducible, so a resumed run, or the same
        batch split across ranks, augments every clip the same way."""
        out = clips.copy()
        saved = random.getstate(), np.random.get_state()
        try:
            for clip, (count, seed) in enumerate(
                zip(np.asarray(counts, dtype=np.int64), np.asarray(seeds), strict=False)
            ):
                clip_seed = int(seed) % (2**32)
                for t in range(int(count)):
                    random.seed(clip_seed)
                    np.random.seed(clip_seed)
                    out[clip, t] = np.asarray(self.transform(Image.fromarray(clips[clip, t])))
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
        return out
