"""Shards (one row per unit) and the catalog file, converted without per-row loops.

A shard is a Parquet file: the storage contract (docs/architecture.md §3), readable by
any Parquet tool. Beside it the writer puts the same rows as an uncompressed
Arrow IPC file (``.arrow``), a derived copy that a reader memory-maps so that a
search reads the features of its few candidate rows without decoding the
rest; Parquet cannot be read that way. Without the copy (a small segment, see
store/merge_policy.py; an index written before copies existed; a damaged copy),
the Parquet shard is read into memory.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import weakref
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glscl_index.atomic import atomic_write
from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store.schema import CatalogEntry, FileRows, IndexDims, StackedRows, UnitBatch

SHARD_SUFFIX = ".parquet"
MAPPED_SUFFIX = ".arrow"
SCALAR_COLUMNS = {
    "unit_id": pa.string(), "video_id": pa.string(), "path": pa.string(), "size": pa.int64(),
    "mtime_ns": pa.int64(), "content_hash": pa.string(), "segment_index": pa.int32(),
    "start_s": pa.float32(), "end_s": pa.float32(), "num_frames": pa.int32(),
}
# Fixed-size arrays are stored flat as FixedSizeList so loading is a reshape (of a memory-mapped buffer).
# Features are int8 with one float16 scale per vector (a frame's or a concept's D values share it): half the
# bytes of float16 (format 4; older shards hold float16 features and are read as they are). Per-vector scales
# keep a row's codes independent of the others, so merging segments copies them without requantising drift.
ARRAY_COLUMNS = {
    "timestamps_s": pa.float32(), "frame_features": pa.int8(),
    "visual_concepts": pa.int8(),
}
SCALE_COLUMNS = {"frame_features": "frame_scales", "visual_concepts": "concept_scales"}
# Read on demand (StackedRows over the memory map); the other columns are small and loaded.
# Shards of format <= 2 also hold a "global_keys" column, now ignored: keys are derived (store/unit_keys.py).
LAZY_COLUMNS = ("frame_features", "visual_concepts")


def _row_shapes(dims: IndexDims) -> dict[str, tuple[int, ...]]:
    return {
        "timestamps_s": (dims.frames,), "frame_features": (dims.frames, dims.dim),
        "visual_concepts": (dims.concepts, dims.dim),
    }


def shard_schema(dims: IndexDims) -> pa.Schema:
    """Zero-shot indexes (K = 0) store no concepts column."""
    shapes = _row_shapes(dims)
    arrays = [
        (name, pa.list_(kind, int(np.prod(shapes[name]))))
        for name, kind in ARRAY_COLUMNS.items() if np.prod(shapes[name])
    ]
    scales = [
        (SCALE_COLUMNS[name], pa.list_(pa.float16(), shapes[name][0]))
        for name in SCALE_COLUMNS if np.prod(shapes[name])
    ]
    return pa.schema([*SCALAR_COLUMNS.items(), *arrays, *scales, ("fingerprint", pa.string())])


def required_columns(dims: IndexDims) -> set[str]:
    """The columns every shard has, whatever its format (older ones have float16 features and no scales)."""
    return set(shard_schema(dims).names) - set(SCALE_COLUMNS.values())


def quantize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values ``[N, R, D]`` -> int8 codes ``[N, R, D]`` and float16 scales ``[N, R]`` (a vector = codes x its scale)."""
    values = np.asarray(values, dtype=np.float32)
    scales = (np.abs(values).max(axis=-1, initial=0.0) / 127.0).astype(np.float16)
    divisor = np.where(scales > 0, scales, 1).astype(np.float32)[..., None]
    codes = np.clip(np.rint(values / divisor), -127, 127).astype(np.int8)
    return codes, scales


def as_stored(values: np.ndarray) -> np.ndarray:
    """Features ``[N, R, D]`` as a shard returns them: quantised, then codes x scale (float32)."""
    codes, scales = quantize(values)
    return codes.astype(np.float32) * scales[..., None].astype(np.float32)


