"""The stage functions both engines share, and `--workers auto` on a machine without a GPU."""

import numpy as np
import torch

from glscl_index.embedding import VideoEmbedder
from glscl_index.video.decode import DecodedUnit
from pipelines.embed_job import auto_workers_for
from pipelines.index_stages import embed_units
from tests.tiny import tiny_model


def unit(segment, frames, size, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return DecodedUnit(segment, 2.0 * segment, 2.0 * segment + 2, np.arange(frames, dtype=np.float32), pixels)


def test_embed_units_is_per_unit_whatever_the_batch():
    # Reference: each unit embedded alone. Rows must not depend on which units share a batch (the
    # local and the Ray engine batch different units together).
    embedder = VideoEmbedder(tiny_model(), torch.device("cpu"), batch_frames=3)
    size = embedder.model.config.image_size
    units = [unit(0, 2, size, 0), unit(1, embedder.num_frames, size, 1), unit(2, 1, size, 2)]
    together = embed_units(embedder, units)
    alone = [embed_units(embedder, [u]) for u in units]
    for i, row in enumerate(alone):
        np.testing.assert_array_equal(together.num_frames[i], row.num_frames[0])
        np.testing.assert_array_equal(together.timestamps_s[i], row.timestamps_s[0])
        np.testing.assert_allclose(together.frame_features[i], row.frame_features[0], atol=2e-3)
        np.testing.assert_allclose(together.visual_concepts[i], row.visual_concepts[0], atol=2e-3)
    assert not together.frame_features[0, 2:].any() and not together.timestamps_s[2, 1:].any()  # padding is zero


def test_auto_workers_on_cpu_keep_the_configured_count():
    embedder = VideoEmbedder(tiny_model(), torch.device("cpu"))
    assert auto_workers_for(embedder, 3) == 3
