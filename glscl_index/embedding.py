"""Batched model inference for indexing: decoded frames -> what an index stores per unit."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from glscl_index.model.glscl import GLSCL


@dataclass
class UnitEmbeddings:
    """Per-unit features of U units, padded to T frames."""

    frames: np.ndarray  # float16 [U, T, D] temporal-encoder output, zero on padding
    mask: np.ndarray  # bool [U, T]
    concepts: np.ndarray  # float16 [U, K, D] (K = 0 in zero-shot mode)


class VideoEmbedder:
    """Runs the GLSCL visual branch on batches of decoded frames (fp16 on GPU, fp32 on CPU).

    On a GPU each chunk travels as uint8 (half the bytes of fp16) from page-locked memory, so the copy is
    asynchronous and overlaps the previous chunk's forward pass; it is normalised and run in fp16 there.
    """

    def __init__(self, model: GLSCL, device: torch.device, batch_frames: int = 256):
        self.model = model.to(device).eval()
        self.device = device
        self.batch_frames = batch_frames
        self.num_frames = model.config.num_frames

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def embed(self, frames: np.ndarray, counts: np.ndarray) -> UnitEmbeddings:
        """frames uint8 ``[F, S, S, 3]`` of U units back to back, counts ``[U]`` (frames per unit, sum F)."""
        counts = np.asarray(counts, dtype=np.int64)
        if counts.max(initial=0) > self.num_frames:
            raise ValueError(f"a unit has {counts.max()} frames; the model takes at most {self.num_frames}")
        pixels = torch.from_numpy(np.ascontiguousarray(frames))
        with self._autocast():
            features = torch.cat(
                [
                    self.model.encode_frames(self._to_device(chunk)).float()
                    for chunk in pixels.split(self.batch_frames)
                ]
            )
            padded, mask = self._pad(features, counts)
            video = self.model.embed_video(padded, mask)
        num_units = len(counts)
        concepts = (
            video.concepts.float()
            if video.concepts is not None
            else torch.zeros(num_units, 0, features.shape[1], device=features.device)
        )
        return UnitEmbeddings(
            frames=video.frames.float().cpu().numpy().astype(np.float16),
            mask=mask.cpu().numpy(),
            concepts=concepts.cpu().numpy().astype(np.float16),
        )

    def _to_device(self, chunk: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return chunk
        # non_blocking only overlaps the copy with compute when the source is pinned.
        return chunk.pin_memory().to(self.device, non_blocking=True)

    def _pad(self, features: torch.Tensor, counts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Scatter ``[F, D]`` frame features into ``[U, T, D]`` with a ``[U, T]`` mask, without a loop."""
        device = features.device
        counts_t = torch.from_numpy(counts).to(device)
        unit_of_frame = torch.repeat_interleave(torch.arange(len(counts), device=device), counts_t)
        starts = torch.cumsum(counts_t, 0) - counts_t
        position = torch.arange(features.shape[0], device=device) - starts[unit_of_frame]
        padded = features.new_zeros(len(counts), self.num_frames, features.shape[1])
        padded[unit_of_frame, position] = features
        mask = torch.arange(self.num_frames, device=device).unsqueeze(0) < counts_t.unsqueeze(1)
        return padded, mask


def measure_model_rate(embedder: VideoEmbedder, units: int = 8) -> float:
    """Frames per second the model embeds (one full-size batch of blank units, after one warm-up pass)."""
    size = embedder.model.config.image_size
    frames = np.zeros((units * embedder.num_frames, size, size, 3), dtype=np.uint8)
    counts = np.full(units, embedder.num_frames, dtype=np.int64)
    embedder.embed(frames, counts)  # warm-up: kernels, cuDNN autotuning, allocator
    if embedder.device.type == "cuda":
        torch.cuda.synchronize(embedder.device)
    started = time.perf_counter()
    embedder.embed(frames, counts)
    return len(frames) / max(time.perf_counter() - started, 1e-9)