def _record_batch(batch: UnitBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = {name: pa.array(getattr(batch, name), type=kind) for name, kind in SCALAR_COLUMNS.items()}
    for name, kind in ARRAY_COLUMNS.items():
        if name not in schema.names:
            continue
        values = np.ascontiguousarray(getattr(batch, name))  # StackedRows are read here
        if name in SCALE_COLUMNS:
            values, scales = quantize(values)
            columns[SCALE_COLUMNS[name]] = pa.FixedSizeListArray.from_arrays(
                pa.array(scales.reshape(-1), type=pa.float16()), scales.shape[1]
            )
        columns[name] = pa.FixedSizeListArray.from_arrays(
            pa.array(values.reshape(-1), type=kind), schema.field(name).type.list_size
        )
    columns["fingerprint"] = pa.array(np.full(len(batch), batch.fingerprint, dtype=object), type=pa.string())
    return pa.RecordBatch.from_pydict(columns, schema=schema)


def mapped_copy(path: Path) -> Path:
    """The memory-mappable Arrow copy of Parquet shard ``path``."""
    return path.with_suffix(MAPPED_SUFFIX)


def write_shard(path: Path, batches: Iterable[UnitBatch], dims: IndexDims, copy: bool = True) -> int:
    """Stream batches into the Parquet shard and, with ``copy``, its Arrow copy (temp names, fsync, rename);
    returns the rows.

    Batches are written one at a time, so merging large shards needs memory for one batch only.
    The copy is renamed into place first: a published shard always has a complete copy or none.
    """
    schema = shard_schema(dims)
    rows = 0
    with ExitStack() as stack:
        # Contexts exit last-in first: the copy is published before the shard.
        tmp = stack.enter_context(atomic_write(path))
        parquet = stack.enter_context(pq.ParquetWriter(str(tmp), schema))
        arrow = None
        if copy:
            sink = stack.enter_context(pa.OSFile(str(stack.enter_context(atomic_write(mapped_copy(path)))), "wb"))
            arrow = stack.enter_context(pa.ipc.new_file(sink, schema))
        for batch in batches:
            if len(batch):
                record = _record_batch(batch, schema)
                parquet.write_batch(record)
                if arrow is not None:
                    arrow.write_batch(record)
                rows += len(batch)
    return rows


def rewrite_mapped_copy(path: Path) -> int:
    """Write Parquet shard ``path``'s Arrow copy again from the shard (temp name, fsync, rename); returns the rows.

    Streams one row group at a time. The shard itself is not touched: it is the record, the copy only serves reads.
    """
    shard = pq.ParquetFile(path)
    rows = 0
    with atomic_write(mapped_copy(path)) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, shard.schema_arrow) as arrow:
            for group in range(shard.num_row_groups):
                table = shard.read_row_group(group)
                arrow.write_table(table)
                rows += table.num_rows
    return rows


def read_shard(path: Path, dims: IndexDims, fingerprint: str) -> UnitBatch:
    """Scalar columns are loaded; features and concepts stay in the memory map until rows are indexed."""
    try:
        table, mapped = _open_table(path)
        rows = table.num_rows
        data = {name: table.column(name).to_numpy(zero_copy_only=False) for name in SCALAR_COLUMNS}
        for name, shape in _row_shapes(dims).items():
            if int(np.prod(shape)) == 0:
                data[name] = np.zeros((rows, *shape), np.float16)
            elif name in LAZY_COLUMNS:
                scale = SCALE_COLUMNS[name]
                scales: list[np.ndarray | None] | None = (
                    list(_chunk_views(table.column(scale), shape[:1])) if scale in table.column_names else None
                )
                views = _chunk_views(table.column(name), shape)
                files = [mapped.rows_of(v) for v in views] if mapped is not None else None
                data[name] = StackedRows(views, scales=scales, files=files)
            else:
                data[name] = (
                    table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape((rows, *shape))
                )
    except FileNotFoundError:
        # pyarrow's error carries no file name; the reader reports which file vanished.
        raise FileNotFoundError(errno.ENOENT, "shard file is missing", str(path)) from None
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        raise IndexCorruptError(
            f"shard {path.name} is damaged: {str(exc).splitlines()[0][:200]}{repair_hint(path.parent.parent)}"
        ) from exc
    for name in ("unit_id", "video_id", "path", "content_hash"):
        data[name] = data[name].astype(object)
    return UnitBatch(**data, fingerprint=fingerprint)


