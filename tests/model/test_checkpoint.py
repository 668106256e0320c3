"""Checkpoint format: bit-exact round trip, fingerprints, clear errors, local CLIP weights."""

import json

import pytest
import torch

from glscl_index.errors import CheckpointError, WeightsUnavailableError
from glscl_index.model.backbone import build_clip
from glscl_index.model.checkpoint import WEIGHTS_FILE, load_checkpoint, model_fingerprint, save_checkpoint
from glscl_index.model.factory import zero_shot_model
from tests.tiny import TINY_ARCH, tiny_model


def test_round_trip_is_bit_exact(tmp_path):
    model = tiny_model(trained=True, seed=3)
    digest = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(tmp_path / "ck")
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    assert loaded.config == model.config
    assert model_fingerprint(loaded) == digest


def test_changing_one_weight_changes_the_fingerprint(tmp_path):
    model = tiny_model()
    before = model_fingerprint(model)
    with torch.no_grad():
        model.lim.queries[0, 0] += 1e-3
    assert model_fingerprint(model) != before


def test_zero_shot_and_trained_fingerprints_differ():
    assert model_fingerprint(tiny_model(trained=True)) != model_fingerprint(tiny_model(trained=False))


def test_truncated_weights_give_clear_error(tmp_path):
    save_checkpoint(tiny_model(), tmp_path / "ck")
    weights = tmp_path / "ck" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(tmp_path / "ck")


def test_foreign_weights_file_gives_clear_error(tmp_path):
    save_checkpoint(tiny_model(), tmp_path / "ck")
    (tmp_path / "ck" / WEIGHTS_FILE).write_bytes(b"PK\x03\x04 this is not safetensors" * 10)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "ck")


def test_weights_of_another_model_are_rejected(tmp_path):
    save_checkpoint(tiny_model(trained=True), tmp_path / "a")
    save_checkpoint(tiny_model(trained=False), tmp_path / "b")
    (tmp_path / "a" / WEIGHTS_FILE).write_bytes((tmp_path / "b" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "a")


def test_modified_weights_fail_the_fingerprint_check(tmp_path):
    save_checkpoint(tiny_model(seed=1), tmp_path / "a")
    save_checkpoint(tiny_model(seed=2), tmp_path / "b")
    (tmp_path / "a" / WEIGHTS_FILE).write_bytes((tmp_path / "b" / WEIGHTS_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_checkpoint(tmp_path / "a")


def test_missing_or_garbled_config(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_checkpoint(tmp_path / "empty")
    save_checkpoint(tiny_model(), tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a GLSCL checkpoint"):
        load_checkpoint(tmp_path / "ck")


def test_local_clip_weights_file_loads_through_open_clip(tmp_path):
    """The real weights path (open_clip's checkpoint loader) with a tiny checkpoint saved here."""
    model = tiny_model(trained=False, seed=11)
    clip = build_clip(model.config)
    torch.manual_seed(12)
    for p in clip.parameters():
        p.data.normal_()
    path = tmp_path / "tiny_clip.pt"
    torch.save(clip.state_dict(), path)
    loaded = zero_shot_model(TINY_ARCH, str(path))
    assert loaded.zero_shot
    for key, value in clip.state_dict().items():
        assert torch.equal(loaded.backbone.clip.state_dict()[key], value), key


def test_local_torchscript_weights_file_loads(tmp_path):
    """OpenAI's released .pt files are TorchScript archives of QuickGELU models; they load too."""
    model = tiny_model(trained=False, seed=13)
    clip = build_clip(model.config)
    path = tmp_path / "openai_style.pt"
    torch.jit.script(clip).save(str(path))
    loaded = zero_shot_model(TINY_ARCH, str(path))
    assert loaded.config.quick_gelu
    for key, value in clip.state_dict().items():
        assert torch.equal(loaded.backbone.clip.state_dict()[key], value), key


def test_bad_weights_file_and_unknown_tag(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError):
        zero_shot_model(TINY_ARCH, str(bad))
    with pytest.raises(WeightsUnavailableError, match="neither a weights file nor a pretrained tag"):
        zero_shot_model("ViT-B-32", "no-such-tag")
    with pytest.raises(CheckpointError, match="unknown open_clip architecture"):
        zero_shot_model("ViT-Nope", "")
