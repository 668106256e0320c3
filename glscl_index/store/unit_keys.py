"""The global keys of stored units, derived from their frames and concepts when FAISS needs them.

Keys are not a shard column: a key is a fixed function of the row's frame
features, frame count and concepts (model/keys.py), and storing it would add
D * (1 + K) floats per unit (18 KB at ViT-B/32 shapes, half a row) to every shard.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.store.schema import IndexDims, UnitBatch

if TYPE_CHECKING:
    import torch


class UnitKeys:
    """A read-only ``[N, G]`` float32 view of ``units``' global keys, computed for the rows indexed.

    Indexing it with a slice or int array (first axis) reads only those rows'
    features, so building FAISS over a memory-mapped index streams it in chunks.
    """

    def __init__(self, units: UnitBatch, dims: IndexDims):
        self.units = units
        self.shape = (len(units), dims.key_dim)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        rows = np.arange(len(self))[index]
        if np.ndim(rows) == 0:
            return self[rows[None]][0]
        from glscl_index.model.keys import video_keys

        return video_keys(*unit_tensors(self.units, rows)).numpy()

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        everything = self[:]
        return everything if dtype is None else everything.astype(dtype)


def unit_tensors(units: UnitBatch, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """rows ``[V]`` of ``units`` -> frames ``[V, T, D]`` float32, mask ``[V, T]``, concepts ``[V, K, D]`` float32 (None
    when K = 0): torch tensors on the CPU; only these rows' features are read."""
    # torch is imported here, not with the store: a writer takes its lock and a run with nothing to
    # embed finishes without paying torch's seconds of import time.
    import torch

    # The concepts are read on a second thread while the frames are read here: both reads are mostly system
    # calls and copies, which release the GIL (800 rows of each at 1M units: 76.6 -> 59.8 ms, a one-off timing).
    pending = _READER.submit(_read, units.visual_concepts, rows) if units.visual_concepts.shape[1] else None
    frames = torch.from_numpy(_read(units.frame_features, rows))
    mask = torch.from_numpy(units.frame_mask(rows))
    concepts = None if pending is None else torch.from_numpy(pending.result())
    return frames, mask, concepts


_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glscl-read")


def _read(column, rows: np.ndarray) -> np.ndarray:
    return np.asarray(column[rows], dtype=np.float32)
