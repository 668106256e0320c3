"""Row types of an index: one row per indexed unit (UnitBatch) and per source file (CatalogEntry)."""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class IndexDims:
    frames: int  # T, max frames per unit
    dim: int  # D, joint embedding width
    concepts: int  # K visual concepts per unit; 0 in zero-shot mode
    key_dim: int  # G = D * (1 + K), width of the FAISS global key (derived from the rows, not stored)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> IndexDims:
        return cls(**{f.name: int(data[f.name]) for f in fields(cls)})


ARRAY_FIELDS = (
    "unit_id", "video_id", "path", "size", "mtime_ns", "content_hash", "segment_index", "start_s", "end_s",
    "num_frames", "timestamps_s", "frame_features", "visual_concepts",
)


class OpenFile(Protocol):
    """A file open for reading and memory-mapped (store/shards.MappedCopy)."""

    name: str
    fd: int
    size: int  # bytes
    populated: bool  # every page of its map is mapped: rows are copied from ``window``, not read with pread

    def window(self, row_bytes: int) -> np.ndarray: ...

    def populate(self) -> None: ...


@dataclass(frozen=True)
class FileRows:
    """Where a part's rows lie in a file: ``offset`` bytes in, one after another (the part's own row size)."""

    source: OpenFile  # open for the reader's lifetime (a writer's garbage collection cannot take it away)
    offset: int


