"""`gim_logits`: the cosine GIM is a recorded option with its own fingerprint; the paper's default keeps old ones."""

import copy

import pytest
import torch

from glscl_index.model.checkpoint import model_fingerprint
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.glscl import GLSCL
from tests.tiny import tiny_model


def test_the_default_keeps_older_fingerprints_and_cosine_gets_its_own():
    model = tiny_model()
    assert model.config.gim_logits == "dot"
    assert "gim_logits" not in model.config.fingerprint_dict()  # checkpoints written before the field still match
    cosine = copy.deepcopy(model)
    cosine.config.gim_logits = "cosine"
    assert cosine.config.fingerprint_dict()["gim_logits"] == "cosine"
    assert model_fingerprint(cosine) != model_fingerprint(model)


@torch.no_grad()
def test_the_model_scores_with_the_configured_logits():
    model = tiny_model().eval()
    cosine = GLSCL(copy.deepcopy(model.config)).eval()
    cosine.load_state_dict(model.state_dict())
    cosine.config.gim_logits = "cosine"
    frames, mask = torch.randn(2, 4, 32), torch.ones(2, 4, dtype=torch.bool)
    text = model.embed_text(model.backbone.tokenize(["a red square", "a blue circle"]))
    video = model.embed_video(frames, mask)
    dot_weights = model.score(text, video).frame_weights
    cos_weights = cosine.score(text, video).frame_weights
    assert not torch.allclose(dot_weights, cos_weights)
    # Scaling the stored frames leaves the cosine model's weights alone.
    scaled = copy.copy(video)
    scaled.frames = video.frames * 5
    torch.testing.assert_close(cosine.score(text, scaled).frame_weights, cos_weights)


def test_unknown_logits_are_refused():
    with pytest.raises(ValueError, match="gim_logits"):
        GLSCLConfig(gim_logits="euclid")
