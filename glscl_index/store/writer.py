"""Writing an index: stage units and catalog rows, then publish a new generation atomically.

A commit costs what it changes: it writes one new segment (a Parquet shard, its Arrow copy and
its keys' codes in the index's encoder, store/ann.py) for the units added, tombstones (the manifest's
dead rows) for the units removed, the changed catalog entries (one SQLite transaction,
store/catalog.py) and the manifest. Now and then the change makes upkeep due, published as the next
generation: a merge of segments (store/merge_policy.py), the shared pqscan encoder trained again as
the collection grows (then every segment's codes are written again: a few hundred bytes per unit),
the search parameters measured again on the collection's own keys (ann.tune).

Commit order: every new file is written and fsynced first, then the catalog's transaction is
committed (its rows are invisible to readers until the manifest names their generation), then the
manifest is replaced atomically (the commit point), then files that neither this generation nor
the previous one names are deleted. A crash at any instant, merges included, leaves the last published manifest
and every file it names intact; readers of an older generation keep their open files.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from glscl_index.errors import IndexCorruptError, IndexNotFoundError
from glscl_index.store import ann_state
from glscl_index.store.catalog import (
    SIDE_FILES,
    CatalogDatabase,
    create_database,
    database_name,
    is_database,
    missing_catalog,
    read_generation_catalog,
)
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
from glscl_index.store.merge_policy import MergePolicy
from glscl_index.store.schema import CatalogEntry, IndexDims, UnitBatch
from glscl_index.store.segment_codes import SegmentCoder
from glscl_index.store.shards import SHARD_SUFFIX, read_shard, write_shard

MERGE_CHUNK = 16384  # rows copied at a time when merging shards (bounds the writer's memory)


class IndexWriter:
    def __init__(
        self, root: Path, lock: WriterLock, manifest: Manifest | None, catalog: dict[str, CatalogEntry],
        database: CatalogDatabase | None = None,
    ):
        self.root = root
        self._database = database  # the committed generation's catalog database (None: one is written at commit)
        self.lock = lock
        self.manifest = manifest
        self.catalog = catalog
        self._staged: list[UnitBatch] = []
        self._dead_ids: set[str] = set()
        self._catalog_dirty = False
        self._changed_paths: set[str] = set()  # catalog entries set since the last commit
        self._removed_paths: set[str] = set()
        self._coder = SegmentCoder(root)
        self.policy = MergePolicy()
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
        faiss_type = ann_state.resolve_choice(faiss_type)  # validate before taking the lock
        if lock is None:
            lock = acquire_writer_lock(root)
        try:
            committed = _committed_manifest(root, rebuild)
            database, entries = _committed_catalog(root, committed, rebuild)
            writer = cls(root, lock, committed, {e.path: e for e in entries}, database)
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
        try:
            if self._database is not None:
                self._database.close()
        finally:
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
            self._changed_paths.add(entry.path)
            self._removed_paths.discard(entry.path)
            if entry.status == "indexed" and self._video_paths is not None:
                self._video_paths.setdefault(entry.video_id, set()).add(entry.path)
            self._catalog_dirty = True

    def remove_catalog_paths(self, paths: Iterable[str]) -> None:
        for path in paths:
            self._forget_path(path)
            if self.catalog.pop(path, None) is not None:
                self._removed_paths.add(path)
                self._changed_paths.discard(path)
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
        # Built from the catalog on first use and kept current after: a commit that only adds files never
        # builds it (a pass over every entry: seconds at 1M).
        if self._video_paths is None:
            self._video_paths = {}
            for entry in self.catalog.values():
                if entry.status == "indexed":
                    self._video_paths.setdefault(entry.video_id, set()).add(entry.path)
        return self._video_paths

    def _forget_path(self, path: str) -> None:
        old = self.catalog.get(path)
        if old is not None and old.status == "indexed" and self._video_paths is not None:
            self._video_paths.get(old.video_id, set()).discard(path)

    def has_pending(self) -> bool:
        return bool(self._staged) or bool(self._dead_ids) or self._catalog_dirty

    def commit(self) -> Manifest:
        """Publish the staged changes as generation + 1 durably (``publish_changes``), then the upkeep they made due
        as the generation after (``upkeep``); a no-op when neither has work."""
        self.publish_changes()
        return self.upkeep()

    def publish_changes(self) -> Manifest:
        """Publish the staged units, removals and catalog changes as generation + 1: a new segment coded in the
        index's encoder, tombstones and the catalog's rows; a no-op when nothing is staged.

        Searches see the new videos from here on, and a crash in the upkeep after it keeps them."""
        committed = self._bound_manifest()
        if not self.has_pending():
            return committed
        generation = committed.generation + 1
        shards = [self._mark_dead(s) for s in committed.shards]
        if self._staged:
            staged_rows = sum(len(b) for b in self._staged)
            shards += self._write_segment(generation, iter(self._staged), staged_rows, committed)
        manifest = replace(committed, generation=generation, shards=shards, format_version=FORMAT_VERSION)
        manifest.ann = self._coder.code(manifest, upkeep=False)
        self._write_catalog_changes(manifest, committed)
        self._publish(manifest)
        self._staged, self._dead_ids, self._catalog_dirty = [], set(), False
        self._changed_paths, self._removed_paths = set(), set()
        return manifest

    def upkeep(self) -> Manifest:
        """Publish the committed generation's due upkeep as its next: a merge of segments (store/merge_policy.py),
        the encoder trained again, the search tuned again (store/segment_codes.py); a no-op when none is due.

        Its own generation, so the minutes it can take at 1M units (a tuning) neither hold back the videos just
        published nor risk them; a run that dies in it leaves the upkeep due, and the next commit does it."""
        committed = self._bound_manifest()
        if not self.upkeep_due():
            return committed
        merge = self.policy.select(committed.shards)
        generation = committed.generation + 1
        shards = committed.shards
        if merge:
            live = sum(s.rows - len(s.dead) for s in merge)
            merged = self._write_segment(generation, self._live_rows(merge, committed), live, committed)
            shards = [s for s in shards if s not in merge] + merged
        manifest = replace(committed, generation=generation, shards=shards)
        manifest.ann = self._coder.code(manifest)
        self._publish(manifest)
        return manifest

    def upkeep_due(self) -> str:
        """What ``upkeep`` would do now, in words ('' when nothing is due): for a progress display."""
        committed = self._bound_manifest()
        merge = self.policy.select(committed.shards)
        work = [f"merging {len(merge)} segments"] if merge else []
        coding = self._coder.upkeep_due(committed)
        return ", ".join(work + ([coding] if coding else []))

    def _publish(self, manifest: Manifest) -> None:
        publish_manifest(self.root, manifest, self._previous)
        self._collect_garbage(manifest, self._previous)
        self._previous, self.manifest = manifest, manifest

    def _bound_manifest(self) -> Manifest:
        """The generation being built on (a new index has none until ``bind_model``: an error then)."""
        if self.manifest is None:
            raise AssertionError("bind_model() before committing to a new index")
        return self.manifest

    def _write_segment(
        self, generation: int, batches: Iterator[UnitBatch], rows: int, committed: Manifest
    ) -> list[ShardRef]:
        """A new segment of ``batches``' ``rows`` rows ([] when there are none: the empty file is left to garbage
        collection); with an Arrow copy beside it when the merge policy says so."""
        name = f"shard-{generation:06d}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"
        copy = self.policy.copies(rows)
        written = write_shard(self.root / "shards" / name, batches, committed.dims, copy=copy)
        return [ShardRef(name, written, [], copy=copy)] if written else []

    def _live_rows(self, segments: list[ShardRef], committed: Manifest) -> Iterator[UnitBatch]:
        """Live rows of the segments being merged, a chunk at a time."""
        for segment in segments:
            batch = read_shard(self.root / "shards" / segment.name, committed.dims, committed.fingerprint)
            live = np.setdiff1d(np.arange(segment.rows), np.asarray(segment.dead, dtype=np.int64))
            for start in range(0, len(live), MERGE_CHUNK):
                yield batch.take(live[start : start + MERGE_CHUNK])

    def _write_catalog_changes(self, manifest: Manifest, committed: Manifest) -> None:
        """The entries changed since the last commit, in the database; a new database of every entry for a new
        index, a rebuild or a format-4 catalog."""
        if self._database is not None:  # always the committed generation's: a rebuild or a new index has none
            changed = sorted((self.catalog[p] for p in self._changed_paths if p in self.catalog), key=lambda e: e.path)
            removed = sorted(self._removed_paths)
            if changed or removed:
                self._database.apply(manifest.generation, changed, removed)
            return
        name = database_name(manifest.generation)
        create_database(self.root / name, sorted(self.catalog.values(), key=lambda e: e.path), manifest.generation)
        manifest.catalog, manifest.catalog_deltas, manifest.catalog_delta_rows = name, [], 0
        if self._database is not None:
            self._database.close()
        self._database = CatalogDatabase(self.root / name)

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
        return replace(shard, dead=dead)

    def _collect_garbage(self, current: Manifest, previous: Manifest | None) -> None:
        """Delete files named by neither the new nor the previous generation, and crashed writers' temp files."""
        wanted = current.files() | (previous.files() if previous else set())
        candidates = list(self.root.glob("catalog-*")) + list(self.root.glob("faiss-*.index"))
        candidates += list(self.root.glob("ann-*.faiss"))
        candidates += list((self.root / "shards").glob("*"))
        candidates += list(self.root.glob("*.tmp"))
        for path in candidates:
            name = str(path.relative_to(self.root))
            # A database's log files go with it.
            owner = next((name[: -len(side)] for side in SIDE_FILES if name.endswith(side)), name)
            if owner not in wanted:
                path.unlink(missing_ok=True)


def acquire_writer_lock(root: Path) -> WriterLock:
    """Create the index folder if needed and take its writer lock (IndexLockedError when another writer has it)."""
    make_index_dirs(root, "shards")
    lock = WriterLock(root)
    lock.acquire()
    return lock


def _committed_catalog(
    root: Path, committed: Manifest | None, rebuild: bool
) -> tuple[CatalogDatabase | None, list[CatalogEntry]]:
    """The committed generation's catalog database (None for a format-4 catalog) and its entries."""
    if committed is None or rebuild:
        return None, []
    try:
        if not is_database(committed.catalog):
            return None, read_generation_catalog(root, committed)
        database = CatalogDatabase(root / committed.catalog)
    except FileNotFoundError as exc:
        raise missing_catalog(root, committed, exc) from None
    try:
        database.rollback_to(committed.generation)
        return database, database.current()
    except BaseException:
        database.close()
        raise


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