class MappedCopy:
    """An Arrow copy a table was memory-mapped from, open again for reading rows with pread (FileRows), and read
    through its map once ``populate`` has filled the map's page tables.

    The descriptor is closed when the last FileRows using it is gone, as the memory map is.
    """

    def __init__(self, path: Path, whole: pa.Buffer):
        self.name = str(path)
        self.fd = os.open(path, os.O_RDONLY)
        self._whole = whole  # the whole map (zero-copy): keeps it alive for the windows
        self.base = whole.address  # the address the map starts at
        self.size = whole.size
        self.populated = False  # True once every page of the map is mapped: rows are then copied from it
        self._windows: dict[int, np.ndarray] = {}
        weakref.finalize(self, os.close, self.fd)

    def rows_of(self, view: np.ndarray) -> FileRows | None:
        """Where ``view``'s rows ``[n, ...]`` (a C-contiguous view into the map) lie in the file."""
        offset = view.__array_interface__["data"][0] - self.base
        if not view.flags.c_contiguous or len(view) == 0 or offset < 0 or offset + view.nbytes > self.size:
            return None
        return FileRows(self, offset)

    def window(self, row_bytes: int) -> np.ndarray:
        """uint8 ``[size - row_bytes + 1, row_bytes]``, row i = the ``row_bytes`` bytes at offset i of the map: indexing
        it with byte offsets copies whole rows (one memcpy each), wherever in the file they lie."""
        if row_bytes not in self._windows:
            flat = np.frombuffer(self._whole, np.uint8)
            self._windows[row_bytes] = np.lib.stride_tricks.as_strided(
                flat, (max(0, self.size - row_bytes + 1), row_bytes), (1, 1), writeable=False
            )
        return self._windows[row_bytes]

    def populate(self) -> None:
        """Map every page of the copy now (MADV_POPULATE_READ; reads it from disk where the page cache lacks it).

        A first touch of a page of a map costs a page fault, ~25 us on the benchmark machine (a virtual one) even
        with the file cached, so rows are read with pread until this is done; after it, copying a search's 808
        candidates' frames from the map took 1.3 ms where pread took 3-12 ms (one-off timings at 1M units)."""
        if self.size and _populate_read(self.base, self.size):
            self.populated = True


# Linux's number (5.14+; older kernels refuse it), which Python's mmap module does not name before 3.13; None off
# Linux, where 22 is no such advice.
MADV_POPULATE_READ: int | None = 22 if sys.platform.startswith("linux") else None


def _populate_read(address: int, length: int) -> bool:
    """madvise(MADV_POPULATE_READ) on a range mapped by pyarrow (Python's mmap cannot reach it); False where the
    kernel refuses it or does not have it."""
    if MADV_POPULATE_READ is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc.madvise(address, length, MADV_POPULATE_READ) == 0


def _open_table(path: Path) -> tuple[pa.Table, MappedCopy | None]:
    """The shard's rows: memory-mapped from its Arrow copy when that is whole (with the copy), else read from it."""
    # The Parquet footer is read even when the copy serves the rows (a few KB):
    # a damaged shard is reported, not hidden behind its copy.
    rows = pq.read_metadata(path).num_rows
    mapped = mapped_copy(path)
    if mapped.is_file():
        try:
            memory = pa.memory_map(str(mapped), "r")
            whole = memory.read_buffer(memory.size())
            memory.seek(0)
            table = pa.ipc.open_file(memory).read_all()
            if table.num_rows == rows:
                return table, MappedCopy(mapped, whole)
        except (OSError, pa.ArrowException):
            pass  # only a copy: the Parquet shard below is the record
    return pq.read_table(path), None


def _chunk_views(column: pa.ChunkedArray, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Zero-copy numpy views ``[n_i, *shape]`` of a FixedSizeList column's record batches."""
    views = [
        chunk.flatten().to_numpy(zero_copy_only=True).reshape((len(chunk), *shape))
        for chunk in column.chunks if len(chunk)
    ]
    return views or [np.zeros((0, *shape), column.type.value_type.to_pandas_dtype())]


def write_catalog(path: Path, entries: list[CatalogEntry]) -> None:
    names = [f.name for f in fields(CatalogEntry)]
    # Columns read attribute by attribute: dataclasses.asdict deep-copies each entry, which made compacting a
    # 1M-entry catalog take about a minute (profiled on the 1M benchmark index).
    table = pa.table({name: [getattr(e, name) for e in entries] for name in names}) if entries else pa.table(
        {name: pa.array([], type=pa.string()) for name in names}
    )
    with atomic_write(path) as tmp:
        pq.write_table(table, tmp)


def read_catalog(path: Path, source: BinaryIO | None = None) -> list[CatalogEntry]:
    """The catalog at ``path`` (read from ``source`` when given: the same file, already open)."""
    try:
        records = pq.read_table(path if source is None else source).to_pylist()
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise IndexCorruptError(
            f"catalog {path.name} is damaged: {str(exc).splitlines()[0][:200]}{repair_hint(path.parent)}"
        ) from exc
    return [
        CatalogEntry(
            path=r["path"], size=int(r["size"]), mtime_ns=int(r["mtime_ns"]), content_hash=r["content_hash"],
            video_id=r["video_id"], status=r["status"], error=r["error"], units=int(r["units"]),
            indexed_at=float(r["indexed_at"]), offline=bool(r.get("offline") or False),
        )
        for r in records
    ]
