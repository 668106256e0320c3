"""The Ray Data engine of `glscl index --engine ray` (docs/scale.md): the same stages, spread over a cluster.

    file list -> decode (CPU tasks, ``FILES_PER_DECODE_TASK`` files each)
              -> map_batches over an actor pool that holds the model (one actor per GPU, CPU actors without)
              -> rows, streamed back to this process -> the same sink (writer, catalog, commits) as the local engine

Planning happens before (unchanged files are never sent), and the store is
written only here, by the one process that holds the writer lock: Ray moves
frames and rows, it never touches the index. Inside a decode task each file is
decoded by ``decode_files`` in a worker process of its own, with the same time
and memory bounds as the local engine, so a decoder that crashes or hangs fails
that file with the same one-line reason, and the Ray task itself succeeds.

One row of the dataset is one unit: ``path``, ``error`` (a failed file is one
row with its reason), ``units_total`` (how many rows the file has, so this
process knows when a file is complete), the unit's segment and timestamps, and
its frames (decode) or features (embed), padded to T frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from glscl_index.device import resolve_device
from glscl_index.embedding import VideoEmbedder
from glscl_index.errors import ClusterUnavailableError, CorruptVideoError, DeviceError, MissingExtraError, first_line
from glscl_index.video.decode import DecodedUnit, DecodedVideo
from glscl_index.video.decode_config import DecodeConfig
from glscl_index.video.sample import SamplingConfig
from pipelines.index_plan import EmbedTask
from pipelines.index_stages import UnitRows, decode_files, embed_units

if TYPE_CHECKING:
    from glscl_index.model.glscl import GLSCL
    from pipelines.embed_job import IndexSink
    from pipelines.index import IndexJobConfig

# Files per decode task: enough to amortise the task and its worker process start (~0.1 s), few enough that
# the files of a 2-CPU machine spread over both cores.
FILES_PER_DECODE_TASK = 4
# Memory a decode task is scheduled with: its decoding child and the frames of its files (typically well under).
DECODE_TASK_MEMORY = 1 << 30
# Without a GPU: one embedding actor per this many CPUs, each holding all of them but one (left to decoding).
CPUS_PER_CPU_ACTOR = 4


def require_ray():
    """The ``ray`` module with Ray Data, or a one-line error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"--engine ray needs Ray Data, which is not installed ({first_line(exc)}); "
            "install it with: pip install 'glscl[distributed]'"
        ) from None
    return ray


