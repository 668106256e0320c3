"""Decoding in worker processes, overlapped with batched embedding, staged into the writer with periodic commits.

Imported only when a run has something to embed: it loads torch and the model's
modules, which an unchanged scheduled run (or a refused second writer) never needs.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from glscl_index.device import resolve_device
from glscl_index.embedding import UnitEmbeddings, VideoEmbedder
from glscl_index.errors import CorruptVideoError
from glscl_index.index_model import load_index_model, recorded_spec
from glscl_index.model.checkpoint import model_fingerprint
from glscl_index.model.factory import load_model_and_fingerprint
from glscl_index.model.glscl import GLSCL
from glscl_index.model.keys import key_dim
from glscl_index.model.spec import ModelSpec
from glscl_index.store.schema import IndexDims, UnitBatch
from glscl_index.store.writer import IndexWriter
from glscl_index.video.decode import DecodedVideo
from glscl_index.video.workers import DecodePool
from pipelines.index_plan import EmbedTask
from pipelines.index_records import indexed_entry, record_failure

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


class EmbedJob:
    """Decodes in worker processes while the model embeds the previous batch; commits periodically.

    A full batch (``batch_frames`` frames) goes to a model thread while the
    calling thread goes on taking decoded files (so the workers keep decoding)
    until the next batch is full; only then does it wait for the model. The
    writer, the catalog and the progress hooks are touched from the calling
    thread only. Batches stay full size: on a CPU every forward pass
    synchronises the torch threads, so small passes cost more per frame
    (measured in docs/benchmarks.md).
    """

    def __init__(
        self, config: IndexJobConfig, model: GLSCL, writer: IndexWriter, summary: IndexSummary, progress: IndexProgress
    ):
        self.config = config
        self.writer = writer
        self.summary = summary
        self.progress = progress
        self.sampling = config.sampling(model)
        self.embedder = VideoEmbedder(model, resolve_device(config.device), config.batch_frames)
        self.fingerprint = summary.fingerprint
        self.pending: list[tuple[EmbedTask, DecodedVideo]] = []
        self.pending_frames = 0
        self.embedding: tuple[list, Future] | None = None  # the batch in the model thread
        self.since_commit = 0
        self.last_commit = time.monotonic()

    def run(self, tasks: list[EmbedTask], decode_fn) -> None:
        by_path = {task.file.path: task for task in tasks}
        with (
            DecodePool(self.config.decode, self.sampling, decode_fn=decode_fn) as pool,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="glscl-embed") as model_thread,
        ):
            for path, result in pool.imap(list(by_path)):
                task = by_path[path]
                if isinstance(result, CorruptVideoError):
                    self._fail(task, str(result))
                else:
                    self.pending.append((task, result))
                    self.pending_frames += sum(len(u.timestamps_s) for u in result.units)
                    if self.pending_frames >= self.config.batch_frames:
                        self._stage_embedded()
                        batch, self.pending, self.pending_frames = self.pending, [], 0
                        self.embedding = (batch, model_thread.submit(self._embed, batch))
                self._maybe_commit()

    def _fail(self, task: EmbedTask, reason: str) -> None:
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

    def _maybe_commit(self) -> None:
        """Commit when ``commit_every`` videos are done or on their way (decoded, or in the model): a crash
        loses at most that many, however large a model batch is."""
        in_flight = len(self.embedding[0]) if self.embedding is not None else 0
        due = time.monotonic() - self.last_commit >= self.config.commit_interval_s
        if self.since_commit + len(self.pending) + in_flight >= self.config.commit_every or due:
            self.flush()
            manifest = self.writer.commit()
            self.progress.committed(manifest.generation)
            self.since_commit = 0
            self.last_commit = time.monotonic()

    def flush(self) -> None:
        """Stage the batch in the model thread, then embed and stage the pending videos here."""
        self._stage_embedded()
        if self.pending:
            pending, self.pending, self.pending_frames = self.pending, [], 0
            self._stage(pending, self._embed(pending))

    def _stage_embedded(self) -> None:
        """Wait for the batch in the model thread (if any) and stage it; its error, if any, is raised here."""
        if self.embedding is not None:
            (batch, future), self.embedding = self.embedding, None
            self._stage(batch, future.result())

    def _embed(self, pending: list[tuple[EmbedTask, DecodedVideo]]) -> tuple[list, np.ndarray, UnitEmbeddings]:
        """(units, counts [U] frames per unit, embeddings) of the pending videos; touches no shared state."""
        units = [(task, unit) for task, video in pending for unit in video.units]
        counts = np.array([len(unit.timestamps_s) for _, unit in units], dtype=np.int64)
        frames = np.concatenate([unit.frames for _, unit in units])
        return units, counts, self.embedder.embed(frames, counts)

    def _stage(
        self, pending: list[tuple[EmbedTask, DecodedVideo]], embedded: tuple[list, np.ndarray, UnitEmbeddings]
    ) -> None:
        """Stage the units of embedded videos and their catalog entries; count them as done."""
        units, counts, embedded = embedded
        replaced = [
            (task, task.previous)
            for task, _ in pending
            if task.previous is not None and task.previous.status == "indexed"
        ]
        # Same id: the old units of this path give way to the new ones.
        self.writer.remove_videos([old.video_id for task, old in replaced if old.video_id == task.video_id])
        self.writer.add_units(self._unit_batch(units, counts, embedded))
        now = time.time()
        self.writer.set_catalog_entries(
            indexed_entry(task.file, task.content_hash, task.video_id, len(video.units), now) for task, video in pending
        )
        # A new id: the old content stays for the other paths that show it, if any.
        self.writer.remove_unreferenced_videos(old.video_id for _, old in replaced)
        for task, video in pending:
            if (
                task.previous is None or task.previous.status != "indexed"
            ):  # a file that failed before is new to the index
                self.summary.added += 1
            else:
                self.summary.updated += 1
            frames_done = sum(len(u.timestamps_s) for u in video.units)
            self.summary.videos_embedded += 1
            self.summary.frames_embedded += frames_done
            self.progress.advance(task.file.path, frames_done, failed=False)
            self.since_commit += 1

    def _unit_batch(self, units, counts: np.ndarray, embedded) -> UnitBatch:
        num_frames = self.embedder.num_frames
        timestamps = np.zeros((len(units), num_frames), dtype=np.float32)
        timestamps[embedded.mask] = np.concatenate([unit.timestamps_s for _, unit in units]).astype(np.float32)
        files = [task.file for task, _ in units]
        video_ids = np.array([task.video_id for task, _ in units], dtype=object)
        segments = np.array([unit.segment_index for _, unit in units], dtype=np.int32)
        return UnitBatch(
            unit_id=np.array([f"{v}:{s}" for v, s in zip(video_ids, segments, strict=False)], dtype=object),
            video_id=video_ids,
            path=np.array([f.path for f in files], dtype=object),
            size=np.array([f.size for f in files], dtype=np.int64),
            mtime_ns=np.array([f.mtime_ns for f in files], dtype=np.int64),
            content_hash=np.array([task.content_hash for task, _ in units], dtype=object),
            segment_index=segments,
            start_s=np.array([unit.start_s for _, unit in units], dtype=np.float32),
            end_s=np.array([unit.end_s for _, unit in units], dtype=np.float32),
            num_frames=counts.astype(np.int32),
            timestamps_s=timestamps,
            frame_features=embedded.frames,
            visual_concepts=embedded.concepts,
            fingerprint=self.fingerprint,
        )
