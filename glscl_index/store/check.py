"""Checking an index's files against its manifest, and repairing what can be repaired without re-embedding.

``check_index`` verifies every file the manifest names; ``repair_index`` fixes
what it found and publishes the result as a new generation, through the same
commit protocol as the writer (new files first, then the manifest):

- manifest.json unreadable: start from manifest.prev.json; the last generation's
  changes are lost (the next `glscl index` redoes them).
- Parquet shard missing, unreadable or of the wrong row count: dropped, with the
  catalog entries of the videos it leaves without units; the next `glscl index`
  sees those files as new and embeds them again (only them).
- Arrow copy missing or damaged: written again from its Parquet shard (only a copy).
- a segment's codes missing, unreadable or of the wrong shape: written again from its
  rows (keys are derived, nothing is embedded); the pqscan encoder missing or unreadable:
  trained again, and every segment coded again.
- catalog (its database; a format-4 base or delta) missing or unreadable: a new database
  rebuilt from the shards' rows; failed files' entries are lost (they are retried).
- catalog and units disagree (deep check only): entries without units are dropped,
  units without an entry get one (or, when their path has another entry, are stale
  and marked dead).

Nothing here imports torch until codes must be written again (keys are derived
from the rows by ``model/keys.py``): ``glscl check`` without ``--repair`` stays light.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from glscl_index.errors import IndexCorruptError, IndexNotFoundError, repair_hint
from glscl_index.store import ann, ann_state
from glscl_index.store.catalog import (
    catalog_files,
    check_database,
    create_database,
    database_name,
    is_database,
    read_generation_catalog,
    rollback_database,
)
from glscl_index.store.lock import WriterLock
from glscl_index.store.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    PREVIOUS,
    Manifest,
    ShardRef,
    publish_manifest,
    read_manifest,
    read_previous_manifest,
)
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.shards import (
    mapped_copy,
    read_catalog,
    read_shard,
    required_columns,
    rewrite_mapped_copy,
)

MAPPED_COPIES_SINCE = 2  # manifest format from which every shard has an Arrow copy unless its ref says not
CHECK_ATTEMPTS = 3  # checks of a generation that a concurrent writer replaced (as IndexReader.open retries)
PARQUET_FALLBACK = "searches read the Parquet shard instead (slower)"
EMBEDDED_AGAIN = "embedded again by the next `glscl index`"
DEEP_BATCH = 4096  # rows decoded at a time by the deep check (~130 MB of trained ViT-B/32 features)

# Problem kinds, in the order a report lists them.
MANIFEST_DAMAGED = "manifest"
SHARD_DAMAGED = "shard"
COPY_DAMAGED = "mapped_copy"
FAISS_DAMAGED = "faiss"
CATALOG_DAMAGED = "catalog"
CATALOG_MISMATCH = "catalog_mismatch"


@dataclass(frozen=True)
class Problem:
    kind: str  # one of the kinds above
    path: str  # the file, relative to the index directory ("" when not one file)
    message: str  # one line
    loses_units: bool = False  # repairing drops units that the next `glscl index` embeds again

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class CheckReport:
    root: Path
    deep: bool  # whether the shards' data was read (else footers and headers only)
    manifest: str  # the manifest the file checks refer to: MANIFEST, PREVIOUS (manifest.json is damaged) or ""
    generation: int | None  # that manifest's generation
    shards: int
    live_units: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "root": str(self.root), "healthy": self.healthy}


@dataclass
class RepairReport:
    root: Path
    found: list[Problem]  # what the check found before repairing
    repaired: list[str]  # one line per action taken; empty when the index was healthy
    generation: int | None  # the generation published by the repair, None when none was needed
    remaining: list[Problem]  # what a quick check still finds afterwards (empty: healthy)

    @property
    def healthy(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict:
        return {**asdict(self), "root": str(self.root), "healthy": self.healthy}


def check_index(root: str | Path, deep: bool = True) -> CheckReport:
    """Verify every file the manifest names; IndexNotFoundError when there is no index at ``root``.

    Quick (``deep=False``): the manifest parses; each shard's Parquet footer reads and its
    row count is the manifest's; each Arrow copy's footer reads, with the same rows and
    schema; each segment's codes file header reads with the shape the manifest implies, and the
    pqscan encoder (if any) reads; every catalog file's footer reads. No feature is read: on a
    1M-unit index this costs a few KB per file (and the pqscan encoder, ~10 MB).
    Deep also reads every row of every shard, compares each Arrow copy with its shard, reads
    the catalog and matches its entries with the live units' videos: it reads the whole index.
    """
    root = Path(root)
    for _ in range(CHECK_ATTEMPTS):
        report, _ = _inspect(root, deep)
        if report.healthy or report.manifest != MANIFEST or not _republished(root, report.generation):
            return report
    return report


def _republished(root: Path, generation: int | None) -> bool:
    """A writer published another generation meanwhile (it may have collected files of the one checked)."""
    try:
        return read_manifest(root).generation != generation
    except (IndexNotFoundError, IndexCorruptError):
        return False


def repair_index(root: str | Path, lock_held: bool = False, deep: bool = False) -> RepairReport:
    """Check (``deep`` as in check_index) and repair what was found; returns what was done.

    Takes the writer lock (IndexLockedError while another writer holds it) unless the
    caller holds it already: a writer calls ``repair_index(root, lock_held=True)`` after
    taking the lock and before it reads the manifest (``IndexWriter.open(..., lock=lock)``),
    since a repair may publish a new generation. Cost when nothing is wrong: one quick
    check (a few KB read per file, see check_index) and ``repaired == []``. A repair
    rewrites what is damaged: an Arrow copy from its shard (reads the shard), a segment's codes
    from the shards' rows (reads every unit's features and imports torch to derive keys),
    the catalog from the shards' small columns. Intact files are never deleted or changed;
    files left unnamed are removed by the next commit's garbage collection. Raises
    IndexCorruptError when neither manifest.json nor manifest.prev.json can be read, and
    IndexNotFoundError when there is no index yet (nothing to repair).
    """
    root = Path(root)
    if not (root / MANIFEST).exists() and not (root / PREVIOUS).exists():
        read_manifest(root)  # raises IndexNotFoundError with its usual message
    lock = None if lock_held else WriterLock(root)
    if lock is not None:
        lock.acquire()
    try:
        return _repair(root, deep)
    finally:
        if lock is not None:
            lock.release()


def _inspect(root: Path, deep: bool) -> tuple[CheckReport, Manifest | None]:
    """The report and the manifest a repair starts from (manifest.json, else manifest.prev.json, else None)."""
    problems: list[Problem] = []
    try:
        manifest, source = read_manifest(root), MANIFEST
    except IndexNotFoundError:
        if not (root / PREVIOUS).exists():
            raise
        manifest, source = None, PREVIOUS
        problems.append(Problem(MANIFEST_DAMAGED, MANIFEST, "missing"))
    except IndexCorruptError as exc:
        manifest, source = None, PREVIOUS
        cause = exc.__cause__
        reason = f"{type(cause).__name__}: {_first_line(cause)}" if cause else _without_hint(str(exc), root)
        problems.append(Problem(MANIFEST_DAMAGED, MANIFEST, f"unreadable ({reason})"))
    if manifest is None:
        manifest = read_previous_manifest(root)
        if manifest is None:
            problems.append(Problem(
                MANIFEST_DAMAGED, PREVIOUS,
                f"missing or damaged too, so nothing names the index's model; re-index with "
                f"`glscl index PATH --index {root} --rebuild`",
            ))
            return CheckReport(root, deep, "", None, 0, 0, problems), None
    files = _check_files(root, manifest, deep)
    if source == PREVIOUS:
        usable = "intact: repair restores it" if not files else "usable, but names damaged files too (below)"
        note = f"{PREVIOUS} (generation {manifest.generation}) is {usable}"
        problems[0] = replace(problems[0], message=f"{problems[0].message}; {note}")
    problems += files
    report = CheckReport(root, deep, source, manifest.generation, len(manifest.shards), manifest.live_units, problems)
    return report, manifest


def _without_hint(message: str, root: Path) -> str:
    return message.removesuffix(repair_hint(root))


def _check_files(root: Path, manifest: Manifest, deep: bool) -> list[Problem]:
    problems: list[Problem] = []
    for ref in manifest.shards:
        problems += _check_shard(root, manifest, ref, deep)
    problems += _check_codes(root, manifest)
    problems += _check_catalog(root, manifest, deep)
    if deep and not any(p.kind == CATALOG_DAMAGED for p in problems):
        intact = [ref for ref in manifest.shards if not any(p.path == _shard_path(ref) for p in problems)]
        problems += _check_catalog_matches_units(root, manifest, intact)
    return problems


def _shard_path(ref: ShardRef) -> str:
    return f"shards/{ref.name}"


def _first_line(exc: BaseException) -> str:
    """The cause of a library error (not its advice), without faiss's source location, on one line."""
    if isinstance(exc, IndexCorruptError) and exc.__cause__ is not None:
        exc = exc.__cause__
    line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return line.split("Error: ")[-1][:200] if line.startswith("Error in ") else line[:200]


