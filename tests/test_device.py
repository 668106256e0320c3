"""Device choice: "auto" falls back to the CPU; asking for CUDA without a GPU is a DeviceError, not a model error."""

import pytest
import torch

from glscl_index.device import resolve_device
from glscl_index.errors import CheckpointError, DeviceError


def test_cuda_without_a_gpu_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA GPU") as raised:
        resolve_device("cuda")
    assert not isinstance(raised.value, CheckpointError) and raised.value.exit_code == 2