class StackedRows:
    """A read-only ``[N, *row_shape]`` array stitched from parts ``[n_i, *row_shape]`` and a row selection.

    The parts are typically views of memory-mapped shard files, so nothing is read
    until rows are indexed, and then only those rows are copied: a search touches the
    features of its ~200 candidates, not the whole index. ``rows`` (int64 ``[N]``)
    picks physical rows of the stacked parts (live rows of shards with dead ones). With
    ``scales`` (one ``[n_i, R]`` per part, or None for a float16 part), a part is int8 codes
    ``[n_i, R, D]`` and a row read from it is float32 codes x scale (store/shards.py).

    With ``files`` (a FileRows per part; None for a part held in memory, as a small segment's decoded rows
    are), rows are read with pread, one call per run of adjacent rows, instead of through the memory map:
    touching a map's pages costs a page fault each the first time a process reads them, ~25 us on the
    benchmark machine (a virtual one) even when the file is in the page cache, and a search's candidates are
    new rows each time (`benchmarks/search_stages.py`).
    """

    def __init__(
        self, parts: list[np.ndarray], rows: np.ndarray | None = None, scales: list[np.ndarray | None] | None = None,
        files: list[FileRows | None] | None = None,
    ):
        self.parts = parts
        self.scales = scales if scales is not None and any(s is not None for s in scales) else None
        self._starts = np.cumsum([0] + [len(p) for p in parts])
        self._rows = rows
        # Dequantised rows are float32: numpy has no native float16 arithmetic, and every reader wants float32.
        self.dtype = np.dtype(np.float32) if self.scales is not None else parts[0].dtype
        self.shape = (int(self._starts[-1]) if rows is None else len(rows), *parts[0].shape[1:])
        self.files = files if files is not None and self._readable(files) else None

    def _readable(self, files: list[FileRows | None]) -> bool:
        """A file for some part, and one row layout (the parts' dtype and shape) for all."""
        layouts = {(p.dtype, p.shape[1:]) for p in self.parts if len(p)}
        return len(layouts) <= 1 and any(f is not None for f in files)

    @cached_property
    def _flat_scales(self) -> np.ndarray | None:
        """Every part's scales as one in-memory array over the physical rows ``[P, R]`` (None unless every part with
        rows has scales): a gather from the files scales its rows in one operation, and reads no scale through a
        map. Made on the first such gather, so a batch read for its small columns only never copies them."""
        if self.scales is None or any(s is None and len(p) for s, p in zip(self.scales, self.parts, strict=True)):
            return None
        empty = np.zeros((0, *self.parts[0].shape[1:2]), np.float16)
        return np.concatenate([empty if s is None else np.asarray(s) for s in self.scales])

    @cached_property
    def _file_offsets(self) -> np.ndarray:
        """Each part's byte offset in its file ``[parts]`` (0 for an empty part without one)."""
        assert self.files is not None
        return np.array([f.offset if f is not None else 0 for f in self.files], np.int64)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, index) -> np.ndarray:
        """Rows by int, slice, bool mask or int array (numpy semantics, first axis only)."""
        if np.isscalar(index):
            return self._gather(self._physical(np.array([index])))[0]
        return self._gather(self._physical(index))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        everything = self[:]
        return everything if dtype is None else everything.astype(dtype)

    def _physical(self, index) -> np.ndarray:
        """Row numbers into the stacked parts, int64 ``[M]``, for a slice, bool mask or int array over ``[N]``."""
        if isinstance(index, slice):
            selected = np.arange(*index.indices(len(self)))
        else:
            selected = np.asarray(index)
            if selected.dtype == bool:
                selected = np.flatnonzero(selected)
            else:
                selected = np.where(selected < 0, selected + len(self), selected)
        return selected if self._rows is None else self._rows[selected]

    def _gather(self, physical: np.ndarray) -> np.ndarray:
        """Rows ``physical`` of the stacked parts, read in ascending order (the memory map or the files are read
        forwards); one permutation restores the order asked for when it was not ascending (the searcher asks
        in ascending order)."""
        order = np.argsort(physical, kind="stable")
        ascending = physical[order]
        if self.files is not None and (self.scales is None or self._flat_scales is not None):
            out = self._read_scaled_files(ascending)
        else:
            out = self._read_maps(ascending)
        if np.all(order[1:] > order[:-1]):
            return out
        restored = np.empty_like(out)
        restored[order] = out
        return restored

    def _read_scaled_files(self, ascending: np.ndarray) -> np.ndarray:
        out = self._read_files(ascending)
        if self._flat_scales is None:
            return out
        return np.multiply(out, self._flat_scales[ascending][..., None].astype(np.float32), dtype=np.float32)

    def _read_maps(self, ascending: np.ndarray) -> np.ndarray:
        """Ascending physical rows through the parts' arrays, each part's rows one contiguous run of the output."""
        out = np.empty((len(ascending), *self.shape[1:]), self.dtype)
        bounds = np.searchsorted(ascending, self._starts)
        # Only the parts holding some of the rows: a 1M-unit index has over a thousand parts (record batches), and
        # a Python pass over all of them cost ~4 ms per read (a cProfile of 30 queries, one-off).
        for part in np.flatnonzero(bounds[1:] > bounds[:-1]).tolist():
            first, last = int(bounds[part]), int(bounds[part + 1])
            local = ascending[first:last] - self._starts[part]
            scale = None if self.scales is None else self.scales[part]
            if scale is None:
                out[first:last] = self.parts[part][local]
            else:
                np.multiply(
                    self.parts[part][local], scale[local][..., None].astype(np.float32), out=out[first:last],
                    dtype=np.float32,
                )
        return out

    def _read_files(self, ascending: np.ndarray) -> np.ndarray:
        """Ascending physical rows, as stored (before scaling): copied from the maps of files whose page tables are
        populated (``OpenFile.populated``), else with one pread per run of rows adjacent in a file; rows of a part
        held in memory (no file) are copied from it, so that one scaling pass covers every row."""
        files = self.files
        assert files is not None
        stored = next((p for p in self.parts if len(p)), self.parts[0])
        out = np.empty((len(ascending), *stored.shape[1:]), stored.dtype)
        if not len(ascending):
            return out
        row_bytes = out[0].nbytes
        part = np.searchsorted(self._starts, ascending, side="right") - 1
        position = self._file_offsets[part] + (ascending - self._starts[part]) * row_bytes
        sources, source_of_part = self._sources
        ready = np.array([s.populated for s in sources] + [False])[source_of_part[part]]  # -1 (no file): False
        if ready.any():
            as_bytes = out.reshape(len(out), -1).view(np.uint8)
            for number in np.unique(source_of_part[part[ready]]).tolist():
                rows = np.flatnonzero(source_of_part[part] == number)
                as_bytes[rows] = sources[number].window(row_bytes)[position[rows]]
        self._pread(np.flatnonzero(~ready), ascending, part, position, out)
        return out

    @property
    def open_files(self) -> list[OpenFile]:
        """The distinct files the parts' rows are read from (none for parts held in memory)."""
        return self._sources[0] if self.files is not None else []

    @cached_property
    def _sources(self) -> tuple[list[OpenFile], np.ndarray]:
        """The distinct files of the parts, and each part's number among them ``[parts]`` (-1: none)."""
        assert self.files is not None
        sources: list[OpenFile] = []
        number_of: dict[int, int] = {}
        numbers = []
        for rows in self.files:
            if rows is not None and id(rows.source) not in number_of:
                number_of[id(rows.source)] = len(sources)
                sources.append(rows.source)
            numbers.append(-1 if rows is None else number_of[id(rows.source)])
        return sources, np.array(numbers, np.int64)

    def _pread(
        self, selected: np.ndarray, ascending: np.ndarray, part: np.ndarray, position: np.ndarray, out: np.ndarray
    ) -> None:
        """Rows ``selected`` (indices into ``ascending``) into ``out``: one pread per run of them adjacent in a file."""
        files = self.files
        assert files is not None
        if not len(selected):
            return
        row_bytes = out[0].nbytes
        part, position = part[selected], position[selected]
        starts = np.flatnonzero(
            np.diff(part, prepend=-1).astype(bool) | (np.diff(position, prepend=-row_bytes) != row_bytes)
            | (np.diff(selected, prepend=-2) != 1)
        )
        flat = memoryview(out.reshape(-1).view(np.uint8).data)
        # Plain Python numbers for the loop: it runs once per run of rows (a search's hundreds of candidates), on two
        # threads at once (frames and concepts).
        runs = zip(
            selected[starts].tolist(), (selected[np.r_[starts[1:], len(selected)] - 1] + 1).tolist(),
            part[starts].tolist(), position[starts].tolist(), strict=True,
        )
        for first, last, index, at in runs:
            source = files[index]
            if source is None:
                out[first:last] = self.parts[index][ascending[first:last] - self._starts[index]]
                continue
            got = os.preadv(source.source.fd, [flat[first * row_bytes : last * row_bytes]], at)
            if got != (last - first) * row_bytes:
                raise OSError(errno.EIO, f"short read: {got} of {(last - first) * row_bytes} bytes", source.source.name)