def _check_shard(root: Path, manifest: Manifest, ref: ShardRef, deep: bool) -> list[Problem]:
    """The Parquet shard (footer, rows, columns; every row decoded when deep), then its Arrow copy."""
    rel = _shard_path(ref)
    path = root / rel
    if not path.is_file():
        return [Problem(SHARD_DAMAGED, rel, "missing", loses_units=True)]
    copy = mapped_copy(path)
    try:
        with pq.ParquetFile(path) as shard:
            rows, schema = shard.metadata.num_rows, shard.schema_arrow
            missing = required_columns(manifest.dims) - set(schema.names)
            if rows != ref.rows:
                return [Problem(SHARD_DAMAGED, rel, f"holds {rows} rows, the manifest says {ref.rows}", True)]
            if missing:
                return [Problem(SHARD_DAMAGED, rel, f"lacks columns {', '.join(sorted(missing))}", True)]
            if not copy.is_file():
                if deep:
                    _decode(shard)
                if manifest.format_version < MAPPED_COPIES_SINCE or not ref.copy:
                    return []  # written before copies existed, or small: the reader loads the Parquet shard
                return [Problem(COPY_DAMAGED, str(copy.relative_to(root)), f"missing; {PARQUET_FALLBACK}")]
            problem = _check_copy(root, copy, shard, ref.rows, deep)
    except (OSError, pa.ArrowException) as exc:
        return [Problem(SHARD_DAMAGED, rel, f"unreadable ({_first_line(exc)})", loses_units=True)]
    return [problem] if problem else []


