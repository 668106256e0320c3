"""Two gloo processes with half a batch each compute the gradient of one process with the whole batch.

This is what the all-gather with gradients plus DistributedDataParallel's
averaging must give (open_clip's gather_with_grad reasoning); a lost factor
of the world size or a missing negative would make the weights differ.
"""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from glscl_index.model.factory import create_random_model
from glscl_index.train.config import TrainConfig
from glscl_index.train.frames import ClipFrames
from glscl_index.train.loop import TrainData, train
from tests.tiny import TINY_ARCH


def _model():
    # No dropout: ranks would draw other masks than the single process.
    return create_random_model(TINY_ARCH, trained=True, decoder_ffn=64, decoder_dropout=0.0)


def _data(model) -> TrainData:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(4, 4, 32, 32, 3), dtype=np.uint8)
    clips = ClipFrames(frames, np.array([4, 3, 2, 4]), np.arange(4))
    tokens = model.backbone.tokenize(["one", "two", "three", "four"])
    return TrainData(clips, tokens, np.arange(4))


CONFIG = TrainConfig(epochs=1, batch_size=4, lr_new=1e-2, lr_clip=1e-2, weight_decay=0.0, warmup_fraction=0.0)


def _rank_main(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    model = _model()
    train(model, _data(model), CONFIG, out_dir, resume=False)
    if rank == 0:
        torch.save(_gradients(model), os.path.join(out_dir, "distributed.pt"))
    torch.distributed.destroy_process_group()


def _gradients(model) -> dict[str, torch.Tensor]:
    # The step's gradients stay on the parameters (they are cleared before each backward, not after).
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path):
    mp.spawn(_rank_main, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    distributed = torch.load(tmp_path / "distributed.pt", weights_only=True)
    single = _model()
    train(single, _data(single), CONFIG, tmp_path / "single", resume=False)
    expected = _gradients(single)
    assert set(distributed) == set(expected) and any(g.abs().sum() > 0 for g in expected.values())
    for name, gradient in expected.items():
        # Adam's first step is ~lr * sign(g), which amplifies float noise; the gradients are what must agree.
        torch.testing.assert_close(distributed[name], gradient, rtol=1e-3, atol=1e-6, msg=name)
