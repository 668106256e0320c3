"""The combined score and batch invariance through the whole model."""

import torch

from glscl_index.model.score import glscl_score
from tests.model.helpers import reference_sim1
from tests.tiny import tiny_model


def test_score_is_sim1_plus_half_sim2():
    torch.manual_seed(4)
    sentence = torch.randn(2, 16)
    frames = torch.randn(3, 4, 16)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    W = torch.nn.functional.normalize(torch.randn(2, 5, 16), dim=-1)
    U = torch.nn.functional.normalize(torch.randn(3, 5, 16), dim=-1)
    scores = glscl_score(sentence, frames, mask, W, U, tau=3.0, local_weight=0.5)
    sim1, _ = reference_sim1(sentence, frames, mask, 3.0)
    sim2 = torch.tensor([[sum(float(W[q, k] @ U[v, k]) for k in range(5)) / 5 for v in range(3)] for q in range(2)])
    torch.testing.assert_close(scores.total.double(), sim1 + 0.5 * sim2.double(), atol=1e-5, rtol=1e-5)


def test_zero_shot_model_scores_with_sim1_only():
    model = tiny_model(trained=False)
    assert model.temporal is None and model.lim is None and model.zero_shot
    frames = torch.randn(2, 3, 32)
    mask = torch.ones(2, 3, dtype=torch.bool)
    video = model.embed_video(frames, mask)
    assert video.concepts is None
    torch.testing.assert_close(video.frames, frames)
    text = model.embed_text(model.backbone.tokenize(["a dog"]))
    assert text.concepts is None
    scores = model.score(text, video)
    sim1, _ = reference_sim1(text.sentence.detach(), frames, mask, 3.0)
    torch.testing.assert_close(scores.total.detach().double(), sim1, atol=1e-5, rtol=1e-5)
    assert scores.local is None


@torch.no_grad()
def test_batch_invariance_video_alone_or_in_batch():
    model = tiny_model()
    frames = torch.randn(4, 6, 32)
    mask = torch.tensor(
        [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool
    )
    text = model.embed_text(model.backbone.tokenize(["a red square", "two people dance in a kitchen"]))
    together = model.score(text, model.embed_video(frames, mask)).total
    for v in range(4):
        n = int(mask[v].sum())
        alone = model.score(text, model.embed_video(frames[v : v + 1, :n], mask[v : v + 1, :n])).total
        torch.testing.assert_close(alone[:, 0], together[:, v], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_batch_invariance_text_alone_or_in_batch():
    model = tiny_model()
    video = model.embed_video(torch.randn(3, 4, 32), torch.ones(3, 4, dtype=torch.bool))
    texts = ["a cat", "a very long description of a person slowly cooking pasta in a big kitchen"]
    together = model.score(model.embed_text(model.backbone.tokenize(texts)), video).total
    for i, text in enumerate(texts):
        alone = model.score(model.embed_text(model.backbone.tokenize([text])), video).total
        torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=1e-5)
