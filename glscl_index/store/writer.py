"""Writing an index: stage units and catalog rows, then publish a new generation atomically.

Commit order: new shard and catalog files are written and fsynced first, then
the manifest is replaced atomically (the commit point), then files that
neither this generation nor the previous one names are deleted. A crash at any
instant leaves the last published manifest and every file it names intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from glscl_index.errors import IndexMismatchError, IndexNotFoundError
from glscl_index.store.faiss_index import choose_type
from glscl_index.store.lock import WriterLock
from glscl_index.store.manifest import Manifest, ShardRef, publish_manifest, read_manifest
from glscl_index.store.schema import CatalogEntry, IndexDims, UnitBatch
from glscl_index.store.shards import read_catalog, read_shard, write_catalog, write_shard

MAX_SHARDS = 16  # more than this and small shards are merged
MAX_DEAD_FRACTION = 0.3  # a shard with more dead rows than this is rewritten


class IndexWriter:
    def __init__(self, root: Path, lock: WriterLock, manifest: Manifest, catalog: dict[str, CatalogEntry]):
        self.root = root
        self.lock = lock
        self.manifest = manifest
        self.catalog = catalog
        self._staged: list[UnitBatch] = []
        self._dead_ids: set[str] = set()
        self._catalog_dirty = False
        self._video_ids: dict[str, np.ndarray] = {}
        self._previous: Manifest | None = None

    @classmethod
    def open(
        cls, root: str | Path, *, fingerprint: str, model_config: dict, dims: IndexDims,
        faiss_type: str = "auto", rebuild: bool = False,
    ) -> "IndexWriter":
        root = Path(root)
        choose_type(0, faiss_type)  # validate early
        (root / "shards").mkdir(parents=True, exist_ok=True)
        lock = WriterLock(root)
        lock.acquire()
        try:
            try:
                committed = read_manifest(root)
            except IndexNotFoundError:
                committed = None
            if committed is not None and committed.fingerprint != fingerprint and not rebuild:
                raise IndexMismatchError(
                    f"{root} was built with another model (fingerprint {committed.fingerprint}, this one is "
                    f"{fingerprint}); use another --index directory, or --rebuild to replace it"
                )
            if committed is None or rebuild:
                generation = committed.generation if committed else 0
                manifest = Manifest(generation, fingerprint, model_config, dims, faiss_type, [], "")
                catalog: dict[str, CatalogEntry] = {}
                writer = cls(root, lock, manifest, catalog)
                writer._catalog_dirty = True
                writer._previous = committed
                return writer
            committed.faiss_type = faiss_type
            entries = read_catalog(root / committed.catalog) if committed.catalog else []
            writer = cls(root, lock, committed, {e.path: e for e in entries})
            writer._previous = committed
            return writer
        except BaseException:
            lock.release()
            raise

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.lock.release()

    def add_units(self, batch: UnitBatch) -> None:
        if len(batch):
            self._staged.append(batch)

    def remove_videos(self, video_ids: Iterable[str]) -> None:
        """Every unit of these videos staged or committed so far becomes dead."""
        ids = set(video_ids)
        if not ids:
            return
        self._dead_ids |= ids
        self._staged = [b.take(~np.isin(b.video_id, list(ids))) for b in self._staged]

    def set_catalog_entries(self, entries: Iterable[CatalogEntry]) -> None:
        for entry in entries:
            self.catalog[entry.path] = entry
            self._catalog_dirty = True

    def remove_catalog_paths(self, paths: Iterable[str]) -> None:
        for path in paths:
            if self.catalog.pop(path, None) is not None:
                self._catalog_dirty = True

    def has_pending(self) -> bool:
        return bool(self._staged) or bool(self._dead_ids) or self._catalog_dirty

    def commit(self) -> Manifest:
        """Publish generation + 1 durably; a no-op when nothing is staged."""
        if not self.has_pending():
            return self.manifest
        generation = self.manifest.generation + 1
        shards = [self._mark_dead(s) for s in self.manifest.shards]
        keep, merge = self._compaction_split(shards)
        batches = [self._live_rows(s) for s in merge] + self._staged
        batches = [b for b in batches if len(b)]
        if batches:
            name = f"shard-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"
            merged = UnitBatch.concat(batches)
            write_shard(self.root / "shards" / name, merged)
            keep.append(ShardRef(name, len(merged), []))
        catalog_name = f"catalog-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"
        write_catalog(self.root / catalog_name, sorted(self.catalog.values(), key=lambda e: e.path))
        manifest = Manifest(
            generation, self.manifest.fingerprint, self.manifest.model_config, self.manifest.dims,
            self.manifest.faiss_type, keep, catalog_name,
        )
        publish_manifest(self.root, manifest, self._previous)
        self._collect_garbage(manifest, self._previous)
        self._previous, self.manifest = manifest, manifest
        self._staged, self._dead_ids, self._catalog_dirty = [], set(), False
        return manifest

    def _shard_video_ids(self, shard: ShardRef) -> np.ndarray:
        if shard.name not in self._video_ids:
            table = pq.read_table(self.root / "shards" / shard.name, columns=["video_id"])
            self._video_ids[shard.name] = table.column("video_id").to_numpy(zero_copy_only=False).astype(object)
        return self._video_ids[shard.name]

    def _mark_dead(self, shard: ShardRef) -> ShardRef:
        if not self._dead_ids:
            return shard
        hits = np.flatnonzero(np.isin(self._shard_video_ids(shard), list(self._dead_ids)))
        dead = sorted(set(shard.dead) | set(hits.tolist()))
        return ShardRef(shard.name, shard.rows, dead)

    def _compaction_split(self, shards: list[ShardRef]) -> tuple[list[ShardRef], list[ShardRef]]:
        merge = [s for s in shards if s.rows == 0 or len(s.dead) / s.rows > MAX_DEAD_FRACTION]
        keep = [s for s in shards if s not in merge]
        if len(keep) >= MAX_SHARDS:
            keep.sort(key=lambda s: s.rows, reverse=True)
            merge += keep[MAX_SHARDS // 2:]
            keep = keep[: MAX_SHARDS // 2]
        return keep, merge

    def _live_rows(self, shard: ShardRef) -> UnitBatch:
        batch = read_shard(self.root / "shards" / shard.name, self.manifest.dims, self.manifest.fingerprint)
        return batch.take(np.setdiff1d(np.arange(shard.rows), np.asarray(shard.dead, dtype=np.int64)))

    def _collect_garbage(self, current: Manifest, previous: Manifest | None) -> None:
        """Delete files named by neither the new nor the previous generation, and crashed writers' temp files."""
        wanted = current.files() | (previous.files() if previous else set())
        candidates = list(self.root.glob("catalog-*.parquet")) + list((self.root / "shards").glob("*"))
        candidates += list(self.root.glob("*.tmp"))
        for path in candidates:
            if str(path.relative_to(self.root)) not in wanted:
                path.unlink(missing_ok=True)
