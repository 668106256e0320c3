"""Parquet shards (one row per unit) and the catalog file, converted without per-row loops."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glscl_index.errors import IndexCorruptError
from glscl_index.store.schema import CatalogEntry, IndexDims, UnitBatch

SCALAR_COLUMNS = {
    "unit_id": pa.string(), "video_id": pa.string(), "path": pa.string(), "size": pa.int64(),
    "mtime_ns": pa.int64(), "content_hash": pa.string(), "segment_index": pa.int32(),
    "start_s": pa.float32(), "end_s": pa.float32(), "num_frames": pa.int32(),
}
# Fixed-size arrays are stored flat as FixedSizeList so loading is a reshape.
ARRAY_COLUMNS = {
    "timestamps_s": pa.float32(), "frame_features": pa.float16(),
    "visual_concepts": pa.float16(), "global_keys": pa.float32(),
}


def _fixed(array: np.ndarray, value_type: pa.DataType) -> pa.FixedSizeListArray:
    width = int(np.prod(array.shape[1:]))
    flat = pa.array(np.ascontiguousarray(array).reshape(-1), type=value_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


def write_shard(path: Path, batch: UnitBatch) -> None:
    """Write a batch as one Parquet file (temp name, fsync, rename)."""
    columns = {name: pa.array(getattr(batch, name), type=kind) for name, kind in SCALAR_COLUMNS.items()}
    columns.update(
        {name: _fixed(getattr(batch, name), kind) for name, kind in ARRAY_COLUMNS.items() if getattr(batch, name).size or not len(batch)}
    )
    columns["fingerprint"] = pa.array(np.full(len(batch), batch.fingerprint, dtype=object), type=pa.string())
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.table(columns), tmp, compression="zstd")
    _fsync_file(tmp)
    os.replace(tmp, path)


def read_shard(path: Path, dims: IndexDims, fingerprint: str) -> UnitBatch:
    try:
        table = pq.read_table(path)
        rows = table.num_rows
        data = {name: table.column(name).to_numpy(zero_copy_only=False) for name in SCALAR_COLUMNS}
        shapes = {
            "timestamps_s": (dims.frames,), "frame_features": (dims.frames, dims.dim),
            "visual_concepts": (dims.concepts, dims.dim), "global_keys": (dims.key_dim,),
        }
        for name, shape in shapes.items():
            if int(np.prod(shape)) == 0:  # zero-shot indexes store no concepts column
                data[name] = np.zeros((rows, *shape), np.float16)
                continue
            values = table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
            data[name] = values.reshape((rows, *shape))
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        raise IndexCorruptError(f"shard {path.name} is damaged: {str(exc).splitlines()[0][:200]}") from exc
    for name in ("unit_id", "video_id", "path", "content_hash"):
        data[name] = data[name].astype(object)
    return UnitBatch(**data, fingerprint=fingerprint)


def write_catalog(path: Path, entries: list[CatalogEntry]) -> None:
    names = [f.name for f in fields(CatalogEntry)]
    rows = [asdict(e) for e in entries]
    table = pa.table({name: [row[name] for row in rows] for name in names}) if rows else pa.table(
        {name: pa.array([], type=pa.string()) for name in names}
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    _fsync_file(tmp)
    os.replace(tmp, path)


def read_catalog(path: Path) -> list[CatalogEntry]:
    try:
        records = pq.read_table(path).to_pylist()
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowException) as exc:
        raise IndexCorruptError(f"catalog {path.name} is damaged: {str(exc).splitlines()[0][:200]}") from exc
    return [
        CatalogEntry(
            path=r["path"], size=int(r["size"]), mtime_ns=int(r["mtime_ns"]), content_hash=r["content_hash"],
            video_id=r["video_id"], status=r["status"], error=r["error"], units=int(r["units"]),
            indexed_at=float(r["indexed_at"]),
        )
        for r in records
    ]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
