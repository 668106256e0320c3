"""Random weights are called random: recorded in the checkpoint, shown with the mode, cleared by training."""

from glscl_index.model.checkpoint import load_checkpoint, model_fingerprint, save_checkpoint
from glscl_index.model.factory import trainable_model
from glscl_index.model.spec import ModelSpec
from glscl_index.store.stats import describe_model
from tests.tiny import tiny_model


def test_a_random_model_says_so_and_keeps_its_fingerprint(tmp_path):
    model = tiny_model()
    assert model.config.random_weights and model.config.mode_label == "trained (random weights)"
    digest = save_checkpoint(model, tmp_path / "ck")
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.config.random_weights and model_fingerprint(loaded) == digest
    # Provenance, not a score setting: the fingerprint does not depend on it (older indexes keep matching).
    loaded.config.random_weights = False
    assert model_fingerprint(loaded) == digest
    record = describe_model({"glscl": model.config.to_dict()}, 32, 8, 12)
    assert record["mode"] == "trained" and record["random_weights"] is True


def test_what_training_writes_is_not_random(tmp_path):
    save_checkpoint(tiny_model(), tmp_path / "ck")
    assert not trainable_model(ModelSpec(checkpoint=str(tmp_path / "ck"))).config.random_weights
    save_checkpoint(tiny_model(trained=False), tmp_path / "zs")
    assert not trainable_model(ModelSpec(checkpoint=str(tmp_path / "zs"))).config.random_weights
