"""The training loop: the loss falls, resuming equals a straight run, checkpoints are usable."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from glscl_index.errors import CheckpointError
from glscl_index.model.checkpoint import load_checkpoint
from glscl_index.model.factory import create_random_model
from glscl_index.train.config import TrainConfig
from glscl_index.train.loop import EvalData, TrainData, train
from tests.tiny import TINY_ARCH, tiny_model


def _data(model, split, frames) -> TrainData:
    texts = [text for text, _ in split.pairs()]
    return TrainData(frames, model.backbone.tokenize(texts), np.array([i for _, i in split.pairs()]))


def _config(**overrides) -> TrainConfig:
    # From-scratch tiny towers need far larger steps than the fine-tuning recipe, and RandAugment
    # (tested on its own, and with ranks in test_distributed.py) would hide the 6 colours they learn.
    settings = {
        "augment": "",
        "epochs": 4,
        "batch_size": 6,
        "lr_new": 1e-3,
        "lr_clip": 1e-3,
        "weight_decay": 0.0,
        "warmup_fraction": 0.0,
        "seed": 3,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


class Recorder:
    def __init__(self):
        self.losses = []

    def on_start(self, total_steps, start_step):
        self.start = start_step

    def on_step(self, log):
        self.losses.append(log.loss)

    def on_epoch(self, epoch, report, is_best):
        pass


@pytest.mark.slow
def test_loss_falls(colour_split, colour_frames, tmp_path):
    model = tiny_model()
    recorder = Recorder()
    result = train(model, _data(model, colour_split, colour_frames), _config(epochs=30), tmp_path, callbacks=recorder)
    assert result.steps == 60
    # Chance level for 6 videos is ln 6 = 1.79; a collapsed model sits there, a learning one goes well below.
    first, last = np.mean(recorder.losses[:5]), np.mean(recorder.losses[-5:])
    assert last < 0.5 * first, (first, last)


class Interrupt(Recorder):
    """Ctrl-C after ``at`` steps."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_step(self, log):
        if log.step == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_resume_continues_like_a_straight_run(colour_split, colour_frames, tmp_path):
    config = _config(epochs=3, save_every_steps=1)
    straight = tiny_model()
    train(straight, _data(straight, colour_split, colour_frames), config, tmp_path / "straight")

    first = tiny_model()
    try:
        train(first, _data(first, colour_split, colour_frames), config, tmp_path / "resumed", callbacks=Interrupt(4))
    except KeyboardInterrupt:
        pass
    resumed, recorder = tiny_model(), Recorder()
    result = train(
        resumed, _data(resumed, colour_split, colour_frames), config, tmp_path / "resumed", callbacks=recorder
    )
    assert recorder.start == 3  # the step of the last save before the interrupt
    assert result.steps == 6
    for name, tensor in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, msg=name)


def test_resuming_with_another_model_shape_is_refused(colour_split, colour_frames, tmp_path):
    model = tiny_model()
    train(model, _data(model, colour_split, colour_frames), _config(epochs=1), tmp_path)
    other = create_random_model(TINY_ARCH, trained=True, decoder_ffn=64, temperature=2.0)  # no tensor changes
    with pytest.raises(CheckpointError, match="another shape"):
        train(other, _data(other, colour_split, colour_frames), _config(epochs=2), tmp_path)


def test_history_has_each_epochs_mean_losses(colour_split, colour_frames, tmp_path):
    model, recorder = tiny_model(), Recorder()
    result = train(model, _data(model, colour_split, colour_frames), _config(epochs=2), tmp_path, callbacks=recorder)
    assert [entry["loss"]["steps"] for entry in result.history] == [2, 2]
    assert result.history[1]["loss"]["total"] == pytest.approx(np.mean(recorder.losses[2:]))
    assert set(result.history[0]["loss"]) == {"total", "contrastive", "diversity", "consistency", "steps"}


def test_best_checkpoint_is_kept_and_loads(colour_split, colour_frames, tmp_path):
    model = tiny_model()
    texts, caption_clip = colour_split.queries()
    validation = EvalData(colour_frames, texts, caption_clip)
    result = train(model, _data(model, colour_split, colour_frames), _config(epochs=2), tmp_path, validation=validation)
    assert result.best_r1 is not None and 0 <= result.best_r1 <= 100
    assert len(result.history) == 2 and any(entry["best"] for entry in result.history)
    best = load_checkpoint(result.best_dir)
    assert not best.zero_shot
    assert (result.best_dir / "metrics.json").is_file()


def test_eval_every_validates_mid_epoch_and_keeps_the_best_step(colour_split, colour_frames, tmp_path):
    model = tiny_model()
    texts, caption_clip = colour_split.queries()
    validation = EvalData(colour_frames, texts, caption_clip)
    data = _data(model, colour_split, colour_frames)
    result = train(model, data, _config(epochs=2, eval_every_steps=1), tmp_path, validation=validation)
    # 2 steps per epoch: a validation after every step, each epoch's last one at its end.
    assert [(entry["epoch"], entry["step"]) for entry in result.history] == [(0, 1), (0, 2), (1, 3), (1, 4)]
    best = max(result.history, key=lambda entry: (entry["validation"]["text_to_video"]["R@1"], -entry["step"]))
    metrics = json.loads((result.best_dir / "metrics.json").read_text())
    assert metrics["step"] == best["step"] and result.best_r1 == best["validation"]["text_to_video"]["R@1"]
