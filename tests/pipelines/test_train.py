"""The training job as a library call: dataset -> decoded clips -> checkpoints; resumability rules."""

from __future__ import annotations

import json

import pytest

from glscl_index.errors import CheckpointError, DatasetError
from glscl_index.model.checkpoint import load_checkpoint
from glscl_index.model.spec import ModelSpec
from glscl_index.train.config import TrainConfig
from glscl_index.video.workers import DecodeConfig
from pipelines.train import DatasetSource, TrainJobConfig, run_train
from tests.media import make_broken_files, make_clip
from tests.tiny import TINY_ARCH


@pytest.fixture()
def generic(tmp_path):
    rows = []
    for i, rgb in enumerate([(220, 30, 30), (30, 200, 40), (30, 40, 220)]):
        make_clip(tmp_path / "videos" / f"c{i}.mp4", seconds=2.0, fps=5, size=(64, 48), color=rgb)
        rows.append({"video": f"c{i}.mp4", "caption": f"clip number {i}"})
    broken = make_broken_files(tmp_path / "videos")
    first_broken = min(broken.values())
    rows.append({"video": str(first_broken), "caption": "a broken file"})
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _job(root, skip_missing, **train) -> TrainJobConfig:
    settings = {"epochs": 1, "batch_size": 2, "lr_new": 1e-3, "lr_clip": 1e-3}
    settings.update(train)
    return TrainJobConfig(
        dataset=DatasetSource("generic", root / "captions.jsonl", root / "videos", skip_missing),
        output=root / "run",
        model=ModelSpec(clip_model=TINY_ARCH, pretrained=""),
        model_overrides={"num_queries": 4, "decoder_ffn": 64},
        train=TrainConfig(**settings),
        device="cpu",
        decode=DecodeConfig(workers=1),
    )


def test_undecodable_video_fails_before_training_unless_skipped(generic):
    with pytest.raises(DatasetError, match="--skip-missing"):
        run_train(_job(generic, skip_missing=False))
    assert not (generic / "run" / "last").exists()
    result, training, _ = run_train(_job(generic, skip_missing=True))
    assert len(training.split.clips) == 3 and training.split.skipped == 1
    assert result.steps == 1  # 3 pairs, batch 2: the ragged tail is dropped
    model = load_checkpoint(result.last_dir)
    assert model.config.num_queries == 4 and not model.zero_shot


def test_resume_with_other_settings_is_refused(generic):
    run_train(_job(generic, skip_missing=True))
    with pytest.raises(CheckpointError, match="other settings"):
        run_train(_job(generic, skip_missing=True, epochs=2))