@dataclass
class UnitBatch:
    """Columnar batch of N units.

    In a batch read from an index the two large columns are ``StackedRows``
    (rows read on demand); indexing them with row numbers gives numpy arrays.
    """

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
    frame_features: np.ndarray | StackedRows  # float16 [N, T, D] (float32 when read from int8 shards)
    visual_concepts: np.ndarray | StackedRows  # float16 [N, K, D] (float32 when read from int8 shards)
    fingerprint: str

    def __len__(self) -> int:
        return len(self.unit_id)

    @classmethod
    def empty(cls, dims: IndexDims, fingerprint: str) -> UnitBatch:
        strings = np.array([], dtype=object)
        return cls(
            unit_id=strings, video_id=strings.copy(), path=strings.copy(),
            size=np.zeros(0, np.int64), mtime_ns=np.zeros(0, np.int64), content_hash=strings.copy(),
            segment_index=np.zeros(0, np.int32), start_s=np.zeros(0, np.float32), end_s=np.zeros(0, np.float32),
            num_frames=np.zeros(0, np.int32), timestamps_s=np.zeros((0, dims.frames), np.float32),
            frame_features=np.zeros((0, dims.frames, dims.dim), np.float16),
            visual_concepts=np.zeros((0, dims.concepts, dims.dim), np.float16),
            fingerprint=fingerprint,
        )

    @classmethod
    def concat(cls, batches: list[UnitBatch]) -> UnitBatch:
        first = batches[0]
        columns = {name: np.concatenate([getattr(b, name) for b in batches]) for name in ARRAY_FIELDS}
        return cls(**columns, fingerprint=first.fingerprint)

    def take(self, rows: np.ndarray) -> UnitBatch:
        return UnitBatch(**{name: getattr(self, name)[rows] for name in ARRAY_FIELDS}, fingerprint=self.fingerprint)

    def frame_mask(self, rows: np.ndarray | None = None) -> np.ndarray:
        """bool ``[N, T]`` (or ``[len(rows), T]`` for those rows only): True on real frames."""
        counts = self.num_frames if rows is None else self.num_frames[rows]
        return np.arange(self.timestamps_s.shape[1])[None, :] < counts[:, None]


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
    # Under a root that was absent, empty or unreadable at the last run (an unmounted drive):
    # kept and searchable, not removed, until the root is scanned again or forgotten.
    offline: bool = False
