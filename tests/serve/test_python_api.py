"""`from glscl_index import open_index`: typed hits, a light package import, generations followed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from glscl_index import Hit, open_index
from glscl_index.live_index import LiveIndex
from glscl_index.search import SearchConfig, Searcher
from glscl_index.store.manifest import read_previous_manifest
from glscl_index.store.reader import IndexReader
from pipelines.index import IndexJobConfig, run_index
from tests.cli.helpers import REPO, run_glscl
from tests.media import make_clip
from tests.serve.conftest import CODEC
from tests.store.helpers import build_index
from tests.tiny import tiny_model


def test_import_glscl_index_does_not_import_torch():
    code = "import sys, glscl_index; from glscl_index import open_index; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


@pytest.mark.slow
def test_open_index_search_gives_the_hits_of_glscl_search(served_index):
    hits = open_index(served_index.index).search("a red square moving", k=5)
    assert all(isinstance(hit, Hit) for hit in hits)
    cli = json.loads(run_glscl("search", "a red square moving", "--index", str(served_index.index), "--json").stdout)
    assert [(h.video_path, round(h.score, 6), h.segment_index) for h in hits] == [
        (r["path"], r["score"], r["segment"]["index"]) for r in cli["results"]
    ]


@pytest.mark.slow
def test_open_index_follows_new_generations(served_index, tmp_path):
    index = open_index(served_index.copy(tmp_path / "index"))
    index.check_every_s = 0
    first = index.current()
    assert len(index.search("a square", k=10)) == 3
    make_clip(tmp_path / "more" / "purple.mp4", color=(150, 30, 200), codec=CODEC)
    assert run_glscl("index", str(tmp_path / "more"), "--index", str(tmp_path / "index")).returncode == 0
    assert len(index.search("a square", k=10)) == 4
    # A search that still holds the first generation works after two more commits (neither the current
    # manifest nor the previous one names it any more: its files may go at any commit).
    make_clip(tmp_path / "more" / "grey.mp4", color=(128, 128, 128), codec=CODEC)
    # The second commit in this process (the first came from another one): what `glscl index --index INDEX` does.
    run_index(IndexJobConfig(paths=[], index_dir=tmp_path / "index"))
    assert read_previous_manifest(tmp_path / "index").generation > first.generation
    (old,) = first.searcher.search(["a square"], SearchConfig(k=10))
    assert len(old.hits) == 3 and len(index.search("a square", k=10)) == 5
    assert index.current().generation > first.generation
    assert index.current().searcher.model is first.searcher.model  # loaded once
    results = index.search_many(["a square", "purple"], k=2)
    assert [r.query for r in results] == ["a square", "purple"] and all(len(r.hits) == 2 for r in results)


def test_a_live_index_maps_the_pages_of_its_generation_for_its_searches(tmp_path):
    """A long-lived reader (the Python API, glscl serve) maps every page of its generation's Arrow copies on a
    background thread, so that its searches copy candidates' rows from the maps (store/shards.MappedCopy)."""
    build_index(tmp_path)  # two segments, both with copies
    reader = IndexReader.open(tmp_path)
    files = reader.units.frame_features.open_files
    assert len(files) == 2 and not any(f.populated for f in files)
    LiveIndex.from_searcher(Searcher(reader, tiny_model()))
    deadline = time.monotonic() + 30
    while not all(f.populated for f in files) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(f.populated for f in files)
