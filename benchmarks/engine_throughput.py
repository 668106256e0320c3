"""The local engine against the Ray engine on the same clips, and what `--workers auto` would pick with a GPU.

Usage: .venv/bin/python benchmarks/engine_throughput.py [--videos 8] [--seconds 12] [--model ViT-B-32]
       [--ray-cpus N] [--gpu-model-fps 2000 5000 10000]

Generates clips with PyAV (640x360, 30 fps), then measures
1. the per-core decode rate: `decode_video` over every clip in this process (one core);
2. the model rate: the GLSCL visual branch on those frames (this machine's device);
3. `run_index` with `--engine local` (its default worker count) and with `--engine ray` on a local Ray
   instance of --ray-cpus CPUs (Ray's start-up is timed apart; the actor's start, model load included,
   is part of the run);
4. the decoding workers `auto` picks on a 16-core machine with one GPU, from the measured per-core decode
   rate and the GPU model rate: measured when this machine has a GPU, else the --gpu-model-fps values,
   which are assumptions (said so in the output).
Weights are random (same architecture, same compute), so it runs offline.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glscl_index.device import resolve_device  # noqa: E402
from glscl_index.embedding import VideoEmbedder, measure_model_rate  # noqa: E402
from glscl_index.model.factory import create_random_model  # noqa: E402
from glscl_index.video.decode import decode_video  # noqa: E402
from glscl_index.video.decode_config import DecodeConfig, auto_decode_workers  # noqa: E402
from glscl_index.video.sample import SamplingConfig  # noqa: E402
from pipelines.index import IndexJobConfig, run_index  # noqa: E402
from tests.media import make_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--gpu-model-fps", type=float, nargs="+", default=[2000.0, 5000.0, 10000.0])
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    work = Path(tempfile.mkdtemp(prefix="glscl-engines-"))
    paths = [
        str(make_clip(work / "videos" / f"clip{i:03d}.mp4", seconds=args.seconds, fps=30, size=(640, 360),
                      color=(i * 10 % 255, 100, 200)))
        for i in range(args.videos)
    ]
    model = create_random_model(args.model, trained=True)
    device = resolve_device("auto")
    sampling = SamplingConfig(frames_per_unit=model.config.num_frames, image_size=model.config.image_size)

    start = time.perf_counter()
    decoded = [decode_video(path, sampling) for path in paths]
    decode_s = time.perf_counter() - start
    units = [unit for video in decoded for unit in video.units]
    frames = np.concatenate([unit.frames for unit in units])
    counts = np.array([len(unit.timestamps_s) for unit in units])
    total_frames = int(counts.sum())
    decode_fps = total_frames / decode_s

    embedder = VideoEmbedder(model, device)
    embedder.embed(frames[: counts[0]], counts[:1])  # warm-up
    start = time.perf_counter()
    embedder.embed(frames, counts)
    model_fps = total_frames / (time.perf_counter() - start)

    runs = {}
    local = IndexJobConfig(paths=[str(work / "videos")], index_dir=work / "index-local", auto_workers=True)
    start = time.perf_counter()
    run_index(local, model=model)
    runs["local"] = time.perf_counter() - start

    import ray  # noqa: PLC0415 (the optional extra: only for the second half)

    start = time.perf_counter()
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, logging_level=logging.WARNING)
    ray_init_s = time.perf_counter() - start
    distributed = IndexJobConfig(paths=[str(work / "videos")], index_dir=work / "index-ray", engine="ray")
    start = time.perf_counter()
    run_index(distributed, model=model)
    runs["ray"] = time.perf_counter() - start
    ray.shutdown()

    print(f"# {args.videos} clips of {args.seconds:g} s, 640x360 @ 30 fps -> {total_frames} sampled frames; "
          f"model {args.model} on {device}; {os.cpu_count()} CPUs; local engine {DecodeConfig().workers} decode "
          f"workers; Ray {args.ray_cpus} CPUs; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"per-core decode rate: {decode_fps:.1f} sampled frames/s ({args.videos / decode_s:.2f} videos/s)")
    print(f"model rate on {device}: {model_fps:.1f} frames/s")
    print(f"{'engine':<8} {'seconds':>8} {'videos/s':>9} {'frames/s':>9}")
    for name, seconds in runs.items():
        print(f"{name:<8} {seconds:>8.2f} {args.videos / seconds:>9.2f} {total_frames / seconds:>9.1f}")
    print(f"(Ray start-up, not in the table: ray.init {ray_init_s:.1f} s)")

    if device.type == "cuda":
        gpu_rates, origin = [measure_model_rate(embedder)], f"measured on {_gpu_name()}"
    else:
        gpu_rates, origin = args.gpu_model_fps, "ASSUMED (no GPU on this machine)"
    for rate in gpu_rates:
        workers = auto_decode_workers(16, rate, decode_fps)
        fed = min(rate, workers * decode_fps)
        print(f"16 cores + 1 GPU at {rate:.0f} frames/s ({origin}): --workers auto = {workers}; decode then "
              f"supplies {workers * decode_fps:.0f} frames/s, pipeline <= {fed:.0f} frames/s "
              f"({'decode' if fed < rate else 'model'}-bound); 1 worker would supply {decode_fps:.0f}")
    print("command: .venv/bin/python benchmarks/engine_throughput.py " + " ".join(sys.argv[1:]))


def _gpu_name() -> str:
    import torch  # noqa: PLC0415

    return torch.cuda.get_device_name(0)


if __name__ == "__main__":
    main()