def _read_rows(shard: pq.ParquetFile):
    """Decode every row of the shard, DEEP_BATCH rows at a time (tables); raises what a damaged page raises."""
    for batch in shard.iter_batches(batch_size=DEEP_BATCH):
        yield pa.Table.from_batches([batch])


def _decode(shard: pq.ParquetFile) -> None:
    for _ in _read_rows(shard):
        pass


def _check_copy(root: Path, copy: Path, shard: pq.ParquetFile, rows: int, deep: bool) -> Problem | None:
    """The Arrow copy has the shard's rows and schema and, when deep, the same data.

    Errors reading the Parquet shard propagate (the shard is damaged); errors reading the copy are its problem.
    """
    rel = str(copy.relative_to(root))
    try:
        mapped = pa.memory_map(str(copy), "r")
    except (OSError, pa.ArrowException) as exc:
        return Problem(COPY_DAMAGED, rel, f"unreadable ({_first_line(exc)}); {PARQUET_FALLBACK}")
    with mapped as source:
        try:
            table = pa.ipc.open_file(source).read_all()  # zero-copy: reads the batches' metadata only
            if table.num_rows != rows or not table.schema.equals(shard.schema_arrow):
                return Problem(COPY_DAMAGED, rel, f"holds {table.num_rows} rows or other columns than its shard")
            if deep:
                table.validate(full=True)
        except (OSError, pa.ArrowException) as exc:
            if deep:
                _decode(shard)
            return Problem(COPY_DAMAGED, rel, f"unreadable ({_first_line(exc)}); {PARQUET_FALLBACK}")
        if deep:
            offset, differs = 0, None
            for rows_read in _read_rows(shard):  # all of them, even past a difference: the shard may be damaged
                if differs is None and not table.slice(offset, rows_read.num_rows).equals(rows_read):
                    differs = offset
                offset += rows_read.num_rows
            if differs is not None:
                return Problem(COPY_DAMAGED, rel, f"differs from its shard in the rows from {differs} on")
        del table
    return None


