"""Catalog rows the indexing job writes: a file indexed as a video, a file that failed (with its reason)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from glscl_index.store.schema import CatalogEntry
from glscl_index.store.writer import IndexWriter
from glscl_index.video.scan import SourceFile

if TYPE_CHECKING:
    from pipelines.index import IndexSummary


def indexed_entry(file: SourceFile, digest: str, video_id: str, units: int, indexed_at: float) -> CatalogEntry:
    return CatalogEntry(
        path=file.path, size=file.size, mtime_ns=file.mtime_ns, content_hash=digest, video_id=video_id,
        status="indexed", error="", units=units, indexed_at=indexed_at,
    )


def record_failure(
    writer: IndexWriter,
    summary: IndexSummary,
    path: str,
    reason: str,
    size: int,
    mtime_ns: int,
    digest: str,
    now: float,
    video_id: str = "",
) -> None:
    writer.set_catalog_entries([
        CatalogEntry(
            path=path, size=size, mtime_ns=mtime_ns, content_hash=digest, video_id=video_id,
            status="failed", error=reason, units=0, indexed_at=now,
        )
    ])
    summary.failed += 1
    summary.failures.append({"path": path, "reason": reason})
