"""Roots: a missing, unreadable or suddenly empty root keeps its videos; only --forget drops them."""

import os
import shutil
import subprocess
import sys

import pytest

from glscl_index.model import factory
from glscl_index.model.spec import ModelSpec
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines import embed_job
from pipelines.index import IndexJobConfig, NoInputError, run_index
from tests.cli.helpers import REPO
from tests.media import make_clip
from tests.pipelines.decode_faults import must_not_decode
from tests.tiny import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def job(index, *paths, **kw):
    return IndexJobConfig(
        paths=[str(p) for p in paths], index_dir=index, decode=DecodeConfig(workers=1, timeout_s=30), **kw
    )


def two_roots(tmp_path):
    home, usb = tmp_path / "home", tmp_path / "usb"
    make_clip(home / "cat.mp4", seconds=1, color=(200, 30, 30))
    make_clip(usb / "a.mp4", seconds=1, color=(30, 200, 30))
    make_clip(usb / "sub" / "b.mp4", seconds=1, color=(30, 30, 200))
    return home, usb


def indexed_paths(index):
    reader = IndexReader.open(index)
    return {e.path for e in reader.catalog if e.status == "indexed"}, set(reader.units.path)


def test_a_missing_root_keeps_its_videos_marked_offline(tmp_path, model):
    home, usb = two_roots(tmp_path)
    index = tmp_path / "index"
    run_index(job(index, home, usb), model=model)
    before = indexed_paths(index)
    usb.rename(tmp_path / "usb_x")  # the drive is not mounted tonight

    summary = run_index(job(index, home, usb), model=model, decode_fn=must_not_decode)
    assert summary.removed == 0
    assert [(r["path"], r["state"], r["entries"]) for r in summary.offline_roots] == [(str(usb), "absent", 2)]
    assert indexed_paths(index) == before
    offline = {e.path: e.offline for e in IndexReader.open(index).catalog}
    assert offline == {str(home / "cat.mp4"): False, str(usb / "a.mp4"): True, str(usb / "sub" / "b.mp4"): True}

    (tmp_path / "usb_x").rename(usb)  # back again: nothing is decoded, the flags clear
    summary = run_index(job(index), model=model, decode_fn=must_not_decode)
    assert summary.offline_roots == [] and summary.removed == 0 and summary.unchanged == 3
    assert not any(e.offline for e in IndexReader.open(index).catalog)


def test_leaving_a_root_off_the_command_keeps_it_and_no_paths_means_every_root(tmp_path, model):
    home, usb = two_roots(tmp_path)
    index = tmp_path / "index"
    run_index(job(index, home, usb), model=model)
    before = indexed_paths(index)
    summary = run_index(job(index, home), model=model, decode_fn=must_not_decode)
    assert summary.removed == 0 and indexed_paths(index) == before
    assert IndexReader.open(index).manifest.roots == [str(home), str(usb)]

    make_clip(home / "dog.mp4", seconds=1, color=(120, 120, 0))
    (home / "cat.mp4").unlink()  # a file that is really gone from a root that is there
    summary = run_index(job(index), model=model)
    assert (summary.added, summary.removed) == (1, 1)
    assert indexed_paths(index)[0] == {str(usb / "a.mp4"), str(usb / "sub" / "b.mp4"), str(home / "dog.mp4")}


def test_an_empty_or_unreadable_root_is_offline_not_a_deletion(tmp_path, model, monkeypatch):
    home, usb = two_roots(tmp_path)
    index = tmp_path / "index"
    run_index(job(index, home, usb), model=model)
    shutil.rmtree(usb)
    usb.mkdir()  # a mount point without its drive
    summary = run_index(job(index), model=model, decode_fn=must_not_decode)
    assert [(r["path"], r["state"]) for r in summary.offline_roots] == [(str(usb), "empty")]
    assert summary.removed == 0 and len(IndexReader.open(index).units) == 3

    real_scandir = os.scandir

    def refuse_home(path):
        if os.fspath(path) == str(home):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_home)
    summary = run_index(job(index, home), model=model, decode_fn=must_not_decode)
    assert [(r["path"], r["state"]) for r in summary.offline_roots] == [(str(home), "unreadable")]
    assert summary.removed == 0 and len(IndexReader.open(index).units) == 3


