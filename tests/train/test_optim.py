"""Optimiser groups and the warm-up + cosine schedule of the reference recipe (docs/architecture.md §2)."""

from __future__ import annotations

import math

import pytest

from glscl_index.train.config import TrainConfig
from glscl_index.train.optim import build_optimizer, parameter_groups, warmup_cosine
from tests.tiny import tiny_model


def test_new_modules_and_clip_get_their_own_learning_rates():
    model = tiny_model()
    config = TrainConfig(lr_new=1e-4, lr_clip=1e-7, weight_decay=0.2)
    groups = {g["name"]: g for g in parameter_groups(model, config)}
    assert set(groups) == {"new", "new-no-decay", "clip", "clip-no-decay"}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in groups.values():
        members = [names[id(p)] for p in group["params"]]
        assert all(n.startswith("backbone.") == group["name"].startswith("clip") for n in members)
        assert group["lr"] == (1e-7 if group["name"].startswith("clip") else 1e-4)
        decayed = [n for n in members if group["weight_decay"] > 0]
        assert all("bias" not in n and "ln_" not in n and "embedding" not in n for n in decayed)
    every = sum(len(g["params"]) for g in groups.values())
    assert every == len(list(model.parameters()))
    assert "backbone.clip.logit_scale" in [names[id(p)] for p in groups["clip-no-decay"]["params"]]
    assert "lim.queries" in [names[id(p)] for p in groups["new-no-decay"]["params"]]
    assert len(build_optimizer(model, config).param_groups) == 4


def test_warmup_then_cosine():
    total, warmup = 100, 0.1
    assert warmup_cosine(0, total, warmup) == pytest.approx(0.1)
    assert warmup_cosine(9, total, warmup) == pytest.approx(1.0)
    assert warmup_cosine(10, total, warmup) == pytest.approx(1.0)
    halfway = 10 + 45
    assert warmup_cosine(halfway, total, warmup) == pytest.approx(0.5)
    assert warmup_cosine(99, total, warmup) == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))
    assert warmup_cosine(5, total, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 100)))


def test_config_round_trips_and_rejects_nonsense():
    config = TrainConfig(epochs=2, batch_size=8)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        TrainConfig(batch_size=1)
    with pytest.raises(ValueError):
        TrainConfig.from_dict({"epoch": 3})
