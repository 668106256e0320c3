"""`lim_memory`: the official unmasked LIM is a recorded choice that changes the fingerprint; the default does not."""

import copy

import torch

from glscl_index.model.checkpoint import model_fingerprint
from glscl_index.model.glscl import GLSCL
from tests.tiny import tiny_model


def test_the_default_keeps_older_fingerprints_and_unmasked_gets_its_own():
    model = tiny_model()
    assert "lim_memory" not in model.config.fingerprint_dict()  # checkpoints written before the field still match
    official = copy.deepcopy(model)
    official.config.lim_memory = "unmasked"
    assert official.config.fingerprint_dict()["lim_memory"] == "unmasked"
    assert model_fingerprint(official) != model_fingerprint(model)


@torch.no_grad()
def test_unmasked_concepts_depend_on_padding_and_masked_ones_do_not():
    model = tiny_model().eval()
    frames = torch.randn(1, 5, 32)
    short = torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool)
    garbage = frames.clone()
    garbage[:, 3:] = 100.0  # whatever sits in the padded slots
    masked = model.embed_video(frames, short).concepts
    torch.testing.assert_close(model.embed_video(garbage, short).concepts, masked)
    official = GLSCL(copy.deepcopy(model.config)).eval()
    official.load_state_dict(model.state_dict())
    official.config.lim_memory = "unmasked"
    # The padded slots are blank frames there, whatever the caller put in them, and the queries read them.
    unmasked = official.embed_video(frames, short).concepts
    torch.testing.assert_close(official.embed_video(garbage, short).concepts, unmasked)
    assert not torch.allclose(unmasked, masked, atol=1e-4)