def test_forget_drops_a_root_and_only_its_videos(tmp_path, model):
    home, usb = two_roots(tmp_path)
    index = tmp_path / "index"
    run_index(job(index, home, usb), model=model)
    summary = run_index(job(index, forget=[str(usb)]), model=model, decode_fn=must_not_decode)
    assert summary.forgotten == 2
    reader = IndexReader.open(index)
    assert reader.manifest.roots == [str(home)] and set(reader.units.path) == {str(home / "cat.mp4")}
    with pytest.raises(NoInputError, match="not a root"):
        run_index(job(index, forget=[str(tmp_path / "elsewhere")]), model=model)


def test_no_paths_and_no_roots_is_a_clear_error(tmp_path, model):
    with pytest.raises(NoInputError, match="remembers none"):
        run_index(job(tmp_path / "index"), model=model)
    assert not (tmp_path / "index").exists()  # nothing half-made is left behind


def test_an_unchanged_run_loads_no_model(tmp_path, model, monkeypatch, tiny_checkpoint):
    home = tmp_path / "home"
    make_clip(home / "cat.mp4", seconds=1)
    index = tmp_path / "index"
    run_index(job(index, home, model=ModelSpec(checkpoint=str(tiny_checkpoint))))

    def no_model(spec):
        raise AssertionError("the model was loaded for a run with nothing to embed")

    monkeypatch.setattr(factory, "load_model_and_fingerprint", no_model)
    monkeypatch.setattr(embed_job, "load_model_and_fingerprint", no_model)
    summary = run_index(job(index), decode_fn=must_not_decode)
    assert summary.unchanged == 1 and summary.mode == "trained"


def test_an_empty_folder_is_a_warning(tmp_path, model):
    (tmp_path / "empty").mkdir()
    summary = run_index(job(tmp_path / "index", tmp_path / "empty"), model=model)
    assert summary.warnings == [f"{tmp_path / 'empty'}: no videos found"] and summary.units == 0


def test_a_dangling_symlink_is_not_news_on_every_run(tmp_path, model):
    home = tmp_path / "home"
    make_clip(home / "cat.mp4", seconds=1)
    os.symlink(tmp_path / "gone.mp4", home / "dangling.mp4")
    index = tmp_path / "index"
    first = run_index(job(index, home), model=model)
    again = run_index(job(index, home), model=model, decode_fn=must_not_decode)
    assert first.failed == 1 and again.failed == 0 and again.failed_not_retried == 1
    assert again.generation == first.generation  # nothing changed: no new generation


def test_symlinked_folders_and_files_are_one_video(tmp_path, model):
    home = tmp_path / "home"
    make_clip(home / "real" / "cat.mp4", seconds=1, color=(200, 30, 30))
    os.symlink(home / "real", home / "alias")
    os.symlink(home / "real" / "cat.mp4", home / "link.mp4")
    summary = run_index(job(tmp_path / "index", home, home / "link.mp4"), model=model)
    assert summary.added == 1 and summary.duplicates == 0
    reader = IndexReader.open(tmp_path / "index")
    assert [e.path for e in reader.catalog] == [str(home / "real" / "cat.mp4")] and len(reader.units) == 1


def test_the_same_content_under_two_paths_is_one_video_with_both_paths(tmp_path, model):
    home = tmp_path / "home"
    make_clip(home / "cat.mp4", seconds=1, color=(200, 30, 30))
    shutil.copy2(home / "cat.mp4", home / "copy-of-cat.mp4")
    os.link(home / "cat.mp4", home / "hardlink.mp4")
    index = tmp_path / "index"
    summary = run_index(job(index, home), model=model)
    assert (summary.added, summary.duplicates, summary.videos_embedded) == (1, 2, 1)
    reader = IndexReader.open(index)
    assert len(reader.units) == 1 and len({e.video_id for e in reader.catalog}) == 1

    (home / "cat.mp4").unlink()  # one path goes: the video stays for the others
    summary = run_index(job(index), model=model, decode_fn=must_not_decode)
    reader = IndexReader.open(index)
    assert summary.removed == 1 and len(reader.units) == 1
    assert sorted(e.path for e in reader.catalog) == [str(home / "copy-of-cat.mp4"), str(home / "hardlink.mp4")]

    make_clip(home / "copy-of-cat.mp4", seconds=1, color=(30, 30, 200))  # one copy changes: two videos now
    summary = run_index(job(index), model=model)
    reader = IndexReader.open(index)
    assert summary.updated == 1 and len(reader.units) == 2 and len({e.video_id for e in reader.catalog}) == 2


def test_the_job_takes_its_lock_before_torch_is_imported():
    """A refused second writer and an unchanged run need no torch: the planner and the store do not import it."""
    code = (
        "import sys, pipelines.index, glscl_index.store.writer, glscl_index.store.check; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "False"
