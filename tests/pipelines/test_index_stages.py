"""The stage functions both engines share, `--workers auto` on a machine without a GPU, and joining a Ray cluster."""

import numpy as np
import pytest
import torch

from glscl_index.embedding import VideoEmbedder
from glscl_index.errors import ClusterUnavailableError, MissingExtraError
from glscl_index.video.decode import DecodedUnit
from pipelines.embed_job import auto_workers_for
from pipelines.index_stages import embed_units
from pipelines.ray_engine import _connect
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


class UnreachableRay:
    """Stands for the ``ray`` module where ``ray.init`` fails the way it does for a bad --ray-address."""

    def __init__(self, error: Exception):
        self.error = error

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs):
        raise self.error


@pytest.mark.parametrize("error, kind, fragments", [
    (ValueError("Ray Client requires pip package `ray[client]`. If you installed the minimal Ray, reinstall."),
     MissingExtraError, ["--ray-address ray://head:10001 needs Ray Client", "pip install 'ray[client]'"]),
    (ConnectionError("Could not find any running Ray instance. Please specify the one to connect to."),
     ClusterUnavailableError, ["cannot join the Ray cluster at ray://head:10001", "ray start --head"]),
])
def test_a_ray_address_that_cannot_be_joined_is_a_one_line_error(error, kind, fragments):
    with pytest.raises(kind) as raised:
        _connect(UnreachableRay(error), "ray://head:10001")
    message = str(raised.value)
    assert "\n" not in message and all(f in message for f in fragments), message
