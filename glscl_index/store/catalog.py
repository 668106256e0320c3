"""The catalog of a generation: a base file plus deltas, so a commit writes only the entries it changed.

A delta is a catalog file (store/shards.py) whose entries replace the base's entry of the same path;
an entry with status "removed" deletes it. The writer folds the deltas into a new base when they hold
more than an eighth of the catalog (or there are MAX_DELTAS of them), so reading stays about one pass.
Deltas rather than an embedded database (SQLite): the manifest stays the one commit point, a reader's
generation names exactly the catalog files it sees, and garbage collection treats them like any other file.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from glscl_index.store.manifest import Manifest
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.shards import read_catalog, write_catalog

REMOVED = "removed"
MAX_DELTAS = 32
MIN_FOLD_ROWS = 1000


def catalog_files(manifest: Manifest) -> list[str]:
    """The base then the deltas, oldest first ([] before the first commit)."""
    return [name for name in (manifest.catalog, *manifest.catalog_deltas) if name]


def read_generation_catalog(
    root: Path, manifest: Manifest, sources: list[BinaryIO] | None = None
) -> list[CatalogEntry]:
    """The entries of ``manifest``'s generation, by path order of first appearance (``sources``: the files, open)."""
    names = catalog_files(manifest)
    entries: dict[str, CatalogEntry] = {}
    for at, name in enumerate(names):
        for entry in read_catalog(root / name, None if sources is None else sources[at]):
            if entry.status == REMOVED:
                entries.pop(entry.path, None)
            else:
                entries[entry.path] = entry
    return list(entries.values())


def write_delta(path: Path, changed: list[CatalogEntry], removed: list[str]) -> int:
    """Write the changes of one commit; returns the rows written."""
    rows = sorted(changed, key=lambda e: e.path) + [
        CatalogEntry(path=p, size=0, mtime_ns=0, content_hash="", video_id="", status=REMOVED, error="", units=0,
                     indexed_at=0.0)
        for p in sorted(removed)
    ]
    write_catalog(path, rows)
    return len(rows)


def should_fold(manifest: Manifest, catalog_size: int, new_rows: int) -> bool:
    """Fold into a new base when the deltas (with ``new_rows`` more) outgrow an eighth of the catalog."""
    if not manifest.catalog:
        return True
    rows = manifest.catalog_delta_rows + new_rows
    return len(manifest.catalog_deltas) + 1 > MAX_DELTAS or rows > max(MIN_FOLD_ROWS, catalog_size // 8)
