"""Which torch device a job runs on."""

from __future__ import annotations

import torch

from glscl_index.errors import DeviceError


def resolve_device(device: str) -> torch.device:
    """"auto" -> cuda when available else cpu; "cuda" without a GPU is a DeviceError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for but no CUDA GPU is available")
    return torch.device(device)
