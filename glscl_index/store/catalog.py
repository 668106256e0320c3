"""The catalog: what became of each source file, in one SQLite database whose rows carry their generations.

A commit of generation G inserts each changed entry with ``added = G`` and marks the entry it replaces
(or removes) with ``replaced = G``, in one transaction (WAL mode, synchronous=FULL): it costs what it
changes at any size. Format 4 kept a base file plus deltas and now and then folded them into a new base,
and that commit rewrote every entry (2.1 s and 21 MB at 1M entries, one commit in up to 32).

The manifest is still the one commit point. Generation G sees exactly the rows with
``added <= G < replaced``, so rows of a commit whose manifest was never published are invisible, and the
next writer deletes them (``CatalogDatabase.rollback_to``). Rows replaced KEEP_GENERATIONS generations
ago or earlier are deleted: a reader of an older generation (a search process opened before a dozen
commits) then finds no entry for the videos whose entries changed since, and shows their units' own path.
A repair or a rebuild writes a new database under a new name, so the previous generation keeps its own.

Indexes of format 4 (a Parquet base and deltas) are read as they are; the next commit writes their
entries into a database.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

from glscl_index.atomic import atomic_write
from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store.manifest import Manifest
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.shards import read_catalog

REMOVED = "removed"  # a format-4 delta's entry that deletes its path
DATABASE_SUFFIX = ".sqlite"
SIDE_FILES = ("-wal", "-shm")  # SQLite's write-ahead log and its index, beside a database being used
KEEP_GENERATIONS = 16
QUERY_CHUNK = 500  # video ids per query (SQLite limits the parameters of one statement)

COLUMNS = [f.name for f in fields(CatalogEntry)]
SCHEMA = """
CREATE TABLE entries (
    path TEXT NOT NULL, added INTEGER NOT NULL, replaced INTEGER,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, video_id TEXT NOT NULL,
    status TEXT NOT NULL, error TEXT NOT NULL, units INTEGER NOT NULL, indexed_at REAL NOT NULL,
    offline INTEGER NOT NULL,
    PRIMARY KEY (path, added)
) WITHOUT ROWID;
CREATE INDEX entries_by_video ON entries (video_id);
CREATE INDEX entries_replaced ON entries (replaced) WHERE replaced IS NOT NULL;
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
INSERT = f"INSERT INTO entries (added, {', '.join(COLUMNS)}) VALUES (?{', ?' * len(COLUMNS)})"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM entries"
VISIBLE = "added <= :g AND (replaced IS NULL OR replaced > :g)"


def is_database(name: str) -> bool:
    return name.endswith(DATABASE_SUFFIX)


def database_name(generation: int) -> str:
    return f"catalog-{generation:06d}-{uuid.uuid4().hex[:8]}{DATABASE_SUFFIX}"


def catalog_files(manifest: Manifest) -> list[str]:
    """The database, or a format-4 index's base then deltas, oldest first ([] before the first commit)."""
    return [name for name in (manifest.catalog, *manifest.catalog_deltas) if name]


def create_database(path: Path, entries: list[CatalogEntry], generation: int) -> None:
    """Write a database of ``entries`` (visible from ``generation`` on) at ``path``, whole or not at all."""
    with atomic_write(path) as tmp:
        tmp.unlink(missing_ok=True)  # a crashed writer's half-written temporary file
        connection = sqlite3.connect(tmp)
        try:
            connection.execute("PRAGMA journal_mode=OFF")  # a new temporary file: nothing to roll back to
            connection.executescript(SCHEMA)
            connection.executemany(INSERT, (_row(generation, e) for e in entries))
            connection.execute("INSERT INTO meta VALUES ('generation', ?)", (generation,))
            connection.commit()
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()


def _row(generation: int, entry: CatalogEntry) -> tuple:
    # Attribute by attribute: dataclasses.astuple deep-copies each entry (a minute for 1M entries).
    return (generation, *(getattr(entry, name) for name in COLUMNS))


def _entry(row: tuple) -> CatalogEntry:
    path, size, mtime_ns, content_hash, video_id, status, error, units, indexed_at, offline = row
    return CatalogEntry(path, size, mtime_ns, content_hash, video_id, status, error, units, indexed_at, bool(offline))


