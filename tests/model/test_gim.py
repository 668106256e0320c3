"""GIM against a slow reference: loops over texts, videos and real frames only."""


import pytest
import torch

from glscl_index.model.gim import frame_weights, global_similarity
from tests.model.helpers import reference_sim1


def _inputs(texts=3):
    torch.manual_seed(1)
    sentence = torch.randn(texts, 16)
    frames = torch.randn(4, 5, 16)
    mask = torch.tensor(
        [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool
    )
    return sentence, frames, mask


@pytest.mark.parametrize("texts", [1, 3, 8])  # fewer texts than frames (g itself) and more (the Gram matrices)
def test_global_similarity_matches_reference(texts):
    sentence, frames, mask = _inputs(texts)
    sim, weights = global_similarity(sentence, frames, mask, tau=3.0)
    ref_sim, ref_weights = reference_sim1(sentence, frames, mask, tau=3.0)
    torch.testing.assert_close(sim.double(), ref_sim, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.double(), ref_weights, atol=1e-6, rtol=1e-5)


def test_padded_frames_change_nothing():
    sentence, frames, mask = _inputs()
    garbage = frames.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 16) * 100
    a, wa = global_similarity(sentence, frames, mask, tau=3.0)
    b, wb = global_similarity(sentence, garbage, mask, tau=3.0)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(wa, wb)
    assert torch.all(wb[:, ~mask] == 0)


def test_weights_pick_the_matching_frame():
    frames = torch.eye(4).unsqueeze(0) * 10  # video of 4 orthogonal frames
    sentence = torch.tensor([[0.0, 0.0, 10.0, 0.0]])
    weights = frame_weights(sentence, frames, torch.ones(1, 4, dtype=torch.bool), tau=3.0)
    assert int(weights[0, 0].argmax()) == 2


def test_temperature_sharpens():
    sentence, frames, mask = _inputs()
    soft = frame_weights(sentence, frames, mask, tau=100.0)
    sharp = frame_weights(sentence, frames, mask, tau=0.1)
    assert sharp.max(-1).values.mean() > soft.max(-1).values.mean()


def test_cosine_logits_match_a_reference_and_ignore_feature_norms():
    # Reference: softmax over real frames of cos(e, v_t) / tau, computed by F.cosine_similarity.
    sentence, frames, mask = _inputs()
    weights = frame_weights(sentence, frames, mask, tau=0.1, logits="cosine")
    cos = torch.nn.functional.cosine_similarity(sentence[:, None, None, :], frames[None], dim=-1)
    expected = torch.softmax((cos / 0.1).masked_fill(~mask.unsqueeze(0), float("-inf")), dim=-1)
    torch.testing.assert_close(weights, expected)
    # Rescaling every feature changes the paper's dot-product weights, not the cosine ones.
    scaled = frame_weights(sentence * 7, frames * 3, mask, tau=0.1, logits="cosine")
    torch.testing.assert_close(scaled, weights)
    assert not torch.allclose(
        frame_weights(sentence * 7, frames * 3, mask, tau=3.0), frame_weights(sentence, frames, mask, tau=3.0)
    )
    sim, _ = global_similarity(sentence, frames, mask, tau=0.1, logits="cosine")
    assert torch.isfinite(sim).all()
