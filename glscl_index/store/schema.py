"""Row types of an index: one row per indexed unit (UnitBatch) and per source file (CatalogEntry)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np


@dataclass(frozen=True)
class IndexDims:
    frames: int  # T, max frames per unit
    dim: int  # D, joint embedding width
    concepts: int  # K visual concepts per unit; 0 in zero-shot mode
    key_dim: int  # G, width of the FAISS global key

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "IndexDims":
        return cls(**{f.name: int(data[f.name]) for f in fields(cls)})


ARRAY_FIELDS = (
    "unit_id", "video_id", "path", "size", "mtime_ns", "content_hash", "segment_index", "start_s", "end_s",
    "num_frames", "timestamps_s", "frame_features", "visual_concepts", "global_keys",
)


@dataclass
class UnitBatch:
    """Columnar batch of N units."""

    unit_id: np.ndarray  # str [N], f"{video_id}:{segment_index}"
    video_id: np.ndarray  # str [N]
    path: np.ndarray  # str [N]
    size: np.ndarray  # int64 [N] bytes
    mtime_ns: np.ndarray  # int64 [N]
    content_hash: np.ndarray  # str [N]
    segment_index: np.ndarray  # int32 [N]
    start_s: np.ndarray  # float32 [N] seconds
    end_s: np.ndarray  # float32 [N] seconds
    num_frames: np.ndarray  # int32 [N] valid frames
    timestamps_s: np.ndarray  # float32 [N, T] seconds, 0 beyond num_frames
    frame_features: np.ndarray  # float16 [N, T, D]
    visual_concepts: np.ndarray  # float16 [N, K, D]
    global_keys: np.ndarray  # float32 [N, G]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.unit_id)

    @classmethod
    def empty(cls, dims: IndexDims, fingerprint: str) -> "UnitBatch":
        strings = np.array([], dtype=object)
        return cls(
            unit_id=strings, video_id=strings.copy(), path=strings.copy(),
            size=np.zeros(0, np.int64), mtime_ns=np.zeros(0, np.int64), content_hash=strings.copy(),
            segment_index=np.zeros(0, np.int32), start_s=np.zeros(0, np.float32), end_s=np.zeros(0, np.float32),
            num_frames=np.zeros(0, np.int32), timestamps_s=np.zeros((0, dims.frames), np.float32),
            frame_features=np.zeros((0, dims.frames, dims.dim), np.float16),
            visual_concepts=np.zeros((0, dims.concepts, dims.dim), np.float16),
            global_keys=np.zeros((0, dims.key_dim), np.float32), fingerprint=fingerprint,
        )

    @classmethod
    def concat(cls, batches: list["UnitBatch"]) -> "UnitBatch":
        first = batches[0]
        columns = {name: np.concatenate([getattr(b, name) for b in batches]) for name in ARRAY_FIELDS}
        return cls(**columns, fingerprint=first.fingerprint)

    def take(self, rows: np.ndarray) -> "UnitBatch":
        return UnitBatch(**{name: getattr(self, name)[rows] for name in ARRAY_FIELDS}, fingerprint=self.fingerprint)

    def frame_mask(self) -> np.ndarray:
        """bool ``[N, T]``: True on real frames."""
        return np.arange(self.timestamps_s.shape[1])[None, :] < self.num_frames[:, None]


@dataclass
class CatalogEntry:
    """One source file and what became of it."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    video_id: str
    status: str  # "indexed" | "failed"
    error: str  # "" when indexed
    units: int
    indexed_at: float  # unix seconds
