"""Multi-GPU training under ``torchrun``: process group set-up and the feature all-gather.

The contrastive loss needs every rank's negatives, so embeddings are
all-gathered with gradients (``torch.distributed.nn.all_gather``), as in
open_clip's ``gather_with_grad``; each rank then scores the global batch.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn as dist_nn

from glscl_index.model.glscl import TextEmbedding, VideoEmbedding


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env() -> Rank:
    """Join the process group torchrun describes in the environment; a plain run is rank 0 of 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Rank()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return Rank(dist.get_rank(), dist.get_world_size(), local_rank)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(
    video: VideoEmbedding, text: TextEmbedding, video_ids: torch.Tensor
) -> tuple[VideoEmbedding, TextEmbedding, torch.Tensor]:
    """Concatenate every rank's batch (rank order), keeping gradients; identity when not distributed.

    Everything with a gradient travels in ONE packed all-gather: separate
    gathers of equal-sized tensors (visual and textual concepts) could be
    paired up across ranks in a different order by the backward pass.
    """
    if not active():
        return video, text, video_ids
    parts = [video.frames, video.concepts, text.sentence, text.tokens, text.concepts]
    present = [p for p in parts if p is not None]
    packed = torch.cat([p.reshape(p.shape[0], -1) for p in present], dim=1)
    with warnings.catch_warnings():
        # Deprecated in favour of a private functional API; this public one still does what is needed.
        warnings.simplefilter("ignore", FutureWarning)
        gathered = torch.cat(dist_nn.all_gather(packed.contiguous()), dim=0)
    pieces = iter(gathered.split([p[0].numel() for p in present], dim=1))
    frames, concepts, sentence, tokens, text_concepts = (
        None if p is None else next(pieces).reshape(-1, *p.shape[1:]) for p in parts
    )
    assert frames is not None and sentence is not None and tokens is not None  # only concepts are optional
    return (
        VideoEmbedding(frames, _gather_plain(video.mask), concepts),
        TextEmbedding(sentence, tokens, _gather_plain(text.mask), text_concepts),
        _gather_plain(video_ids),
    )


def _gather_plain(tensor: torch.Tensor) -> torch.Tensor:
    """All-gather without gradient (masks, ids); bool travels as uint8, which every backend supports."""
    source = tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor
    parts = [torch.empty_like(source) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, source.contiguous())
    gathered = torch.cat(parts)
    return gathered.bool() if tensor.dtype == torch.bool else gathered


def all_reduce_mean(value: float, device: torch.device) -> float:
    """Average a logged scalar over ranks (for progress display only)."""
    if not active():
        return value
    tensor = torch.tensor([value], device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()
