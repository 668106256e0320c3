"""`glscl index` as a scheduled job: remembered roots, an unmounted drive, --forget, --strict, the lock."""

import json
import re
import shlex
from pathlib import Path

import pytest

from glscl_index.model.spec import ModelSpec
from glscl_index.store.lock import WriterLock
from glscl_index.store.reader import IndexReader
from pipelines.index import IndexJobConfig, run_index
from tests.cli.helpers import REPO, run_glscl, run_in_process
from tests.media import make_clip

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses


@pytest.fixture()
def library(tmp_path, tiny_checkpoint):
    """An index of two roots, built with the tiny checkpoint (later runs need no model options)."""
    home, usb = tmp_path / "home", tmp_path / "usb"
    make_clip(home / "cat.mp4", seconds=1, color=(200, 30, 30))
    make_clip(usb / "a.mp4", seconds=1, color=(30, 200, 30))
    make_clip(usb / "b.mp4", seconds=1, color=(30, 30, 200))
    index = tmp_path / "index"
    # In this process: what `glscl index HOME USB --checkpoint CK` writes, without an interpreter start-up
    # (the tests below run `glscl` on this index; the first run of the CLI is tested in test_index_search_commands).
    run_index(
        IndexJobConfig(paths=[str(home), str(usb)], index_dir=index, model=ModelSpec(checkpoint=str(tiny_checkpoint)))
    )
    assert len(IndexReader.open(index).units) == 3
    return home, usb, index


def readme_cron_command(index: Path, videos: Path) -> tuple[list[str], dict]:
    """The README's cron line, pointed at this test's index and folder."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(line for line in readme.splitlines() if re.match(r"^[0-9*]+ [0-9*]+ \* \* \* ", line))
    words = shlex.split(line.split(" ", 5)[5].split("#")[0])
    env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    argv = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
    assert Path(argv[0]).name == "glscl" and argv[1] == "index", line
    env = {key: str(index) if key == "GLSCL_INDEX" else value for key, value in env.items()}
    return ["index"] + [str(videos) if arg.startswith("/") else arg for arg in argv[2:]], env


def test_the_readme_cron_line_survives_an_unmounted_root_and_re_embeds_nothing(library):
    home, usb, index = library
    before = IndexReader.open(index)
    args, env = readme_cron_command(index, usb)

    usb.rename(usb.with_name("usb-unmounted"))
    night = run_glscl(*args, env=env)
    assert night.returncode == 0, night.stderr
    assert night.stdout == "" and "offline" in night.stderr and "kept" in night.stderr
    usb.with_name("usb-unmounted").rename(usb)
    next_night = run_glscl(*args, env=env)
    assert next_night.returncode == 0 and next_night.stdout == "" and next_night.stderr == ""

    after = IndexReader.open(index)
    assert sorted(after.units.path) == sorted(before.units.path) and len(after.units) == 3
    assert [s.name for s in after.manifest.shards] == [s.name for s in before.manifest.shards]  # nothing re-embedded
    assert {e.path: e.video_id for e in after.catalog} == {e.path: e.video_id for e in before.catalog}


def test_no_paths_reindexes_the_roots_and_strict_flags_an_offline_one(library):
    home, usb, index = library
    make_clip(home / "dog.mp4", seconds=1, color=(120, 120, 20))
    usb.rename(usb.with_name("gone"))
    result = run_glscl("index", "--index", str(index), "--json", "--strict")
    assert result.returncode == 11, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 1 and summary["removed"] == 0 and summary["units"] == 4
    assert [(r["path"], r["state"]) for r in summary["offline_roots"]] == [(str(usb), "absent")]


def test_forget_is_explicit(library):
    home, usb, index = library
    unknown, result = run_in_process(  # one interpreter for both commands
        ["index", "--index", str(index), "--forget", str(home / "nope")],
        ["index", "--index", str(index), "--forget", str(usb), "--json"],
    )
    assert unknown["code"] == 2 and unknown["stderr"].count("\n") == 1 and "not a root" in unknown["stderr"]
    assert result["code"] == 0, result["stderr"]
    assert json.loads(result["stdout"])["forgotten"] == 2
    assert IndexReader.open(index).manifest.roots == [str(home)]


def test_no_paths_on_a_new_index_is_a_one_line_error(tmp_path):
    result = run_glscl("index", "--index", str(tmp_path / "index"))
    assert result.returncode == 2 and "remembers none" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "index").exists()


def test_a_second_writer_is_refused_before_any_model_loads(tmp_path):
    make_clip(tmp_path / "videos" / "a.mp4", seconds=1)
    index = tmp_path / "index"
    index.mkdir()
    lock = WriterLock(index)
    lock.acquire()
    try:
        # The checkpoint does not exist: had the model been loaded first, this would be exit 3.
        result = run_glscl(
            "index", str(tmp_path / "videos"), "--index", str(index), "--checkpoint", str(tmp_path / "none")
        )
    finally:
        lock.release()
    assert result.returncode == 8, result.stderr
    assert "another glscl index run" in result.stderr and "Traceback" not in result.stderr


def test_rebuild_recovers_from_a_garbled_manifest(library, tiny_checkpoint):
    home, usb, index = library
    (index / "manifest.json").write_text("{ not json", encoding="utf-8")
    (index / "manifest.prev.json").unlink(missing_ok=True)
    result = run_glscl(
        "index", "--index", str(index), "--rebuild", "--checkpoint", str(tiny_checkpoint), str(home), "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert len(IndexReader.open(index).units) == 1
