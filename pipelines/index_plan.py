"""What a `glscl index` run has to do: a pure function from a scan and the catalog to typed tasks.

Nothing here reads video or writes the index; it only hashes files whose size or
mtime changed. The rules that keep an index safe live here:

- an entry is removed only when its root was scanned, found and not empty, and
  the file is gone from it; a root that is absent, unreadable or suddenly empty
  (an unmounted drive, a network share that is down) keeps its entries, marked
  offline, and so does a folder under a root that could not be read;
- a file with the same content as an indexed one is the same video under
  another path (a copy, a hard link): it is recorded, not embedded again.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from glscl_index.store.schema import CatalogEntry
from glscl_index.video.scan import RootScan, ScanProblem, ScanResult, SourceFile, content_hash


@dataclass(frozen=True)
class EmbedTask:
    """New or changed content: decode and embed ``file`` as ``video_id``."""

    file: SourceFile
    content_hash: str
    video_id: str
    previous: CatalogEntry | None  # the catalog entry this file had, if any


@dataclass(frozen=True)
class MoveTask:
    """A file that vanished from one path and appeared at another: its rows are copied, not re-embedded."""

    file: SourceFile
    content_hash: str
    previous: CatalogEntry


@dataclass(frozen=True)
class TouchTask:
    """Same content, new size or mtime record: only the catalog row changes."""

    file: SourceFile
    content_hash: str
    previous: CatalogEntry


@dataclass(frozen=True)
class AliasTask:
    """The same content as ``video_id``'s file under another path: one video, several paths."""

    file: SourceFile
    content_hash: str
    video_id: str
    previous: CatalogEntry | None
    pending: bool  # video_id is embedded in this run (record the alias once it is indexed)


@dataclass(frozen=True)
class RootState:
    """A root that could not be scanned this time; its entries are kept."""

    path: str
    state: str  # "absent" | "unreadable" | "empty"
    reason: str
    entries: int  # catalog entries under it, kept and marked offline


@dataclass
class ChangePlan:
    unchanged: list[SourceFile] = field(default_factory=list)
    failed_unchanged: list[SourceFile] = field(default_factory=list)  # failed before, not retried
    touched: list[TouchTask] = field(default_factory=list)
    moved: list[MoveTask] = field(default_factory=list)
    aliases: list[AliasTask] = field(default_factory=list)
    embed: list[EmbedTask] = field(default_factory=list)
    removed: list[CatalogEntry] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)  # new or changed scan problems
    problems_unchanged: int = 0  # the same problem at the same path as last time (not recorded again)
    offline_roots: list[RootState] = field(default_factory=list)
    offline_changes: list[CatalogEntry] = field(default_factory=list)  # entries whose offline flag flips
    empty_roots: list[str] = field(default_factory=list)  # scanned fine, no videos, none indexed before


def plan_changes(scan: ScanResult, catalog: dict[str, CatalogEntry], retry_failed: bool = False) -> ChangePlan:
    """Sort the scanned files into what to skip, re-catalog, copy, alias, decode and drop.

    Unchanged files (same size and mtime as in the catalog) are skipped without
    hashing, including those that failed before, unless ``retry_failed``.
    """
    plan = ChangePlan()
    online, offline = _classify_roots(scan.roots, catalog, plan)
    # Folders under an online root that could not be listed keep their entries too.
    protected = offline | {p.path for p in scan.problems}
    seen = {f.path for f in scan.files} | {p.path for p in scan.problems}
    gone = [
        entry for path, entry in catalog.items()
        if path not in seen and _under_any(path, online) and not _under_any(path, protected)
    ]
    gone_paths = {e.path for e in gone}
    gone_by_hash = {e.content_hash: e for e in gone if e.status == "indexed" and e.content_hash}
    live_by_hash = {
        e.content_hash: e for e in catalog.values()
        if e.status == "indexed" and e.content_hash and e.path not in gone_paths
    }
    embedding_by_hash: dict[str, EmbedTask] = {}
    shared = _shared_video_ids(catalog)
    for file in scan.files:
        old = catalog.get(file.path)
        if old is not None and old.size == file.size and old.mtime_ns == file.mtime_ns:
            if old.status != "failed":
                plan.unchanged.append(file)
                continue
            if not retry_failed:
                plan.failed_unchanged.append(file)
                continue
        try:
            digest = content_hash(file.path)
        except OSError as exc:
            plan.problems.append(ScanProblem(file.path, f"unreadable: {(exc.strerror or str(exc)).lower()}"))
            continue
        if old is not None and old.status == "indexed" and old.content_hash == digest:
            plan.touched.append(TouchTask(file, digest, old))
            continue
        twin = live_by_hash.get(digest)
        if twin is not None and twin.path != file.path:
            plan.aliases.append(AliasTask(file, digest, twin.video_id, old, pending=False))
        elif old is None and digest in gone_by_hash:
            plan.moved.append(MoveTask(file, digest, gone_by_hash.pop(digest)))
        elif digest in embedding_by_hash:
            plan.aliases.append(AliasTask(file, digest, embedding_by_hash[digest].video_id, old, pending=True))
        else:
            # A changed file keeps its id unless other paths still show the old content under it.
            keep_id = old is not None and old.video_id and old.video_id not in shared
            task = EmbedTask(file, digest, old.video_id if keep_id else uuid.uuid4().hex[:16], old)
            embedding_by_hash[digest] = task
            plan.embed.append(task)
    moved_from = {task.previous.path for task in plan.moved}
    plan.removed = [e for e in gone if e.path not in moved_from]
    _plan_problems(scan.problems, catalog, plan)
    _plan_offline_flags(catalog, offline, gone_paths, plan)
    return plan


