"""Starting a training run: CLIP weights get fresh GLSCL modules; ablation switches of the config."""

from __future__ import annotations

import pytest
import torch

from glscl_index.errors import CheckpointError
from glscl_index.model.checkpoint import save_checkpoint
from glscl_index.model.factory import create_random_model, trainable_model
from glscl_index.model.spec import ModelSpec
from tests.tiny import TINY_ARCH, tiny_model


def test_clip_weights_become_a_trained_mode_model(tmp_path):
    save_checkpoint(tiny_model(trained=False), tmp_path / "zs")
    model = trainable_model(ModelSpec(checkpoint=str(tmp_path / "zs")), num_queries=4)
    assert not model.zero_shot and model.config.num_queries == 4
    source = tiny_model(trained=False)
    torch.testing.assert_close(model.backbone.clip.visual.proj, source.backbone.clip.visual.proj)
    # The temporal encoder starts as a copy of the first text blocks (docs/architecture.md §2).
    first_text = source.backbone.clip.transformer.resblocks[0].attn.in_proj_weight
    torch.testing.assert_close(model.temporal.transformer.resblocks[0].attn.in_proj_weight, first_text)


def test_trained_checkpoint_continues_and_keeps_its_architecture(tiny_checkpoint):
    model = trainable_model(ModelSpec(checkpoint=str(tiny_checkpoint)))
    assert not model.zero_shot
    with pytest.raises(CheckpointError, match="architecture"):
        trainable_model(ModelSpec(checkpoint=str(tiny_checkpoint)), num_queries=2)


def test_mean_pooling_and_no_lim_ablations():
    mean = create_random_model(TINY_ARCH, trained=True, frame_pooling="mean", num_queries=0, decoder_ffn=64)
    assert mean.lim is None and mean.config.concepts == 0
    frames = torch.randn(3, 4, 32)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    video = mean.embed_video(frames, mask)
    text = mean.embed_text(mean.backbone.tokenize(["a", "b"]))
    assert video.concepts is None and text.concepts is None
    scores = mean.score(text, video)
    # Reference: cosine of the sentence with the plain mean of the real frames.
    pooled = torch.stack([video.frames[v][mask[v]].mean(0) for v in range(3)])
    expected = torch.nn.functional.cosine_similarity(text.sentence[:, None], pooled[None], dim=-1)
    torch.testing.assert_close(scores.total, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        create_random_model(TINY_ARCH, trained=True, frame_pooling="max")
