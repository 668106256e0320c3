"""CLI start-up cost: wall time and peak memory of commands that should not load torch.

Usage: .venv/bin/python benchmarks/cli_startup.py [--repeat 5] [--tree DIR]

Builds a tiny index (two generated clips, the random tiny test model of tests/assets/tiny-clip.json),
then runs each command --repeat times in a fresh process and prints the median wall time and the
median peak RSS (os.wait4's ru_maxrss of that one process):
- `glscl --help` and `glscl index --help`;
- `glscl info --index IDX` (reads the manifest and catalog, no model);
- `glscl index VIDEOS --index IDX` refused because this script holds the index's writer lock (exit 8).
--tree runs glscl from another source tree (e.g. an export of an older commit) against the same index.
This process imports nothing heavy (the index is built by a child process): a child forked from a
process holding torch would report that process's memory as its own peak.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from glscl_index.store.lock import WriterLock  # noqa: E402

TINY_ARCH = str(REPO / "tests" / "assets" / "tiny-clip.json")
EXIT_LOCKED = 8


def measure(argv: list[str], tree: Path, expect: int) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one run of ``glscl argv`` from source tree ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.app", *argv], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stderr.close()
    if process.returncode != expect:
        raise SystemExit(f"glscl {' '.join(argv)} exited {process.returncode}, not {expect}: {stderr.decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def build_index(work: Path) -> None:
    """Two clips indexed with a random checkpoint of the tiny test architecture, into ``work/index``."""
    from glscl_index.index_model import explicit_spec
    from glscl_index.model.checkpoint import save_checkpoint
    from glscl_index.model.factory import create_random_model
    from glscl_index.video.decode_config import DecodeConfig
    from pipelines.index import IndexJobConfig, run_index
    from tests.media import make_clip

    for name, color in (("red", (220, 20, 20)), ("green", (20, 220, 20))):
        make_clip(work / "videos" / f"{name}.mp4", color=color)
    save_checkpoint(create_random_model(TINY_ARCH, trained=True, decoder_ffn=64), work / "ck")
    run_index(IndexJobConfig(
        paths=[str(work / "videos")], index_dir=work / "index", model=explicit_spec(str(work / "ck"), None, None),
        decode=DecodeConfig(workers=1),
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree to run glscl from")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # internal: build the index in this folder
    args = parser.parse_args()
    if args.build:
        build_index(args.build)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, __file__, "--build", str(work)], check=True)
        index = work / "index"
        commands = [
            ("glscl --help", ["--help"], 0),
            ("glscl index --help", ["index", "--help"], 0),
            ("glscl info --index IDX", ["info", "--index", str(index)], 0),
            (
                "glscl index VIDEOS --index IDX, lock held (refused)",
                ["index", str(work / "videos"), "--index", str(index)],
                EXIT_LOCKED,
            ),
        ]
        rows = []
        for label, argv, expect in commands:
            lock = WriterLock(index) if expect == EXIT_LOCKED else None
            if lock is not None:
                lock.acquire()
            try:
                runs = [measure(argv, args.tree.resolve(), expect) for _ in range(args.repeat)]
            finally:
                if lock is not None:
                    lock.release()
            rows.append((label, statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs)))
    load = os.getloadavg()[0]
    print(f"# {' '.join(['python', *sys.argv])}")
    print(
        f"# glscl from {args.tree.resolve()}; {args.repeat} runs each; {os.cpu_count()} CPUs; load average {load:.2f}"
    )
    print("| command | median wall s | median peak RSS MiB |")
    print("|---|---|---|")
    for label, seconds, rss in rows:
        print(f"| `{label}` | {seconds:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