def _classify_roots(
    roots: list[RootScan], catalog: dict[str, CatalogEntry], plan: ChangePlan
) -> tuple[set[str], set[str]]:
    """(path prefixes of roots scanned for real, prefixes of offline roots); offline ones noted in ``plan``."""
    prefixes = {root.path: sorted({root.path, root.real_path}) for root in roots}
    owner = {prefix: root.path for root in roots for prefix in prefixes[root.path]}
    entries = dict.fromkeys(prefixes, 0)
    for path in catalog:
        for root in {owner[a] for a in _ancestors(path) if a in owner}:
            entries[root] += 1
    online: set[str] = set()
    offline: set[str] = set()
    for root in roots:
        if root.state == "ok" and root.files == 0 and entries[root.path]:
            # A mount point whose drive is not mounted looks like an empty folder.
            state, reason = "empty", "found no videos where the index has some (drive not mounted?)"
        elif root.state != "ok":
            state, reason = root.state, root.reason
        else:
            online.update(prefixes[root.path])
            if root.files == 0:
                plan.empty_roots.append(root.path)
            continue
        offline.update(prefixes[root.path])
        plan.offline_roots.append(RootState(root.path, state, reason, entries[root.path]))
    return online, offline


def _plan_problems(problems: list[ScanProblem], catalog: dict[str, CatalogEntry], plan: ChangePlan) -> None:
    """A problem already recorded with the same reason (a dangling symlink) is not news: no new generation."""
    for problem in problems:
        old = catalog.get(problem.path)
        if old is not None and old.status == "failed" and old.error == problem.reason:
            plan.problems_unchanged += 1
        else:
            plan.problems.append(problem)


def _plan_offline_flags(catalog: dict[str, CatalogEntry], offline: set[str], gone: set[str], plan: ChangePlan) -> None:
    for path, entry in catalog.items():
        now_offline = _under_any(path, offline)
        if path not in gone and entry.offline != now_offline:
            plan.offline_changes.append(_with_offline(entry, now_offline))


def _with_offline(entry: CatalogEntry, offline: bool) -> CatalogEntry:
    return CatalogEntry(**{**entry.__dict__, "offline": offline})


def _shared_video_ids(catalog: dict[str, CatalogEntry]) -> set[str]:
    """Video ids that more than one indexed path names."""
    counts: dict[str, int] = {}
    for entry in catalog.values():
        if entry.status == "indexed":
            counts[entry.video_id] = counts.get(entry.video_id, 0) + 1
    return {video_id for video_id, count in counts.items() if count > 1}


def _under_any(path: str, prefixes: set[str]) -> bool:
    """``path`` is one of ``prefixes`` or inside one: O(depth of the path), whatever the number of roots."""
    return any(ancestor in prefixes for ancestor in _ancestors(path))


def _ancestors(path: str):
    """``path`` itself, then each parent folder up to "/"."""
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def entries_under(catalog: dict[str, CatalogEntry], root: str) -> list[CatalogEntry]:
    """Catalog entries under ``root`` (given or resolved path), e.g. for ``--forget``."""
    prefixes = {os.path.abspath(root), os.path.realpath(root)}
    return [entry for path, entry in catalog.items() if _under_any(path, prefixes)]