class CatalogDatabase:
    """The writer's connection to the database of the committed generation."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():  # sqlite3 would create an empty database
            raise FileNotFoundError(2, "No such file", str(path))
        try:
            self._connection = sqlite3.connect(path)
            self._connection.execute("PRAGMA synchronous=FULL")
            self._generation = self._connection.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        except sqlite3.Error as exc:
            raise _damaged(path, exc) from exc

    def rollback_to(self, generation: int) -> None:
        """Forget the changes of generations after ``generation`` (a commit that crashed before its manifest)."""
        if self._generation <= generation:
            return
        try:
            with self._connection:
                self._connection.execute("DELETE FROM entries WHERE added > ?", (generation,))
                self._connection.execute("UPDATE entries SET replaced = NULL WHERE replaced > ?", (generation,))
                self._set_generation(generation)
        except sqlite3.Error as exc:
            raise _damaged(self.path, exc) from exc

    def current(self) -> list[CatalogEntry]:
        """The entries of the newest generation, by path."""
        try:
            return [_entry(r) for r in self._connection.execute(f"{SELECT} WHERE replaced IS NULL ORDER BY path")]
        except sqlite3.Error as exc:
            raise _damaged(self.path, exc) from exc

    def apply(self, generation: int, changed: list[CatalogEntry], removed: list[str]) -> None:
        """Generation ``generation``'s changes, durably, in one transaction."""
        self.rollback_to(generation - 1)  # an earlier try at this generation failed before its manifest
        try:
            with self._connection:
                self._connection.executemany(
                    "UPDATE entries SET replaced = ? WHERE path = ? AND replaced IS NULL",
                    [(generation, path) for path in [e.path for e in changed] + removed],
                )
                self._connection.executemany(INSERT, [_row(generation, e) for e in changed])
                self._connection.execute(
                    "DELETE FROM entries WHERE replaced <= ?", (generation - KEEP_GENERATIONS,)
                )
                self._set_generation(generation)
        except sqlite3.Error as exc:
            raise _damaged(self.path, exc) from exc

    def close(self) -> None:
        """Fold the write-ahead log into the database, so the folder can be copied as plain files."""
        try:
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # a reader holds the log: the next writer folds it
        self._connection.close()

    def _set_generation(self, generation: int) -> None:
        self._connection.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (generation,))
        self._generation = generation


def rollback_database(path: Path, generation: int) -> None:
    """Delete the rows of generations after ``generation`` from the database at ``path`` (the writer lock held)."""
    database = CatalogDatabase(path)
    try:
        database.rollback_to(generation)
    finally:
        database.close()


@dataclass
class CatalogCounts:
    indexed: int  # entries of indexed files
    offline: int  # entries under a root that was missing at the last run
    failed: list[CatalogEntry]  # entries of files that could not be indexed, by path


class GenerationCatalog:
    """One generation's entries, read on demand; thread-safe (a server's requests share it).

    The files are opened now, so that a writer's garbage collection cannot take them away.
    """

    def __init__(self, root: Path, manifest: Manifest):
        self.root = root
        self.manifest = manifest
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._sources: list[BinaryIO] = []
        self._replayed: list[CatalogEntry] | None = None  # a format-4 catalog, read once
        self._indexed: dict[str, list[CatalogEntry]] | None = None  # its indexed entries by video id
        if is_database(manifest.catalog):
            self._connection = _open_read_only(root / manifest.catalog)
        else:
            self._sources = _open_files(root, manifest)

    def entries(self) -> list[CatalogEntry]:
        """Every entry of the generation, by path."""
        with self._lock:
            if self._connection is None:
                if self._replayed is None:
                    self._replayed = _replay(self.root, self.manifest, self._sources)
                return list(self._replayed)
            return self._query(f"{SELECT} WHERE {VISIBLE} ORDER BY path", {"g": self.manifest.generation})

    def counts(self) -> CatalogCounts:
        """What `glscl info` reports, counted by SQLite (reading 1M entries into Python took 8 s of `glscl info`:
        a one-off timing)."""
        if self._connection is None:
            entries = self.entries()
            return CatalogCounts(
                sum(e.status == "indexed" for e in entries), sum(e.offline for e in entries),
                [e for e in entries if e.status == "failed"],
            )
        generation = {"g": self.manifest.generation}
        with self._lock:
            try:
                indexed, offline = self._connection.execute(
                    f"SELECT coalesce(sum(status = 'indexed'), 0), coalesce(sum(offline != 0), 0) "
                    f"FROM entries WHERE {VISIBLE}", generation,
                ).fetchone()
            except sqlite3.Error as exc:
                raise _damaged(self.root / self.manifest.catalog, exc) from exc
            failed = self._query(f"{SELECT} WHERE status = 'failed' AND {VISIBLE} ORDER BY path", generation)
        return CatalogCounts(indexed, offline, failed)

    def indexed_paths(self, video_ids: list[str]) -> dict[str, list[CatalogEntry]]:
        """The indexed entries of each of ``video_ids`` that has some (one video may be found under several paths)."""
        if self._connection is None:
            return self._replayed_indexed(video_ids)
        unique = sorted(set(video_ids))
        found: dict[str, list[CatalogEntry]] = {}
        for start in range(0, len(unique), QUERY_CHUNK):
            chunk = unique[start : start + QUERY_CHUNK]
            marks = ", ".join(f":v{i}" for i in range(len(chunk)))
            with self._lock:
                entries = self._query(
                    f"{SELECT} WHERE video_id IN ({marks}) AND status = 'indexed' AND {VISIBLE} ORDER BY path",
                    {"g": self.manifest.generation, **{f"v{i}": v for i, v in enumerate(chunk)}},
                )
            for entry in entries:
                found.setdefault(entry.video_id, []).append(entry)
        return found

    def _replayed_indexed(self, video_ids: list[str]) -> dict[str, list[CatalogEntry]]:
        """``indexed_paths`` of a format-4 catalog: every entry is read once, then looked up in memory."""
        if self._indexed is None:
            indexed: dict[str, list[CatalogEntry]] = {}
            for entry in self.entries():
                if entry.status == "indexed":
                    indexed.setdefault(entry.video_id, []).append(entry)
            self._indexed = indexed
        return {v: self._indexed[v] for v in video_ids if v in self._indexed}

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
            for source in self._sources:
                source.close()

    def _query(self, sql: str, parameters: dict) -> list[CatalogEntry]:
        assert self._connection is not None
        try:
            return [_entry(r) for r in self._connection.execute(sql, parameters)]
        except sqlite3.Error as exc:
            raise _damaged(self.root / self.manifest.catalog, exc) from exc


