"""The indexing job: scan -> plan -> decode (worker processes) -> embed (batched) -> write -> commit.

Incremental by design (rclip-style): a file whose size and mtime are unchanged
is not even hashed; a touched file (same content hash) only updates its
catalog row; a moved or renamed file (same hash, new path) keeps its features;
only new or changed content is decoded and embedded. A file that failed before
and has not changed stays failed without being decoded again (the decoder
would fail the same way) unless ``retry_failed`` asks for another attempt.
Work is committed every ``commit_every`` videos or ``commit_interval_s``
seconds, so a crash loses at most that many videos and the next run resumes.
The index remembers its roots: a run without paths re-scans them, and a root
that is not there (an unmounted drive) keeps its entries (``index_plan.py``).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.errors import GLSCLError, IndexCorruptError, IndexNotFoundError, InvalidOptionError
from glscl_index.store.ann_state import resolve_choice
from glscl_index.store.check import repair_index
from glscl_index.store.manifest import (
    MANIFEST,
    PREVIOUS,
    Manifest,
    glscl_record,
    read_manifest,
    read_previous_manifest,
    recorded_mode,
)
from glscl_index.store.reader import IndexReader
from glscl_index.store.writer import IndexWriter, acquire_writer_lock
from glscl_index.video.decode import DecodedVideo, decode_video
from glscl_index.video.decode_config import DecodeConfig
from glscl_index.video.sample import SamplingConfig
from glscl_index.video.scan import scan_paths
from pipelines.index_plan import AliasTask, ChangePlan, EmbedTask, MoveTask, entries_under, plan_changes
from pipelines.index_records import indexed_entry, record_failure

if TYPE_CHECKING:
    from glscl_index.model.glscl import GLSCL
    from glscl_index.model.spec import ModelSpec


class NoInputError(GLSCLError):
    """Nothing to index: none of the paths exists, none is remembered, or a root to forget is not one."""

    exit_code = 2


ENGINES = ("local", "ray")


@dataclass
class IndexJobConfig:
    paths: list[str]  # roots to scan (and remember); [] = every root the index remembers
    index_dir: Path
    model: ModelSpec | None = None  # None = the index's own model (ViT-B-32 + openai for a new index)
    device: str = "auto"
    segment_s: float = 30.0
    segment_overlap_s: float = 10.0
    single_unit_max_s: float = 60.0
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    exclude: list[str] = field(default_factory=list)
    include_hidden: bool = False
    commit_every: int = 100  # videos
    commit_interval_s: float = 300.0
    batch_frames: int = 256  # frames per model forward pass
    faiss_type: str = "auto"
    rebuild: bool = False
    # Decode again the files that failed before even though they did not change
    # (e.g. after upgrading decord or raising the time or memory limit).
    retry_failed: bool = False
    forget: list[str] = field(default_factory=list)  # roots to drop, with every entry under them
    # `--workers auto`: with a GPU, as many decoding workers as keep up with the model (bounded by the cores);
    # on a CPU, ``decode.workers``. False: ``decode.workers`` always.
    auto_workers: bool = False
    engine: str = "local"  # "local" (worker processes + a model thread) or "ray" (Ray Data; docs/scale.md)
    ray_address: str = ""  # engine "ray": "" = the cluster RAY_ADDRESS names, else a local one; "auto", "ray://h:p"

    def __post_init__(self) -> None:
        """Refuse impossible values before anything is written or loaded (messages name the CLI options)."""
        if not self.segment_s > 0:
            raise InvalidOptionError(
                f"--segment-seconds (the segment length) must be positive (got {self.segment_s:g})"
            )
        if not 0 <= self.segment_overlap_s < self.segment_s:
            raise InvalidOptionError(
                f"--segment-overlap must be at least 0 and shorter than the segment length --segment-seconds "
                f"{self.segment_s:g} (got {self.segment_overlap_s:g})"
            )
        if self.single_unit_max_s < 0:
            raise InvalidOptionError(f"--single-unit-max must be 0 or more seconds (got {self.single_unit_max_s:g})")
        if self.commit_every < 1:
            raise InvalidOptionError(f"--commit-every must be at least 1 video (got {self.commit_every})")
        if not self.commit_interval_s > 0:
            raise InvalidOptionError(f"commit_interval_s must be positive (got {self.commit_interval_s:g})")
        if self.batch_frames < 1:
            raise InvalidOptionError(f"--batch-frames must be at least 1 (got {self.batch_frames})")
        if self.engine not in ENGINES:
            raise InvalidOptionError(f"unknown --engine {self.engine!r}; use one of {', '.join(ENGINES)}")
        if self.ray_address and self.engine != "ray":
            raise InvalidOptionError("--ray-address needs --engine ray")
        try:
            resolve_choice(self.faiss_type)
        except ValueError:
            raise InvalidOptionError(
                f"unknown --faiss type {self.faiss_type!r}; use one of auto, flat, pqscan"
            ) from None

    def sampling(self, model: GLSCL) -> SamplingConfig:
        return SamplingConfig(
            frames_per_unit=model.config.num_frames,
            image_size=model.config.image_size,
            single_unit_max_s=self.single_unit_max_s,
            segment_s=self.segment_s,
            segment_overlap_s=self.segment_overlap_s,
        )


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0  # skipped: same size and mtime (or content) as last time, failed_not_retried included
    failed_not_retried: int = 0  # unchanged files that failed before and were skipped (see retry_failed)
    failed: int = 0  # files that failed in this run
    failures: list[dict] = field(default_factory=list)  # {"path": ..., "reason": ...}
    videos_embedded: int = 0
    frames_embedded: int = 0
    units: int = 0  # live units in the index after the run
    generation: int = 0
    seconds: float = 0.0
    mode: str = ""
    random_weights: bool = False  # the index's model is a random-weight smoke-test model
    fingerprint: str = ""
    duplicates: int = 0  # files with the same content as an indexed one: recorded as more paths of that video
    forgotten: int = 0  # catalog entries dropped with --forget
    offline_roots: list[dict] = field(default_factory=list)  # {"path", "state", "reason", "entries"}: kept, not scanned
    warnings: list[str] = field(default_factory=list)  # one line each: a root with no videos, a path not found
    repaired: list[str] = field(default_factory=list)  # what the check before the run found damaged and mended

    def to_dict(self) -> dict:
        return asdict(self)


class IndexProgress:
    """Progress hooks; the CLI draws a bar, the library default is silent."""

    def start(self, total_videos: int) -> None:
        pass

    def advance(self, path: str, frames: int, failed: bool) -> None:
        pass

    def committed(self, generation: int) -> None:
        pass

    def upkeep(self, what: str) -> None:
        """Upkeep of the index is starting (``what``: IndexWriter.upkeep_due); minutes at 1M units."""


def run_index(
    config: IndexJobConfig,
    progress: IndexProgress | None = None,
    decode_fn: Callable[[str, SamplingConfig], DecodedVideo] = decode_video,
    model: GLSCL | None = None,
) -> IndexSummary:
    """Bring the index at ``config.index_dir`` up to date with its roots (``config.paths`` added to them).

    The writer lock is taken before anything heavy, and the model is loaded only
    when something has to be embedded (or the index is new, or rebuilt, or
    ``config.model`` names a model to check against the index).
    """
    started = time.monotonic()
    progress = progress or IndexProgress()
    if config.engine == "ray":
        from pipelines.ray_engine import require_ray  # a missing extra is named before anything is locked or loaded

        require_ray()
    remembered = _remembered_roots(config.index_dir) if not config.rebuild else []
    roots, not_found = _roots_for_run(config, remembered)
    created = not config.index_dir.exists()
    try:
        lock = acquire_writer_lock(config.index_dir)
    except BaseException:
        _remove_if_unused(config.index_dir, created)
        raise
    try:
        repaired = _repair_first(config)
        with IndexWriter.open(
            config.index_dir, faiss_type=config.faiss_type, rebuild=config.rebuild, lock=lock
        ) as writer:
            summary = _update(config, writer, roots, not_found, progress, decode_fn, model)
        summary.repaired = repaired
    except BaseException:
        lock.release()
        _remove_if_unused(config.index_dir, created)
        raise
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _update(
    config: IndexJobConfig, writer: IndexWriter, roots: list[str], not_found: list[str], progress, decode_fn, model
) -> IndexSummary:
    summary = IndexSummary(warnings=[f"{path}: no such file or directory" for path in not_found])
    summary.forgotten = _forget(writer, config.forget)
    given = [os.path.abspath(p) for p in config.paths]
    to_scan = [p for p in given if p not in not_found] if given else ([] if config.forget else roots)
    scan = scan_paths(to_scan, exclude=config.exclude, include_hidden=config.include_hidden)
    plan = plan_changes(scan, writer.catalog, retry_failed=config.retry_failed)
    writer.set_roots(roots)
    if model is not None or writer.needs_model or plan.embed or config.model is not None:
        from pipelines.embed_job import bind_model  # torch and the model's modules: only when a model is needed

        model = bind_model(writer, config, model)
    summary.mode, summary.fingerprint = recorded_mode(writer.manifest.model_config), writer.manifest.fingerprint
    summary.random_weights = bool(glscl_record(writer.manifest.model_config).get("random_weights", False))
    _report_roots(plan, summary)
    _apply_bookkeeping(writer, plan, config.index_dir, summary)
    progress.start(len(plan.embed))
    job = None
    if plan.embed:
        from pipelines.embed_job import IndexSink

        sink = IndexSink(config, writer, summary, progress)
        job = _engine(config, model, sink)
    pending = [task for task in plan.aliases if task.pending]
    try:
        tasks = plan.embed
        while tasks:
            job.run(tasks, decode_fn)
            job.flush()
            # A copy whose twin could not be decoded gets its own try (the decoder may have hung on one of them).
            tasks, pending = _promote_orphaned_aliases(writer, pending)
    finally:
        # Ctrl-C or a crash in the model: keep every video that was fully embedded.
        if job is not None:
            try:
                job.flush()
            finally:
                job.close()
        _record_pending_aliases(writer, pending, summary)
        manifest = commit(writer, progress)
    summary.generation = manifest.generation
    summary.units = manifest.live_units
    return summary


def commit(writer: IndexWriter, progress: IndexProgress) -> Manifest:
    """Publish what the writer staged (``progress.committed``), then the upkeep that made due (``progress.upkeep``
    before it starts)."""
    manifest = writer.publish_changes()
    progress.committed(manifest.generation)
    due = writer.upkeep_due()
    if not due:
        return manifest
    progress.upkeep(due)
    return writer.upkeep()


def _engine(config: IndexJobConfig, model: GLSCL, sink):
    """The engine that turns ``EmbedTask``s into staged rows: ``run(tasks, decode_fn)`` then ``flush()``."""
    if config.engine == "ray":
        from pipelines.ray_engine import RayEngine  # Ray: an optional extra, imported only when asked for

        return RayEngine(config, model, sink)
    from pipelines.embed_job import EmbedJob

    return EmbedJob(config, model, sink)


def _repair_first(config: IndexJobConfig) -> list[str]:
    """The quick check (footers, row counts, FAISS header), and a repair of what it finds; what was repaired.

    A scheduled run mends a damaged index by itself: FAISS rebuilt from the shards, the previous
    manifest when this one is garbled, a damaged shard's videos dropped so this run embeds them again.
    """
    has_index = (config.index_dir / MANIFEST).exists() or (config.index_dir / PREVIOUS).exists()
    if config.rebuild or not has_index:
        return []
    return repair_index(config.index_dir, lock_held=True).repaired


def _remembered_roots(index_dir: Path) -> list[str]:
    try:
        return read_manifest(index_dir).roots
    except IndexCorruptError:
        previous = read_previous_manifest(index_dir)  # the repair under the lock falls back to it too
        return previous.roots if previous else []
    except (IndexNotFoundError, NotADirectoryError):
        return []


def _roots_for_run(config: IndexJobConfig, remembered: list[str]) -> tuple[list[str], list[str]]:
    """(the roots the index will remember, the given paths that do not exist and are not remembered).

    Paths given on the command line join the remembered roots; a path that does
    not exist is only remembered if it was before (a typo is not a root).
    """
    forget = [os.path.abspath(p) for p in config.forget]
    unknown = [p for p in forget if p not in remembered]
    if unknown:
        known = ", ".join(remembered) or "none"
        raise NoInputError(f"--forget {unknown[0]}: not a root of this index (its roots: {known})")
    kept = [r for r in remembered if r not in forget]
    given = [os.path.abspath(p) for p in config.paths]
    not_found = [p for p in given if not os.path.lexists(p) and p not in remembered]
    if given and len(not_found) == len(given):
        raise NoInputError(f"no such file or directory: {', '.join(not_found)}")
    if not given and not kept and not forget:
        raise NoInputError(
            f"no paths given and the index at {config.index_dir} remembers none; run `glscl index PATH...` first"
        )
    roots = kept + [p for p in given if p not in kept and p not in not_found]
    return roots, not_found


def _remove_if_unused(index_dir: Path, created: bool) -> None:
    """Undo the folder this run made when it failed before its first commit (a typo leaves no trace)."""
    if not created or (index_dir / MANIFEST).exists():
        return
    shutil.rmtree(index_dir, ignore_errors=True)


def _forget(writer: IndexWriter, paths: list[str]) -> int:
    """Drop the entries under each forgotten root, and the units no remaining path names; how many entries."""
    entries = [entry for path in paths for entry in entries_under(writer.catalog, path)]
    writer.remove_catalog_paths(e.path for e in entries)
    writer.remove_unreferenced_videos(e.video_id for e in entries if e.status == "indexed")
    return len(entries)


def _report_roots(plan: ChangePlan, summary: IndexSummary) -> None:
    summary.offline_roots = [asdict(root) for root in plan.offline_roots]
    summary.warnings += [f"{path}: no videos found" for path in plan.empty_roots]


def _apply_bookkeeping(writer: IndexWriter, plan: ChangePlan, index_dir: Path, summary: IndexSummary) -> None:
    """Catalog-only changes: offline flags, touches, aliases, moves (rows copied, no decoding), removals, problems."""
    now = time.time()
    summary.unchanged = len(plan.unchanged) + len(plan.failed_unchanged) + len(plan.touched)
    summary.failed_not_retried = len(plan.failed_unchanged) + plan.problems_unchanged
    writer.set_catalog_entries(plan.offline_changes)
    writer.set_catalog_entries(
        indexed_entry(
            task.file, task.content_hash, task.previous.video_id, task.previous.units, task.previous.indexed_at
        )
        for task in plan.touched
    )
    ready = [task for task in plan.aliases if not task.pending]
    _record_aliases(writer, ready, summary, now)
    if plan.moved:
        _copy_moved_rows(writer, plan.moved, index_dir, now)
        summary.moved = len(plan.moved)
    writer.remove_catalog_paths(e.path for e in plan.removed)
    writer.remove_unreferenced_videos(e.video_id for e in plan.removed if e.status == "indexed")
    summary.removed = len(plan.removed)
    for problem in plan.problems:
        record_failure(writer, summary, problem.path, problem.reason, size=0, mtime_ns=0, digest="", now=now)


def _record_aliases(writer: IndexWriter, aliases: list[AliasTask], summary: IndexSummary, now: float) -> None:
    """Each alias path becomes another path of its twin's video; what it showed before is released."""
    for task in aliases:
        twin_units = next((writer.catalog[p].units for p in writer.video_paths(task.video_id)), 0)
        writer.set_catalog_entries([indexed_entry(task.file, task.content_hash, task.video_id, twin_units, now)])
        if task.previous is not None and task.previous.status == "indexed":
            writer.remove_unreferenced_videos([task.previous.video_id])
        summary.duplicates += 1


