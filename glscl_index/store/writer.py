"""Writing an index: stage units and catalog rows, then publish a new generation atomically.

Commit order: new shard, catalog and FAISS files are written and fsynced first,
then the manifest is replaced atomically (the commit point), then files that
neither this generation nor the previous one names are deleted. A crash at any
instant leaves the last published manifest and every file it names intact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from glscl_index.errors import IndexCorruptError, IndexNotFoundError
from glscl_index.store import faiss_index
from glscl_index.store.lock import WriterLock, make_index_dirs
from glscl_index.store.manifest import (
    FORMAT_VERSION,
    Manifest,
    ShardRef,
    publish_manifest,
    read_manifest,
    read_previous_manifest,
    require_model,
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
    def __init__(self, root: Path, lock: WriterLock, manifest: Manifest | None, catalog: dict[str, CatalogEntry]):
        self.root = root
        self.lock = lock
        self.manifest = manifest
        self.catalog = catalog
        self._staged: list[UnitBatch] = []
        self._dead_ids: set[str] = set()
        self._catalog_dirty = False
        self._video_ids: dict[str, np.ndarray] = {}
        self._previous: Manifest | None = None
        self._rebuild = False
        self._faiss_type = "auto"
        self._new_roots: list[str] | None = None
        self._bound = True
        self._video_paths: dict[str, set[str]] | None = None  # video_id -> indexed catalog paths, built on first use

    @classmethod
    def open(
        cls, root: str | Path, *, fingerprint: str | None = None, model_config: dict | None = None,
        dims: IndexDims | None = None, faiss_type: str = "auto", rebuild: bool = False, lock: WriterLock | None = None,
    ) -> IndexWriter:
        """Take the writer lock (unless ``lock`` is already held) and read the committed generation.

        The model is bound now when ``fingerprint`` is given, else later with ``bind_model``:
        a run that finds nothing to embed never loads one (``needs_model`` says when it must).
        """
        root = Path(root)
        faiss_index.choose_type(0, 1, faiss_type)  # validate before taking the lock
        if lock is None:
            lock = acquire_writer_lock(root)
        try:
            committed = _committed_manifest(root, rebuild)
            entries = read_catalog(root / committed.catalog) if committed and committed.catalog and not rebuild else []
            writer = cls(root, lock, committed, {e.path: e for e in entries})
            writer._previous = committed
            writer._rebuild = rebuild
            writer._faiss_type = faiss_type
            writer._bound = committed is not None and not rebuild
            if committed is not None and not rebuild:
                committed.faiss_type = faiss_type
            if fingerprint is not None:
                if dims is None:
                    raise TypeError("IndexWriter.open: a fingerprint needs its dims")
                writer.bind_model(fingerprint, model_config or {}, dims)
            return writer
        except BaseException:
            lock.release()
            raise

    @property
    def needs_model(self) -> bool:
        """True while no committed generation of this model backs the writer (a new index or --rebuild)."""
        return not self._bound

    def bind_model(self, fingerprint: str, model_config: dict, dims: IndexDims) -> None:
        """Check that the model is the index's own (unless rebuilding) and start a new index for it if needed."""
        committed = self._previous
        if committed is not None and not self._rebuild:
            require_model(
                self.root, committed, fingerprint, "use another --index directory, or --rebuild to replace it"
            )
        if self.needs_model:
            generation = committed.generation if committed else 0
            self.manifest = Manifest(
                generation, fingerprint, model_config, dims, self._faiss_type, [], "", roots=self.roots
            )
            self._catalog_dirty = True
            self._bound = True

    @property
    def roots(self) -> list[str]:
        """The folders and files this index keeps current (absolute paths, as given)."""
        if self._new_roots is not None:
            return list(self._new_roots)
        return list(self.manifest.roots) if self.manifest is not None else []

    def set_roots(self, roots: list[str]) -> None:
        if roots != self.roots:
            self._new_roots = list(roots)
            if self.manifest is not None:
                self.manifest = replace(self.manifest, roots=list(roots))
            self._catalog_dirty = True

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
            self._forget_path(entry.path)
            self.catalog[entry.path] = entry
            if entry.status == "indexed":
                self._paths_of_video().setdefault(entry.video_id, set()).add(entry.path)
            self._catalog_dirty = True

    def remove_catalog_paths(self, paths: Iterable[str]) -> None:
        for path in paths:
            self._forget_path(path)
            if self.catalog.pop(path, None) is not None:
                self._catalog_dirty = True

    def video_paths(self, video_id: str) -> set[str]:
        """The catalog paths that are this indexed video (one file under several paths is one video)."""
        return set(self._paths_of_video().get(video_id, ()))

    def remove_unreferenced_videos(self, video_ids: Iterable[str]) -> list[str]:
        """Remove the units of those videos that no indexed catalog path names any more; the ids removed."""
        orphans = sorted({v for v in video_ids if v and not self._paths_of_video().get(v)})
        self.remove_videos(orphans)
        return orphans

    def _paths_of_video(self) -> dict[str, set[str]]:
        if self._video_paths is None:
            self._video_paths = {}
            for entry in self.catalog.values():
                if entry.status == "indexed":
                    self._video_paths.setdefault(entry.video_id, set()).add(entry.path)
        return self._video_paths

    def _forget_path(self, path: str) -> None:
        old = self.catalog.get(path)
        if old is not None and old.status == "indexed":
            self._paths_of_video().get(old.video_id, set()).discard(path)

    def has_pending(self) -> bool:
        return bool(self._staged) or bool(self._dead_ids) or self._catalog_dirty

    def commit(self) -> Manifest:
        """Publish generation + 1 durably; a no-op when nothing is staged."""
        if self.manifest is None:
            raise AssertionError("bind_model() before committing to a new index")
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
        manifest = replace(
            self.manifest,
            generation=generation,
            shards=keep,
            catalog=catalog_name,
            faiss_file="",
            format_version=FORMAT_VERSION,
        )
        manifest.faiss_file = self._write_faiss(manifest)
        publish_manifest(self.root, manifest, self._previous)
        self._collect_garbage(manifest, self._previous)
        self._previous, self.manifest = manifest, manifest
        self._staged, self._dead_ids, self._catalog_dirty = [], set(), False
        return manifest

    def _bound_manifest(self) -> Manifest:
        """The generation being built on (a new index has none until ``bind_model``: an error then)."""
        if self.manifest is None:
            raise AssertionError("bind_model() before committing to a new index")
        return self.manifest

    def _new_shard_batches(self, merge: list[ShardRef]) -> Iterable[UnitBatch]:
        """Live rows of the shards being merged, a chunk at a time, then the staged units."""
        for shard in merge:
            manifest = self._bound_manifest()
            batch = read_shard(self.root / "shards" / shard.name, manifest.dims, manifest.fingerprint)
            live = np.setdiff1d(np.arange(shard.rows), np.asarray(shard.dead, dtype=np.int64))
            for start in range(0, len(live), MERGE_CHUNK):
                yield batch.take(live[start : start + MERGE_CHUNK])
        yield from self._staged

    def _write_faiss(self, manifest: Manifest) -> str:
        """Build the FAISS index over the new generation's live keys (reader row order); its file name, "" if empty."""
        committed = self._bound_manifest()
        if (
            committed.usable_faiss_file
            and manifest.shards == committed.shards
            and manifest.faiss_type == committed.faiss_type
        ):
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
        committed = self._bound_manifest()
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
            manifest = self._bound_manifest()
            batch = read_shard(self.root / "shards" / shard.name, manifest.dims, manifest.fingerprint)
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


def acquire_writer_lock(root: Path) -> WriterLock:
    """Create the index folder if needed and take its writer lock (IndexLockedError when another writer has it)."""
    make_index_dirs(root, "shards")
    lock = WriterLock(root)
    lock.acquire()
    return lock


def _committed_manifest(root: Path, rebuild: bool) -> Manifest | None:
    """The published manifest, None for a new index; with ``rebuild`` a damaged one does not matter."""
    try:
        return read_manifest(root)
    except IndexNotFoundError:
        return None
    except IndexCorruptError:
        if rebuild:
            return read_previous_manifest(root)
        raise