def read_generation_catalog(root: Path, manifest: Manifest) -> list[CatalogEntry]:
    """The entries of ``manifest``'s generation, by path."""
    catalog = GenerationCatalog(root, manifest)
    try:
        return catalog.entries()
    finally:
        catalog.close()


def check_database(path: Path, deep: bool) -> None:
    """Raise IndexCorruptError when the database at ``path`` cannot be read (``deep``: SQLite's integrity check)."""
    connection = _open_read_only(path)
    try:
        check = "PRAGMA quick_check" if deep else "SELECT value FROM meta WHERE key = 'generation'"
        result = connection.execute(check).fetchone()
        if result is None or (deep and result[0] != "ok"):
            raise IndexCorruptError(f"catalog {path.name} is damaged: {result}{repair_hint(path.parent)}")
    except sqlite3.Error as exc:
        raise _damaged(path, exc) from exc
    finally:
        connection.close()


def _open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection (never creates the file: a missing one raises FileNotFoundError), on read-only
    media too (there SQLite cannot create the log's index beside the database: it is opened as immutable)."""
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    uri = path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        try:
            connection = sqlite3.connect(f"{uri}?{mode}", uri=True, check_same_thread=False)
            connection.execute("SELECT 1 FROM meta LIMIT 1").fetchall()  # opens the files now
            return connection
        except sqlite3.OperationalError as exc:
            failure: sqlite3.Error = exc  # read-only media: tried again as immutable
        except sqlite3.Error as exc:
            raise _damaged(path, exc) from exc
    raise _damaged(path, failure)


def missing_catalog(root: Path, manifest: Manifest, exc: FileNotFoundError) -> IndexCorruptError:
    """The one-line error for a catalog file the manifest names and the folder lacks."""
    name = Path(exc.filename).name if exc.filename else manifest.catalog
    return IndexCorruptError(f"the catalog {name} of {root} is missing{repair_hint(root)}")


def _damaged(path: Path, exc: Exception) -> IndexCorruptError:
    return IndexCorruptError(f"catalog {path.name} is damaged ({exc}){repair_hint(path.parent)}")


def _open_files(root: Path, manifest: Manifest) -> list[BinaryIO]:
    opened: list[BinaryIO] = []
    try:
        for name in catalog_files(manifest):
            opened.append(open(root / name, "rb"))
    except BaseException:
        for source in opened:
            source.close()
        raise
    return opened


def _replay(root: Path, manifest: Manifest, sources: list[BinaryIO]) -> list[CatalogEntry]:
    """A format-4 catalog: the base's entries, each delta's replacing or removing those of its paths."""
    entries: dict[str, CatalogEntry] = {}
    for name, source in zip(catalog_files(manifest), sources, strict=True):
        source.seek(0)
        for entry in read_catalog(root / name, source):
            if entry.status == REMOVED:
                entries.pop(entry.path, None)
            else:
                entries[entry.path] = entry
    return sorted(entries.values(), key=lambda e: e.path)