def _check_codes(root: Path, manifest: Manifest) -> list[Problem]:
    """Each segment's codes (the .npy header: shape and type, no code read) and the pqscan encoder, in both modes."""
    if not manifest.coded:
        return []  # an index of format <= 3: the reader derives its keys, the next commit codes them
    problems, width = [], 2 * manifest.dims.key_dim
    if manifest.ann.kind == ann_state.PQSCAN:
        try:
            width = ann.read_encoder(root / manifest.ann.encoder).code_size
        except FileNotFoundError:
            return [Problem(FAISS_DAMAGED, manifest.ann.encoder, "missing")]
        except ValueError as exc:
            return [Problem(FAISS_DAMAGED, manifest.ann.encoder, f"unreadable ({_first_line(exc)})")]
    for ref in manifest.shards:
        rel = f"shards/{ref.codes}"
        try:
            codes = ann.read_codes(root / rel)
        except FileNotFoundError:
            problems.append(Problem(FAISS_DAMAGED, rel, "missing"))
            continue
        except (OSError, ValueError) as exc:
            problems.append(Problem(FAISS_DAMAGED, rel, f"unreadable ({_first_line(exc)})"))
            continue
        if codes.shape != (ref.rows, width) or codes.dtype != np.uint8:
            problems.append(Problem(
                FAISS_DAMAGED, rel, f"holds codes of shape {codes.shape}; the manifest has {ref.rows} rows of {width}"
            ))
    return problems


def _check_catalog(root: Path, manifest: Manifest, deep: bool) -> list[Problem]:
    """The database (its integrity check when deep), or a format-4 base and deltas (the footer, every row when deep)."""
    problems = []
    for name in catalog_files(manifest):
        path = root / name
        if not path.is_file():
            problems.append(Problem(CATALOG_DAMAGED, name, "missing"))
            continue
        try:
            if is_database(name):
                check_database(path, deep)
            elif deep:
                read_catalog(path)
            else:
                pq.read_metadata(path)
        except (OSError, pa.ArrowException, IndexCorruptError, KeyError, ValueError) as exc:
            problems.append(Problem(CATALOG_DAMAGED, name, f"unreadable ({_first_line(exc)})"))
    return problems


def _check_catalog_matches_units(root: Path, manifest: Manifest, shards: list[ShardRef]) -> list[Problem]:
    """Indexed entries name videos with live units, and every live unit's video has an entry."""
    entries = read_generation_catalog(root, manifest)
    units = _live_units(root, manifest, shards)
    live = set(units.video_id.tolist())
    named = {e.video_id for e in entries}
    problems = []
    empty = [e.path for e in entries if e.status == "indexed" and e.video_id not in live]
    if empty:
        problems.append(Problem(
            CATALOG_MISMATCH, manifest.catalog,
            f"{len(empty)} indexed entries name videos without units (first: {empty[0]}); "
            "repair drops them so the next `glscl index` embeds those files again",
        ))
    orphans = ~np.isin(units.video_id, list(named))
    if orphans.any():
        problems.append(Problem(
            CATALOG_MISMATCH, manifest.catalog,
            f"{len(set(units.video_id[orphans].tolist()))} videos have units but no catalog entry "
            f"(first: {units.path[orphans][0]})",
        ))
    return problems


@dataclass
class _LiveUnits:
    """The small columns of a generation's live units ``[N]``, and where each one is stored."""

    video_id: np.ndarray  # str
    path: np.ndarray  # str
    size: np.ndarray  # int64
    mtime_ns: np.ndarray  # int64
    content_hash: np.ndarray  # str
    shard: np.ndarray  # str, the shard file's name
    row: np.ndarray  # int64, the row in that shard