def _record_pending_aliases(writer: IndexWriter, aliases: list[AliasTask], summary: IndexSummary) -> None:
    """Aliases of videos embedded in this run: recorded once their twin is indexed (else found again next run)."""
    pending = [task for task in aliases if task.pending and writer.video_paths(task.video_id)]
    _record_aliases(writer, pending, summary, time.time())


def _promote_orphaned_aliases(writer: IndexWriter, aliases: list[AliasTask]) -> tuple[list[EmbedTask], list[AliasTask]]:
    """(one embed task per group of aliases whose twin failed, the aliases left, re-pointed to those tasks)."""
    promoted: dict[str, EmbedTask] = {}
    left = []
    for task in aliases:
        if writer.video_paths(task.video_id):
            left.append(task)
        elif task.video_id not in promoted:
            promoted[task.video_id] = EmbedTask(task.file, task.content_hash, uuid.uuid4().hex[:16], task.previous)
        else:
            twin = promoted[task.video_id]
            left.append(AliasTask(task.file, task.content_hash, twin.video_id, task.previous, pending=True))
    return list(promoted.values()), left


def _copy_moved_rows(writer: IndexWriter, moved: list[MoveTask], index_dir: Path, now: float) -> None:
    try:
        committed = IndexReader.open(index_dir).units
    except IndexNotFoundError:
        return
    for task in moved:
        previous, file = task.previous, task.file
        rows = np.flatnonzero(committed.video_id == previous.video_id)
        batch = committed.take(rows)
        batch.path = np.full(len(rows), file.path, dtype=object)
        batch.size = np.full(len(rows), file.size, dtype=np.int64)
        batch.mtime_ns = np.full(len(rows), file.mtime_ns, dtype=np.int64)
        writer.remove_videos([previous.video_id])
        writer.add_units(batch)
        writer.remove_catalog_paths([previous.path])
        writer.set_catalog_entries([indexed_entry(file, task.content_hash, previous.video_id, len(rows), now)])
