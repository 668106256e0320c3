"""The local engine (decoding in worker processes, overlapped with batched embedding) and the sink both engines
stage into: the writer, the summary, the progress hooks, periodic commits.

Imported only when a run has something to embed: it loads torch and the model's
modules, which an unchanged scheduled run (or a refused second writer) never needs.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.device import resolve_device
from glscl_index.embedding import VideoEmbedder, measure_model_rate
from glscl_index.errors import CorruptVideoError
from glscl_index.index_model import load_index_model, recorded_spec
from glscl_index.model.checkpoint import model_fingerprint
from glscl_index.model.factory import load_model_and_fingerprint
from glscl_index.model.glscl import GLSCL
from glscl_index.model.keys import key_dim
from glscl_index.model.spec import ModelSpec
from glscl_index.store.schema import IndexDims
from glscl_index.store.writer import IndexWriter
from glscl_index.video.decode import DecodedVideo
from glscl_index.video.decode_config import DECODE_FRAMES_PER_CORE_S, auto_decode_workers
from pipelines.index import commit
from pipelines.index_plan import EmbedTask
from pipelines.index_records import indexed_entry, record_failure
from pipelines.index_stages import UnitRows, decode_files, embed_videos, store_batch

if TYPE_CHECKING:
    from pipelines.index import IndexJobConfig, IndexProgress, IndexSummary


def bind_model(writer: IndexWriter, config: IndexJobConfig, model: GLSCL | None) -> GLSCL:
    """Load the model (``config.model``, else the one the index remembers, else the default) unless one is
    given, and bind it to the writer, which refuses a model other than the index's own (unless rebuilding)."""
    spec = config.model or recorded_spec(config.index_dir) or ModelSpec()
    if model is None:
        if config.model is None:
            model, _ = load_index_model(config.index_dir, None, None, None)  # names a checkpoint that moved
        else:
            model, _ = load_model_and_fingerprint(spec)
    writer.bind_model(model_fingerprint(model), model_config_record(model, spec), index_dims(model))
    return model


def model_config_record(model: GLSCL, spec: ModelSpec) -> dict:
    """What the manifest records about the model: its config and where to load it from again."""
    source = ModelSpec(
        checkpoint=str(Path(spec.checkpoint).resolve()) if spec.checkpoint else "",
        clip_model=str(Path(spec.clip_model).resolve()) if spec.clip_model.endswith(".json") else spec.clip_model,
        pretrained=str(Path(spec.pretrained).resolve())
        if spec.pretrained and os.path.isfile(spec.pretrained)
        else spec.pretrained,
    )
    return {"glscl": model.config.to_dict(), "source": asdict(source)}


def index_dims(model: GLSCL) -> IndexDims:
    config = model.config
    return IndexDims(
        frames=config.num_frames,
        dim=config.embed_dim,
        concepts=config.concepts,
        key_dim=key_dim(config.embed_dim, config.concepts),
    )


class IndexSink:
    """Where both engines put their results: the writer's staged rows and catalog, the summary, the progress
    hooks, and the commit cadence. Touched from one thread only (the one that runs the engine's loop)."""

    def __init__(self, config: IndexJobConfig, writer: IndexWriter, summary: IndexSummary, progress: IndexProgress):
        self.config = config
        self.writer = writer
        self.summary = summary
        self.progress = progress
        self.since_commit = 0
        self.last_commit = time.monotonic()

    def fail(self, task: EmbedTask, reason: str) -> None:
        file = task.file
        record_failure(
            self.writer, self.summary, file.path, reason, file.size, file.mtime_ns, task.content_hash, time.time(),
            task.video_id,
        )
        if task.previous is not None and task.previous.status == "indexed":
            # The file changed into something unreadable: its old content goes unless another path shows it.
            self.writer.remove_unreferenced_videos([task.previous.video_id])
        self.progress.advance(file.path, 0, failed=True)
        self.since_commit += 1

    def commit_due(self, in_flight: int) -> bool:
        """``commit_every`` videos done or on their way (decoded, or in the model), or ``commit_interval_s``
        passed: a crash loses at most that many, however large a model batch is."""
        due = time.monotonic() - self.last_commit >= self.config.commit_interval_s
        return self.since_commit + in_flight >= self.config.commit_every or due

    def commit(self) -> None:
        commit(self.writer, self.progress)
        self.since_commit = 0
        self.last_commit = time.monotonic()

    def stage(self, tasks: list[EmbedTask], units_per_task: list[int], rows: UnitRows) -> None:
        """Stage the units of embedded videos (``store_batch``'s layout) and their catalog entries; count them."""
        replaced = [
            (task, task.previous) for task in tasks if task.previous is not None and task.previous.status == "indexed"
        ]
        # Same id: the old units of this path give way to the new ones.
        self.writer.remove_videos([old.video_id for task, old in replaced if old.video_id == task.video_id])
        if len(rows):
            self.writer.add_units(store_batch(tasks, units_per_task, rows, self.summary.fingerprint))
        now = time.time()
        self.writer.set_catalog_entries(
            indexed_entry(task.file, task.content_hash, task.video_id, units, now)
            for task, units in zip(tasks, units_per_task, strict=True)
        )
        # A new id: the old content stays for the other paths that show it, if any.
        self.writer.remove_unreferenced_videos(old.video_id for _, old in replaced)
        frames_per_task = np.zeros(len(tasks), dtype=np.int64)
        np.add.at(frames_per_task, np.repeat(np.arange(len(tasks)), units_per_task), rows.num_frames)
        for task, frames_done in zip(tasks, frames_per_task.tolist(), strict=True):
            if task.previous is None or task.previous.status != "indexed":  # a file that failed before is new
                self.summary.added += 1
            else:
                self.summary.updated += 1
            self.summary.videos_embedded += 1
            self.summary.frames_embedded += frames_done
            self.progress.advance(task.file.path, frames_done, failed=False)
            self.since_commit += 1


