"""Reading one consistent generation of an index."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from glscl_index.errors import IndexCorruptError, IndexMismatchError
from glscl_index.store import faiss_index
from glscl_index.store.manifest import Manifest, read_manifest
from glscl_index.store.schema import CatalogEntry, UnitBatch
from glscl_index.store.shards import read_catalog, read_shard

OPEN_ATTEMPTS = 3


class IndexReader:
    """The manifest is read once; every later read uses that generation's (immutable) files."""

    def __init__(self, root: Path, manifest: Manifest, units: UnitBatch, catalog: list[CatalogEntry]):
        self.root = root
        self.manifest = manifest
        self.units = units
        self.catalog = catalog

    @classmethod
    def open(cls, root: str | Path, *, expected_fingerprint: str | None = None) -> "IndexReader":
        root = Path(root)
        for attempt in range(OPEN_ATTEMPTS):
            manifest = read_manifest(root)
            if expected_fingerprint is not None and manifest.fingerprint != expected_fingerprint:
                raise IndexMismatchError(
                    f"{root} was built with model {manifest.fingerprint}, not {expected_fingerprint}; "
                    f"re-index with `glscl index PATH --index {root} --rebuild`"
                )
            try:
                return cls(root, manifest, _load_units(root, manifest), _load_catalog(root, manifest))
            except FileNotFoundError as exc:
                # A writer garbage-collected this generation's files after we read its manifest:
                # a newer generation is published, so read again.
                if attempt == OPEN_ATTEMPTS - 1:
                    raise IndexCorruptError(f"{root}: file {Path(exc.filename).name} named by the manifest is missing") from exc
        raise AssertionError("unreachable")

    @cached_property
    def _faiss(self):
        return faiss_index.build_index(self.units.global_keys, self.manifest.faiss_type)

    def search_keys(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """queries float32 ``[Q, G]`` -> (scores ``[Q, n']``, rows ``[Q, n']`` into ``self.units``)."""
        if len(self.units) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return faiss_index.search(self._faiss, queries, n)


def _load_units(root: Path, manifest: Manifest) -> UnitBatch:
    parts = [UnitBatch.empty(manifest.dims, manifest.fingerprint)]
    for shard in manifest.shards:
        batch = read_shard(root / "shards" / shard.name, manifest.dims, manifest.fingerprint)
        if len(batch) != shard.rows:
            raise IndexCorruptError(f"shard {shard.name} has {len(batch)} rows, the manifest says {shard.rows}")
        if shard.dead:
            batch = batch.take(np.setdiff1d(np.arange(shard.rows), np.asarray(shard.dead, dtype=np.int64)))
        parts.append(batch)
    return UnitBatch.concat(parts)


def _load_catalog(root: Path, manifest: Manifest) -> list[CatalogEntry]:
    return read_catalog(root / manifest.catalog) if manifest.catalog else []
