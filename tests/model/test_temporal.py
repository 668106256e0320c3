"""Temporal encoder: residual form, masking, CLIP initialisation."""

import torch

from tests.tiny import tiny_model


def test_padding_frames_change_nothing_and_are_zeroed():
    model = tiny_model()
    frames = torch.randn(2, 5, 32)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    out = model.temporal(frames, mask)
    garbage = frames.clone()
    garbage[0, 2:] = 1000.0
    out2 = model.temporal(garbage, mask)
    torch.testing.assert_close(out2[0, :2], out[0, :2], atol=1e-5, rtol=1e-5)
    assert torch.all(out[0, 2:] == 0)
    alone = model.temporal(frames[:1, :2], mask[:1, :2])
    torch.testing.assert_close(alone[0], out[0, :2], atol=1e-5, rtol=1e-5)


def test_residual_form():
    """With every block zeroed, TE is the identity (blocks are residual), so v_t = f_t + (f_t + p_t)."""
    model = tiny_model()
    for block in model.temporal.transformer.resblocks:
        for p in block.parameters():
            p.data.zero_()
    frames = torch.randn(1, 3, 32)
    positions = model.temporal.position_embeddings.weight[:3]
    expected = 2 * frames + positions
    torch.testing.assert_close(model.temporal(frames, torch.ones(1, 3, dtype=torch.bool)), expected)


def test_initialised_from_clip_text_transformer():
    model = tiny_model()
    text_blocks = model.backbone.clip.transformer.resblocks
    for target, source in zip(model.temporal.transformer.resblocks, text_blocks, strict=False):
        for (name, a), (_, b) in zip(target.state_dict().items(), source.state_dict().items(), strict=False):
            assert torch.equal(a, b), name
    rows = model.temporal.position_embeddings.num_embeddings
    assert torch.equal(model.temporal.position_embeddings.weight, model.backbone.clip.positional_embedding[:rows])
