"""Reading one consistent generation of an index."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store import faiss_index
from glscl_index.store.manifest import Manifest, read_manifest, require_model
from glscl_index.store.schema import ARRAY_FIELDS, CatalogEntry, StackedRows, UnitBatch
from glscl_index.store.shards import LAZY_COLUMNS, read_catalog, read_shard
from glscl_index.store.unit_keys import UnitKeys

OPEN_ATTEMPTS = 3


class IndexReader:
    """The manifest is read once; every later read uses that generation's (immutable) files.

    ``units`` holds the small columns in memory and reads features and concepts
    from the memory-mapped shards only for the rows that are indexed.
    """

    def __init__(
        self, root: Path, manifest: Manifest, units: UnitBatch, catalog_file: BinaryIO | None = None,
        stored_faiss: faiss.Index | None = None,
    ):
        self.root = root
        self.manifest = manifest
        self.units = units
        self._catalog_file = catalog_file
        self._stored_faiss = stored_faiss

    @cached_property
    def catalog(self) -> list[CatalogEntry]:
        """The generation's source files, read on first use (a search needs them only for its hits' paths).

        The file was opened with the generation, so a writer's garbage collection cannot take it away.
        """
        if self._catalog_file is None:
            return []
        with self._catalog_file:
            return read_catalog(self.root / self.manifest.catalog, self._catalog_file)

    @classmethod
    def open(cls, root: str | Path, *, expected_fingerprint: str | None = None) -> IndexReader:
        root = Path(root)
        for attempt in range(OPEN_ATTEMPTS):
            manifest = read_manifest(root)
            if expected_fingerprint is not None:
                require_model(
                    root, manifest, expected_fingerprint, f"re-index with `glscl index PATH --index {root} --rebuild`"
                )
            try:
                units = load_units(root, manifest)
                return cls(
                    root, manifest, units, _open_catalog(root, manifest), _load_faiss(root, manifest, len(units))
                )
            except FileNotFoundError as exc:
                # A writer garbage-collected this generation's files after we read its manifest:
                # a newer generation is published, so read again.
                if attempt == OPEN_ATTEMPTS - 1:
                    name = Path(exc.filename).name if exc.filename else "?"
                    raise IndexCorruptError(
                        f"{root}: file {name} named by the manifest is missing{repair_hint(root)}"
                    ) from exc
        raise AssertionError("unreachable")

    @cached_property
    def key_index(self) -> faiss.Index:
        """The FAISS index over the units' global keys: row i is ``units[i]``."""
        if self._stored_faiss is not None:
            return faiss_index.to_gpu(self._stored_faiss)
        # Older indexes have no usable FAISS file: build one in memory from the units' keys.
        return faiss_index.to_gpu(
            faiss_index.build_index(UnitKeys(self.units, self.manifest.dims), self.manifest.faiss_type)
        )

    def search_keys(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """queries float32 ``[Q, G]`` -> (scores ``[Q, n']``, rows ``[Q, n']`` into ``self.units``; -1 pads)."""
        if len(self.units) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return faiss_index.search(self.key_index, queries, n)


def load_units(root: Path, manifest: Manifest) -> UnitBatch:
    """The live units of a generation, in manifest shard order then row order (the FAISS row order)."""
    shards = [
        (read_shard(root / "shards" / ref.name, manifest.dims, manifest.fingerprint), ref) for ref in manifest.shards
    ]
    for batch, ref in shards:
        if len(batch) != ref.rows:
            raise IndexCorruptError(
                f"shard {ref.name} has {len(batch)} rows, the manifest says {ref.rows}{repair_hint(root)}"
            )
    empty = UnitBatch.empty(manifest.dims, manifest.fingerprint)
    lives = [np.setdiff1d(np.arange(ref.rows), np.asarray(ref.dead, dtype=np.int64)) for _, ref in shards]
    columns: dict[str, Any] = {}
    for name in ARRAY_FIELDS:
        if name in LAZY_COLUMNS and all(isinstance(getattr(b, name), StackedRows) for b, _ in shards):
            columns[name] = _stack_lazy([getattr(b, name) for b, _ in shards], lives, getattr(empty, name))
        else:
            loaded = [getattr(b, name)[live] for (b, _), live in zip(shards, lives, strict=False)]
            columns[name] = np.concatenate([getattr(empty, name), *loaded])
    return UnitBatch(**columns, fingerprint=manifest.fingerprint)


def _stack_lazy(columns: list[StackedRows], lives: list[np.ndarray], empty: np.ndarray) -> StackedRows:
    """One StackedRows over every shard's parts, selecting the live rows ``[N]``."""
    parts, rows, offset = [empty], [np.zeros(0, np.int64)], 0
    for column, live in zip(columns, lives, strict=False):
        parts += column.parts
        rows.append(offset + live)
        offset += len(column)
    return StackedRows(parts, np.concatenate(rows))


def _load_faiss(root: Path, manifest: Manifest, num_units: int) -> faiss.Index | None:
    if not manifest.usable_faiss_file:
        return None
    path = root / manifest.usable_faiss_file
    try:
        index = faiss_index.read_index(path)
    except RuntimeError as exc:  # faiss reports unreadable files this way
        raise IndexCorruptError(
            f"FAISS index {path.name} is damaged: {str(exc).splitlines()[0][:200]}{repair_hint(root)}"
        ) from exc
    if index.ntotal != num_units or index.d != manifest.dims.key_dim:
        raise IndexCorruptError(
            f"FAISS index {path.name} holds {index.ntotal} keys of width {index.d}; "
            f"the manifest has {num_units} units of width {manifest.dims.key_dim}{repair_hint(root)}"
        )
    return index


def _open_catalog(root: Path, manifest: Manifest) -> BinaryIO | None:
    return open(root / manifest.catalog, "rb") if manifest.catalog else None
