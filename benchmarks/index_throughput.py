"""Indexing throughput on this machine: pipeline vs decode-only vs model-only, measured in one run.

Usage: .venv/bin/python benchmarks/index_throughput.py [--videos 24] [--seconds 20] [--model ViT-B-32] [--device auto]
       [--workers N] [--repeat 1]

Generates clips with PyAV (640x360, 20 s, 30 fps by default), then times
1. decode-only: the decoding worker pool over every clip;
2. model-only: the GLSCL visual branch on the same number of already-decoded frames;
3. the full `run_index` pipeline (decode in workers overlapped with batched inference, write, commit).
Weights are random (same architecture, same compute: throughput does not depend on the weights),
so it runs offline. Prints videos/s, frames/s and pipeline / min(decode, model).
With --repeat N, model-only and pipeline runs alternate N times (each pipeline run builds a new
index) and each stage reports its fastest run, which keeps a busy machine's noise out of the ratio;
the load average printed with the table says how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glscl_index.device import resolve_device  # noqa: E402
from glscl_index.embedding import VideoEmbedder  # noqa: E402
from glscl_index.model.factory import create_random_model  # noqa: E402
from glscl_index.video.sample import SamplingConfig  # noqa: E402
from glscl_index.video.workers import DecodeConfig, DecodePool  # noqa: E402
from pipelines.index import IndexJobConfig, run_index  # noqa: E402
from tests.media import make_clip  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=DecodeConfig().workers)
    parser.add_argument("--repeat", type=int, default=1, help="alternate model-only and pipeline runs N times")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    work = Path(tempfile.mkdtemp(prefix="glscl-bench-"))
    paths = [
        str(make_clip(work / "videos" / f"clip{i:03d}.mp4", seconds=args.seconds, fps=30, size=(640, 360),
                      color=(i * 10 % 255, 100, 200)))
        for i in range(args.videos)
    ]
    model = create_random_model(args.model, trained=True)
    device = resolve_device(args.device)
    sampling = SamplingConfig(frames_per_unit=model.config.num_frames, image_size=model.config.image_size)
    decode = DecodeConfig(workers=args.workers)

    start = time.perf_counter()
    with DecodePool(decode, sampling) as pool:
        decoded = [video for _, video in pool.imap(paths)]
    decode_s = time.perf_counter() - start
    frames = np.concatenate([u.frames for v in decoded for u in v.units])
    counts = np.array([len(u.timestamps_s) for v in decoded for u in v.units])

    embedder = VideoEmbedder(model, device)
    embedder.embed(frames[: counts[0]], counts[:1])  # warm-up
    model_runs, pipeline_runs = [], []
    for run in range(args.repeat):
        start = time.perf_counter()
        embedder.embed(frames, counts)
        model_runs.append(time.perf_counter() - start)

        config = IndexJobConfig(
            paths=[str(work / "videos")], index_dir=work / f"index{run}", device=args.device, decode=decode
        )
        start = time.perf_counter()
        run_index(config, model=model)
        pipeline_runs.append(time.perf_counter() - start)
    model_s, pipeline_s = min(model_runs), min(pipeline_runs)

    start = time.perf_counter()
    run_index(config, model=model)
    rerun_s = time.perf_counter() - start

    total_frames = int(counts.sum())
    rows = [("decode only", decode_s), ("model only", model_s), ("pipeline", pipeline_s)]
    print(f"# {args.videos} clips of {args.seconds:g} s, 640x360 @ 30 fps -> {total_frames} sampled frames; "
          f"model {args.model} on {device}; {args.workers} decode workers; {os.cpu_count()} CPUs; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    if args.repeat > 1:
        print(f"# every run (the table has the fastest): model only {_seconds(model_runs)}; "
              f"pipeline {_seconds(pipeline_runs)}")
    print(f"{'stage':<12} {'seconds':>8} {'videos/s':>9} {'frames/s':>9}")
    for name, seconds in rows:
        print(f"{name:<12} {seconds:>8.2f} {args.videos / seconds:>9.2f} {total_frames / seconds:>9.1f}")
    slower = max(decode_s, model_s)
    print(f"pipeline / slower stage = {slower / pipeline_s:.2f} (target >= 0.8)")
    print(f"re-run on the unchanged folder: {rerun_s:.2f} s = {100 * rerun_s / pipeline_s:.1f}% of the first run")
    print("command: .venv/bin/python benchmarks/index_throughput.py " + " ".join(sys.argv[1:]))


def _seconds(runs: list[float]) -> str:
    return " / ".join(f"{s:.2f}" for s in runs) + " s"


if __name__ == "__main__":
    main()