def _live_units(root: Path, manifest: Manifest, shards: list[ShardRef]) -> _LiveUnits:
    """From the shards' small columns (features stay memory-mapped, unread)."""
    parts = []
    for ref in shards:
        batch = read_shard(root / _shard_path(ref), manifest.dims, manifest.fingerprint)
        live = np.setdiff1d(np.arange(ref.rows), np.asarray(ref.dead, dtype=np.int64))
        parts.append((batch, live, np.full(len(live), ref.name, dtype=object)))
    columns = ("video_id", "path", "size", "mtime_ns", "content_hash")
    empty = {name: np.zeros(0, np.int64 if name in ("size", "mtime_ns") else object) for name in columns}
    return _LiveUnits(
        **{name: np.concatenate([empty[name], *(getattr(b, name)[live] for b, live, _ in parts)]) for name in columns},
        shard=np.concatenate([np.zeros(0, object), *(names for _, _, names in parts)]),
        row=np.concatenate([np.zeros(0, np.int64), *(live for _, live, _ in parts)]),
    )


def _repair(root: Path, deep: bool) -> RepairReport:
    report, base = _inspect(root, deep)
    if report.healthy:
        return RepairReport(root, [], [], None, [])
    if base is None:
        raise IndexCorruptError(
            f"{root}: manifest.json and manifest.prev.json are both damaged, so nothing names the index's model; "
            f"re-index with `glscl index PATH --index {root} --rebuild`"
        )
    restored = report.manifest == PREVIOUS
    kinds = {p.kind for p in report.problems}
    damaged = {p.path for p in report.problems if p.kind == SHARD_DAMAGED}
    actions = [f"restored generation {base.generation} from {PREVIOUS}"] if restored else []
    generation = base.generation + (2 if restored else 1)  # restored: skip the unreadable generation's number
    if is_database(base.catalog) and CATALOG_DAMAGED not in kinds:
        rollback_database(root / base.catalog, base.generation)  # rows of the lost generation, or of a crashed commit

    for problem in report.problems:
        if problem.kind == COPY_DAMAGED:
            # Replaced atomically in place: a reader mapping the old copy keeps its (unlinked) file.
            rewrite_mapped_copy(root / Path(problem.path).with_suffix(".parquet"))
            actions.append(f"wrote {problem.path} again from its Parquet shard")

    shards = [ref for ref in base.shards if _shard_path(ref) not in damaged]
    for name in sorted(damaged):
        actions.append(f"dropped {name} (its videos: {EMBEDDED_AGAIN})")

    catalog = replace(base)
    if damaged or kinds & {CATALOG_DAMAGED, CATALOG_MISMATCH}:
        entries, shards, notes = _repaired_catalog(root, base, shards, catalog_intact=CATALOG_DAMAGED not in kinds)
        catalog.catalog = database_name(generation)
        catalog.catalog_deltas, catalog.catalog_delta_rows = [], 0
        catalog.format_version = max(base.format_version, FORMAT_VERSION)
        create_database(root / catalog.catalog, sorted(entries, key=lambda e: e.path), generation)
        actions += notes
    catalog_changed = catalog_files(catalog) != catalog_files(base)

    state = base.ann
    lost_codes = {p.path for p in report.problems if p.kind == FAISS_DAMAGED}
    if lost_codes:
        if state.encoder in lost_codes:
            state = ann_state.AnnState(kind="")  # trained again, and every segment coded again
        shards = [replace(s, codes="") if f"shards/{s.codes}" in lost_codes else s for s in shards]
        rebuilt = replace(base, generation=generation, shards=shards, ann=state)
        # Imported here: keys are derived with torch (model/keys.py), which `glscl check` alone never needs.
        from glscl_index.store.segment_codes import SegmentCoder

        state = SegmentCoder(root).code(rebuilt)
        shards = rebuilt.shards
        actions.append(f"wrote the search codes again from the shards' rows ({rebuilt.live_units} keys)")
    units_changed = shards != base.shards

    published = None
    if restored or units_changed or catalog_changed or lost_codes:
        manifest = replace(
            base, generation=generation, shards=shards, catalog=catalog.catalog,
            catalog_deltas=catalog.catalog_deltas, catalog_delta_rows=catalog.catalog_delta_rows, ann=state,
            format_version=catalog.format_version,
        )
        # Restored: manifest.prev.json stays as it is (it is the generation restored).
        publish_manifest(root, manifest, None if restored else base)
        published = generation
        actions.append(f"published generation {generation}")
    return RepairReport(root, report.problems, actions, published, check_index(root, deep=False).problems)