class RayEngine:
    """Runs ``EmbedTask``s through a Ray Data pipeline and stages each file into ``sink`` once all its units are
    back; commits on the sink's cadence. ``run``/``flush``/``close`` like the local engine."""

    def __init__(self, config: IndexJobConfig, model: GLSCL, sink: IndexSink):
        self.ray = require_ray()
        self.config = config
        self.sink = sink
        self.sampling = config.sampling(model)
        self.num_frames = model.config.num_frames
        self.started_ray = _connect(self.ray, config.ray_address)
        gpus = int(self.ray.cluster_resources().get("GPU", 0))
        if config.device.startswith("cuda") and gpus == 0:
            self.close()
            raise DeviceError("--device cuda was asked for but the Ray cluster has no GPU")
        self.gpus = 0 if config.device == "cpu" else gpus
        self.model_ref = self.ray.put(model)  # fetched once by each actor: the exact weights bound to the index
        self.arriving: dict[str, list[dict[str, Any]]] = {}  # rows of files not complete yet, by path

    def run(self, tasks: list[EmbedTask], decode_fn: Callable[[str, SamplingConfig], DecodedVideo]) -> None:
        by_path = {task.file.path: task for task in tasks}
        batches = self._dataset(list(by_path), decode_fn).iter_batches(batch_size=None, batch_format="numpy")
        try:
            for batch in batches:
                self._take(batch, by_path)
        finally:
            # Ctrl-C or an error: stop the pipeline now; files not complete are not staged (the next run does them).
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            self.arriving.clear()

    def flush(self) -> None:
        """Nothing waits here: a file is staged as soon as its last unit is back."""

    def close(self) -> None:
        if self.started_ray:
            self.ray.shutdown()

    def _dataset(self, paths: list[str], decode_fn):
        ray = self.ray
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the CLI draws one bar over the whole run (videos/s, frames/s)
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no notes on stderr about the bars turned off
        files = ray.data.from_items(
            [{"path": p} for p in paths], override_num_blocks=max(1, math.ceil(len(paths) / FILES_PER_DECODE_TASK))
        )
        # One worker process per task, on the task's CPU: a crash or a hang costs that file, not the task.
        decode_cfg = replace(self.config.decode, workers=1, max_in_flight=0)
        decoded = files.map_batches(
            decode_rows,
            batch_size=FILES_PER_DECODE_TASK,
            batch_format="numpy",
            fn_kwargs={
                "decode_cfg": decode_cfg, "sampling": self.sampling, "decode_fn": decode_fn,
                "num_frames": self.num_frames,
            },
            num_cpus=1,
            # A reservation for scheduling, not the limit (that is --memory-limit on the decoding child). Arguments
            # unlike the actors' also keep Ray Data from fusing decoding into the model actors (it fuses maps with
            # the same arguments): decode tasks run beside the actors, not inside them.
            memory=DECODE_TASK_MEMORY,
        )
        if self.gpus:
            actors: dict[str, Any] = {"num_gpus": 1, "compute": ray.data.ActorPoolStrategy(size=self.gpus)}
        else:
            # The model is the slow stage on a CPU (docs/scale.md): most cores go to actors, one in
            # CPUS_PER_CPU_ACTOR to decoding; an actor's torch threads are the CPUs it holds.
            cpus = int(ray.cluster_resources().get("CPU", 1))
            count = max(1, cpus // CPUS_PER_CPU_ACTOR)
            actor_cpus = max(1, cpus // count - 1)
            actors = {"num_cpus": actor_cpus, "compute": ray.data.ActorPoolStrategy(size=count)}
        return decoded.map_batches(
            UnitEmbedder,
            batch_size=max(1, self.config.batch_frames // self.num_frames),
            batch_format="numpy",
            fn_constructor_kwargs={
                # A reference (in a list, so that nothing resolves it on the way): each actor fetches the weights
                # once from the object store, not once per pickled copy of the constructor arguments.
                "model_ref": [self.model_ref], "device": self.config.device, "batch_frames": self.config.batch_frames,
            },
            **actors,
        )

    def _take(self, batch: dict[str, np.ndarray], by_path: dict[str, EmbedTask]) -> None:
        """Fail a failed file, collect units, stage a file with its last unit; commit on the sink's cadence
        after each file, as the local engine does (however many files one batch brings back)."""
        for i, path in enumerate(batch["path"].tolist()):
            task = by_path[path]
            if batch["error"][i]:
                self.sink.fail(task, str(batch["error"][i]))
            else:
                rows = self.arriving.setdefault(path, [])
                if batch["num_frames"][i] > 0:
                    rows.append({name: batch[name][i] for name in EMBEDDED_COLUMNS})
                if len(rows) < batch["units_total"][i]:
                    continue
                self._stage(task, sorted(self.arriving.pop(path), key=lambda row: int(row["segment_index"])))
            if self.sink.commit_due(len(self.arriving)):
                self.sink.commit()

    def _stage(self, task: EmbedTask, rows: list[dict[str, Any]]) -> None:
        if rows:
            unit_rows = UnitRows(**{name: np.stack([row[name] for row in rows]) for name in EMBEDDED_COLUMNS})
        else:  # a video with no units
            unit_rows = _no_rows()
        self.sink.stage([task], [len(rows)], unit_rows)


EMBEDDED_COLUMNS = tuple(UnitRows.__dataclass_fields__)


def _no_rows() -> UnitRows:
    empty = np.zeros(0, dtype=np.float32)
    return UnitRows(
        segment_index=empty.astype(np.int32), start_s=empty, end_s=empty, num_frames=empty.astype(np.int32),
        timestamps_s=empty, frame_features=empty.astype(np.float16), visual_concepts=empty.astype(np.float16),
    )


def _connect(ray, address: str) -> bool:
    """Join the cluster ``address`` names ("" = $RAY_ADDRESS, else a new local instance); True if started here."""
    if ray.is_initialized():
        return False
    where = address or "$RAY_ADDRESS or a new local instance"
    try:
        ray.init(address=address or None, include_dashboard=False, logging_level=logging.WARNING)
    except ValueError as exc:
        if "ray[client]" in str(exc):  # a ray:// address without the client extra
            raise MissingExtraError(
                f"--ray-address {address} needs Ray Client, which is not installed; "
                "install it with: pip install 'ray[client]'"
            ) from None
        raise ClusterUnavailableError(f"cannot join the Ray cluster at {where}: {first_line(exc)}") from None
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise ClusterUnavailableError(
            f"cannot join the Ray cluster at {where}: {first_line(exc)} "
            "(start one with `ray start --head`, or leave out --ray-address for a local instance)"
        ) from None
    return True


def decode_rows(
    batch: dict[str, np.ndarray],
    decode_cfg: DecodeConfig,
    sampling: SamplingConfig,
    decode_fn: Callable[[str, SamplingConfig], DecodedVideo],
    num_frames: int,
) -> dict[str, np.ndarray]:
    """Ray task: decode the files of ``batch["path"]`` (each in an isolated worker) into one row per unit."""
    rows: list[tuple[str, str, int, DecodedUnit | None]] = []  # (path, error, units_total, unit)
    for path, result in decode_files(batch["path"].tolist(), decode_cfg, sampling, decode_fn):
        if isinstance(result, CorruptVideoError):
            rows.append((path, str(result), 1, None))
        elif not result.units:
            rows.append((path, "", 0, None))
        else:
            rows += [(path, "", len(result.units), unit) for unit in result.units]
    units = [unit for *_, unit in rows]
    size = sampling.image_size
    frames = np.zeros((len(rows), num_frames, size, size, 3), dtype=np.uint8)
    timestamps = np.zeros((len(rows), num_frames), dtype=np.float32)
    for i, unit in enumerate(units):
        if unit is not None:
            count = len(unit.timestamps_s)
            frames[i, :count], timestamps[i, :count] = unit.frames, unit.timestamps_s
    return {
        "path": np.array([path for path, *_ in rows], dtype=object),
        "error": np.array([error for _, error, *_ in rows], dtype=object),
        "units_total": np.array([total for _, _, total, _ in rows], dtype=np.int32),
        "segment_index": np.array([u.segment_index if u else 0 for u in units], dtype=np.int32),
        "start_s": np.array([u.start_s if u else 0.0 for u in units], dtype=np.float32),
        "end_s": np.array([u.end_s if u else 0.0 for u in units], dtype=np.float32),
        "num_frames": np.array([len(u.timestamps_s) if u else 0 for u in units], dtype=np.int32),
        "timestamps_s": timestamps,
        "frames": frames,
    }


class UnitEmbedder:
    """Ray actor: holds the model (on its GPU when it has one) and turns decoded unit rows into embedded ones."""

    def __init__(self, model_ref: list, device: str, batch_frames: int):
        import ray

        model = ray.get(model_ref[0])
        self.embedder = VideoEmbedder(model, resolve_device(device), batch_frames)
        if self.embedder.device.type == "cpu":
            import torch

            torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
        config = model.config
        self.feature_shape = (config.num_frames, config.embed_dim)
        self.concept_shape = (config.concepts, config.embed_dim)  # K = 0 in zero-shot mode

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = len(batch["path"])
        features = np.zeros((count, *self.feature_shape), dtype=np.float16)
        concepts = np.zeros((count, *self.concept_shape), dtype=np.float16)
        real = np.flatnonzero(batch["num_frames"] > 0)  # failed files and empty videos carry no frames
        if len(real):
            lengths = batch["num_frames"]
            units = [
                DecodedUnit(0, 0.0, 0.0, batch["timestamps_s"][i][: lengths[i]], batch["frames"][i][: lengths[i]])
                for i in real
            ]
            rows = embed_units(self.embedder, units)
            features[real], concepts[real] = rows.frame_features, rows.visual_concepts
        passed = ("path", "error", "units_total", "segment_index", "start_s", "end_s", "num_frames", "timestamps_s")
        return {**{name: batch[name] for name in passed}, "frame_features": features, "visual_concepts": concepts}
