"""`--recipe official`: each setting of the official code's MSR-VTT run, and what it does to the optimiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from glscl_index.train.config import TrainConfig, recipe
from glscl_index.train.frames import ClipFrames
from glscl_index.train.loop import TrainData, train
from glscl_index.train.optim import gradient_clip, official_warmup_cosine, parameter_groups
from tests.tiny import tiny_model


def test_the_official_recipe_sets_the_official_values_and_paper_is_the_default():
    official = recipe("official")
    assert official.loss.consistency_weight == 0.02 and official.loss.diversity_weight == 1e-4
    assert (official.schedule, official.no_decay, official.grad_clip_per_rank) == ("official", "bias", True)
    assert (official.frame_positions, official.resize) == ("floor", "pil")
    assert official.freezes_clip and official.lr_new == 1e-4 and official.augment == "rand-m7-n4-mstd0.5-inc1"
    assert recipe("paper") == TrainConfig()
    assert recipe("official", epochs=1).epochs == 1
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("mine")


def test_official_schedule_is_a_cosine_over_the_whole_run():
    total, warmup = 100, 0.1
    assert official_warmup_cosine(0, total, warmup) == pytest.approx(0.1)  # x = 1/100, x / 0.1
    assert official_warmup_cosine(9, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert official_warmup_cosine(49, total, warmup) == pytest.approx(0.5)
    assert official_warmup_cosine(99, total, warmup) == pytest.approx(0.0, abs=1e-12)


def test_official_decay_exempts_biases_only_and_clipping_scales_with_ranks():
    model = tiny_model()
    groups = parameter_groups(model, recipe("official", lr_clip=1e-7))
    names = {id(p): n for n, p in model.named_parameters()}
    exempt = [names[id(p)] for g in groups if g["weight_decay"] == 0 for p in g["params"]]
    assert exempt and all(n.endswith("bias") for n in exempt)
    decayed = [names[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    assert "lim.queries" in decayed and any("ln_" in n for n in decayed)
    assert gradient_clip(recipe("official"), world_size=4) == 4.0 and gradient_clip(TrainConfig(), 4) == 1.0


def test_lr_clip_zero_freezes_the_clip_towers(tmp_path):
    model = tiny_model()
    rng = np.random.default_rng(0)
    frames = ClipFrames(rng.integers(0, 255, (4, 3, 32, 32, 3), dtype=np.uint8), np.array([3, 2, 3, 1]), np.arange(4))
    data = TrainData(frames, model.backbone.tokenize(["one", "two", "three", "four"]), np.arange(4))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Four steps: the official cosine is 0 at the last step of a run, so one step would not move anything.
    config = recipe("official", epochs=2, batch_size=2, lr_new=1e-2, warmup_fraction=0.0, augment="")
    train(model, data, config, tmp_path, resume=False)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if n.startswith("backbone."))
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("lim."))
