"""Writing an index: stage units and catalog rows, then publish a new generation atomically.

Commit order: new shard, catalog and FAISS files are written and fsynced first,
then the manifest is replaced atomically (the commit point), then files that
neither this generation nor the previous one names are deleted. A crash at any
instant leaves the last published manifest and every file it names intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np

from glscl_index.errors import IndexMismatchError, IndexNotFoundError
from glscl_index.store import faiss_index
from glscl_index.store.lock import WriterLock
from glscl_index.store.manifest import (
    Manifest,
    ShardRef,
    publish_manifest,
    read_manifest,
)
from glscl_index.store.reader import load_units
from glscl_index.store.schema import CatalogEntry, IndexDims, UnitBatch
from glscl_index.store.shards import (
    SHARD_SUFFIX,
    read_catalog,
    read_shard,
    write_catalog,
    write_shard,
)
from glscl_index.store.unit_keys import UnitKeys

MAX_SHARDS = 16  # more than this and small shards are merged
MAX_DEAD_FRACTION = 0.3  # a shard with more dead rows than this is rewritten
MERGE_CHUNK = 16384  # rows copied at a time when merging shards (bounds the writer's memory)


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
    ) -> IndexWriter:
        root = Path(root)
        faiss_index.choose_type(0, dims.key_dim, faiss_type)  # validate early
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

    def __enter__(self) -> IndexWriter:
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
        if merge or self._staged:
            name = f"shard-{generation:06d}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"
            rows = write_shard(self.root / "shards" / name, self._new_shard_batches(merge), self.manifest.dims)
            if rows:  # an empty file is left to garbage collection
                keep.append(ShardRef(name, rows, []))
        catalog_name = f"catalog-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"
        write_catalog(self.root / catalog_name, sorted(self.catalog.values(), key=lambda e: e.path))
        manifest = Manifest(
            generation, self.manifest.fingerprint, self.manifest.model_config, self.manifest.dims,
            self.manifest.faiss_type, keep, catalog_name,
        )
        manifest.faiss_file = self._write_faiss(manifest)
        publish_manifest(self.root, manifest, self._previous)
        self._collect_garbage(manifest, self._previous)
        self._previous, self.manifest = manifest, manifest
        self._staged, self._dead_ids, self._catalog_dirty = [], set(), False
        return manifest

    def _new_shard_batches(self, merge: list[ShardRef]) -> Iterable[UnitBatch]:
        """Live rows of the shards being merged, a chunk at a time, then the staged units."""
        for shard in merge:
            batch = read_shard(self.root / "shards" / shard.name, self.manifest.dims, self.manifest.fingerprint)
            live = np.setdiff1d(np.arange(shard.rows), np.asarray(shard.dead, dtype=np.int64))
            for start in range(0, len(live), MERGE_CHUNK):
                yield batch.take(live[start : start + MERGE_CHUNK])
        yield from self._staged

    def _write_faiss(self, manifest: Manifest) -> str:
        """Build the FAISS index over the new generation's live keys (reader row order); its file name, "" if empty."""
        committed = self.manifest
        if committed.usable_faiss_file and manifest.shards == committed.shards and manifest.faiss_type == committed.faiss_type:
            # Only the catalog changed (e.g. a scheduled run that found a new broken file):
            # the same units, so the same index file serves the new generation.
            return committed.faiss_file
        keys = UnitKeys(load_units(self.root, manifest), manifest.dims)
        if len(keys) == 0:
            return ""
        previous, kept_rows = self._previous_faiss(manifest)
        index = faiss_index.build_index(keys, manifest.faiss_type, previous, kept_rows)
        name = f"faiss-{manifest.generation:06d}-{uuid.uuid4().hex[:8]}.index"
        faiss_index.write_index(index, self.root / name)
        return name

    def _previous_faiss(self, manifest: Manifest) -> tuple[faiss.Index | None, int]:
        """The committed generation's index and how many of its rows lead the new row order unchanged
        (all of them when shards were only appended, else 0: only its training is reusable)."""
        committed = self.manifest
        if not committed.usable_faiss_file:
            return None, 0
        try:
            index = faiss.read_index(str(self.root / committed.usable_faiss_file))
        except (RuntimeError, OSError):
            return None, 0  # damaged or gone: the keys in the shards rebuild it
        appended = manifest.shards[: len(committed.shards)] == committed.shards
        return index, committed.live_units if appended else 0

    def _shard_video_ids(self, shard: ShardRef) -> np.ndarray:
        if shard.name not in self._video_ids:
            batch = read_shard(self.root / "shards" / shard.name, self.manifest.dims, self.manifest.fingerprint)
            self._video_ids[shard.name] = batch.video_id
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

    def _collect_garbage(self, current: Manifest, previous: Manifest | None) -> None:
        """Delete files named by neither the new nor the previous generation, and crashed writers' temp files."""
        wanted = current.files() | (previous.files() if previous else set())
        candidates = list(self.root.glob("catalog-*.parquet")) + list(self.root.glob("faiss-*.index"))
        candidates += list((self.root / "shards").glob("*"))
        candidates += list(self.root.glob("*.tmp"))
        for path in candidates:
            if str(path.relative_to(self.root)) not in wanted:
                path.unlink(missing_ok=True)