def _repaired_catalog(
    root: Path, manifest: Manifest, shards: list[ShardRef], catalog_intact: bool
) -> tuple[list[CatalogEntry], list[ShardRef], list[str]]:
    """Catalog entries agreeing with the live units of ``shards``, the shards (with orphan rows marked dead), notes.

    Indexed entries whose video has no live unit are dropped (the next `glscl index` sees the
    file as new); a video with live units keeps its entry. Videos with units but no entry get
    one rebuilt from their rows, unless their path has another entry (then the rows are stale
    and marked dead). A lost catalog keeps the previous generation's failed entries if readable.
    """
    units = _live_units(root, manifest, shards)
    live = set(units.video_id.tolist())
    old = _readable_catalog(root, manifest) if catalog_intact else None
    if old is None:  # lost (or its rows are damaged behind a good footer): keep the previous one's failed files
        previous = read_previous_manifest(root)
        differs = previous is not None and catalog_files(previous) != catalog_files(manifest)
        older = _readable_catalog(root, previous) if previous is not None and differs else None
        old = [e for e in older or [] if e.status != "indexed"]
    entries: dict[str, CatalogEntry] = {}
    dropped = 0
    for entry in old:
        if entry.status == "indexed" and entry.video_id not in live:
            dropped += 1
        else:
            entries[entry.path] = entry
    named = {e.video_id for e in entries.values()}
    orphan_rows = np.flatnonzero(~np.isin(units.video_id, list(named)))
    first_row: dict[str, int] = {}
    counts: dict[str, int] = {}
    for at in orphan_rows.tolist():
        video_id = units.video_id[at]
        first_row.setdefault(video_id, at)
        counts[video_id] = counts.get(video_id, 0) + 1
    now, added, stale_ids = time.time(), 0, []
    for video_id, at in first_row.items():
        path = str(units.path[at])
        if path in entries:  # the catalog's word on this path is newer than these rows
            stale_ids.append(video_id)
            continue
        entries[path] = CatalogEntry(
            path=path, size=int(units.size[at]), mtime_ns=int(units.mtime_ns[at]),
            content_hash=str(units.content_hash[at]), video_id=video_id, status="indexed", error="",
            units=counts[video_id], indexed_at=now,
        )
        added += 1
    stale: dict[str, list[int]] = {}
    for at in orphan_rows[np.isin(units.video_id[orphan_rows], stale_ids)].tolist():
        stale.setdefault(units.shard[at], []).append(int(units.row[at]))
    shards = [
        replace(ref, dead=sorted(set(ref.dead) | set(stale[ref.name]))) if ref.name in stale else ref
        for ref in shards
    ]
    notes = [f"wrote a new catalog: {len(entries)} entries"]
    if dropped:
        notes.append(f"dropped {dropped} catalog entries of videos without units ({EMBEDDED_AGAIN})")
    if added:
        notes.append(f"rebuilt {added} catalog entries from the shards' rows")
    if stale:
        notes.append(f"marked {sum(len(r) for r in stale.values())} stale units dead (their path has a newer entry)")
    return list(entries.values()), shards, notes


def _readable_catalog(root: Path, manifest: Manifest) -> list[CatalogEntry] | None:
    """The entries of ``manifest``'s catalog (none yet: empty), None when a file of it cannot be read."""
    try:
        return read_generation_catalog(root, manifest)
    except (OSError, IndexCorruptError, KeyError, ValueError, TypeError):
        return None