class EmbedJob:
    """The local engine: decodes in worker processes while the model embeds the previous batch.

    A full batch (``batch_frames`` frames) goes to a model thread while the
    calling thread goes on taking decoded files (so the workers keep decoding)
    until the next batch is full; only then does it wait for the model. The
    sink (writer, catalog, progress hooks) is touched from the calling thread
    only. Batches stay full size: on a CPU every forward pass synchronises the
    torch threads, so small passes cost more per frame (measured in
    docs/benchmarks.md).
    """

    def __init__(self, config: IndexJobConfig, model: GLSCL, sink: IndexSink):
        self.config = config
        self.sink = sink
        self.sampling = config.sampling(model)
        self.embedder = VideoEmbedder(model, resolve_device(config.device), config.batch_frames)
        self.decode_cfg = config.decode
        if config.auto_workers:
            self.decode_cfg = replace(config.decode, workers=auto_workers_for(self.embedder, config.decode.workers))
        self.pending: list[tuple[EmbedTask, DecodedVideo]] = []
        self.pending_frames = 0
        self.embedding: tuple[list, Future] | None = None  # the batch in the model thread

    def run(self, tasks: list[EmbedTask], decode_fn) -> None:
        by_path = {task.file.path: task for task in tasks}
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="glscl-embed") as model_thread:
            for path, result in decode_files(list(by_path), self.decode_cfg, self.sampling, decode_fn):
                task = by_path[path]
                if isinstance(result, CorruptVideoError):
                    self.sink.fail(task, str(result))
                else:
                    self.pending.append((task, result))
                    self.pending_frames += sum(len(u.timestamps_s) for u in result.units)
                    if self.pending_frames >= self.config.batch_frames:
                        self._stage_embedded()
                        batch, self.pending, self.pending_frames = self.pending, [], 0
                        self.embedding = (batch, model_thread.submit(self._embed, batch))
                self._maybe_commit()

    def _maybe_commit(self) -> None:
        in_flight = len(self.embedding[0]) if self.embedding is not None else 0
        if self.sink.commit_due(len(self.pending) + in_flight):
            self.flush()
            self.sink.commit()

    def flush(self) -> None:
        """Stage the batch in the model thread, then embed and stage the pending videos here."""
        self._stage_embedded()
        if self.pending:
            pending, self.pending, self.pending_frames = self.pending, [], 0
            self._stage(pending, self._embed(pending))

    def close(self) -> None:
        """Nothing outlives ``run`` here (the worker pool closes with it)."""

    def _stage_embedded(self) -> None:
        """Wait for the batch in the model thread (if any) and stage it; its error, if any, is raised here."""
        if self.embedding is not None:
            (batch, future), self.embedding = self.embedding, None
            self._stage(batch, future.result())

    def _embed(self, pending: list[tuple[EmbedTask, DecodedVideo]]) -> UnitRows:
        """The rows of the pending videos' units; touches no shared state (runs in the model thread)."""
        return embed_videos(self.embedder, [video for _, video in pending])

    def _stage(self, pending: list[tuple[EmbedTask, DecodedVideo]], rows: UnitRows) -> None:
        self.sink.stage([task for task, _ in pending], [len(video.units) for _, video in pending], rows)


def auto_workers_for(embedder: VideoEmbedder, cpu_workers: int) -> int:
    """``--workers auto``: on a GPU, enough decoding workers to keep up with the model's measured rate
    (bounded by the cores); on a CPU the model shares the cores with decoding, so ``cpu_workers`` as before."""
    if embedder.device.type != "cuda":
        return cpu_workers
    return auto_decode_workers(os.cpu_count() or 1, measure_model_rate(embedder), DECODE_FRAMES_PER_CORE_S)
