"""The catalog's database: commits write only their rows, each generation sees its own entries, a commit that
never published its manifest leaves nothing behind, format-4 catalogs are read and converted, damage is reported."""

import json
import sqlite3

import pytest

from glscl_index.errors import IndexCorruptError
from glscl_index.store import catalog as catalog_module
from glscl_index.store import writer as writer_module
from glscl_index.store.catalog import GenerationCatalog, is_database, read_generation_catalog
from glscl_index.store.check import CATALOG_DAMAGED, check_index, repair_index
from glscl_index.store.manifest import read_manifest
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.shards import write_catalog
from glscl_index.store.stats import index_stats
from tests.store.helpers import make_batch, open_writer


def entry(path, size=1, video_id="v0"):
    return CatalogEntry(path, size, 0, "h", video_id, "indexed", "", 1, 0.0)


def rows_after(root, generation):
    """Rows of the database written by generations after ``generation`` (visible or not)."""
    with sqlite3.connect(root / read_manifest(root).catalog) as connection:
        return connection.execute(
            "SELECT count(*) FROM entries WHERE added > ? OR replaced > ?", (generation, generation)
        ).fetchone()[0]


def test_the_catalog_is_read_lazily_from_the_opened_generation(tmp_path, monkeypatch):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(1))
        writer.set_catalog_entries([entry("/videos/v0.mp4", 1)])
        writer.commit()
    reads = []
    original = GenerationCatalog.entries
    monkeypatch.setattr(GenerationCatalog, "entries", lambda self: reads.append(1) or original(self))
    reader = IndexReader.open(tmp_path)
    assert reads == []
    with open_writer(tmp_path) as writer:
        for size in (2, 3):
            writer.set_catalog_entries([entry("/videos/v0.mp4", size)])
            writer.commit()
    assert [e.size for e in reader.catalog] == [1] and len(reads) == 1
    assert [e.size for e in IndexReader.open(tmp_path).catalog] == [3]


def test_every_generation_sees_its_own_entries_and_removed_ones_never_come_back(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry(f"/v/{i}.mp4", video_id=f"v{i}") for i in range(5)])
        manifests, expected = [writer.commit()], [sorted(writer.catalog)]
        for i in range(4):
            writer.set_catalog_entries(
                [entry(f"/v/new{i}.mp4", video_id=f"n{i}"), entry("/v/4.mp4", size=10 + i, video_id="v4")]
            )
            writer.remove_catalog_paths([f"/v/{i}.mp4"])
            manifests.append(writer.commit())
            expected.append(sorted(writer.catalog))
    assert is_database(manifests[-1].catalog) and {m.catalog for m in manifests} == {manifests[0].catalog}
    for manifest, paths in zip(manifests, expected, strict=True):
        entries = read_generation_catalog(tmp_path, manifest)
        assert [e.path for e in entries] == paths
    newest = {e.path: e for e in IndexReader.open(tmp_path).catalog}
    assert newest["/v/4.mp4"].size == 13 and not {f"/v/{i}.mp4" for i in range(4)} & set(newest)
    reader = IndexReader.open(tmp_path)
    assert reader.indexed_paths(["n0", "v4", "v0", "nobody"]).keys() == {"n0", "v4"}


def test_a_commit_writes_its_rows_not_the_catalog(tmp_path, monkeypatch):
    created = []
    original = writer_module.create_database
    monkeypatch.setattr(writer_module, "create_database", lambda *a: created.append(1) or original(*a))
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry(f"/videos/{i:05d}.mp4", video_id=f"v{i}") for i in range(20_000)])
        manifest = writer.commit()
        database = tmp_path / manifest.catalog
        pages = database.stat().st_size // 4096
        log = database.with_name(database.name + "-wal")
        for i in range(40):  # format 4 folded its deltas into a new base at least once in 32 commits
            before = log.stat().st_size if log.exists() else 0
            writer.set_catalog_entries([entry(f"/videos/new{i}.mp4", video_id=f"n{i}"), entry("/videos/00007.mp4", i)])
            writer.commit()
            assert log.stat().st_size - before < 16 * 4096 < pages * 4096 / 10
    assert created == [1] and len(IndexReader.open(tmp_path).catalog) == 20_040


def test_a_commit_that_dies_before_its_manifest_leaves_no_rows(tmp_path, monkeypatch):
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry("/v/a.mp4"), entry("/v/b.mp4")])
        committed = writer.commit()

    def crash(*args):
        raise OSError("the disk filled up")

    monkeypatch.setattr(writer_module, "publish_manifest", crash)
    with pytest.raises(OSError), open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry("/v/c.mp4"), entry("/v/a.mp4", size=5)])
        writer.remove_catalog_paths(["/v/b.mp4"])
        writer.commit()
    assert rows_after(tmp_path, committed.generation) > 0  # written, never published
    assert [(e.path, e.size) for e in IndexReader.open(tmp_path).catalog] == [("/v/a.mp4", 1), ("/v/b.mp4", 1)]
    monkeypatch.undo()
    with open_writer(tmp_path) as writer:  # opening rolls the rows back
        assert rows_after(tmp_path, committed.generation) == 0
        assert sorted(writer.catalog) == ["/v/a.mp4", "/v/b.mp4"]
        writer.set_catalog_entries([entry("/v/c.mp4")])
        writer.commit()
    assert [e.path for e in IndexReader.open(tmp_path).catalog] == ["/v/a.mp4", "/v/b.mp4", "/v/c.mp4"]


def test_a_writer_tries_a_failed_commit_again(tmp_path, monkeypatch):
    publish = writer_module.publish_manifest
    failures: list[OSError] = []

    def fail_once(*args):
        if failures:
            raise failures.pop()
        publish(*args)

    monkeypatch.setattr(writer_module, "publish_manifest", fail_once)
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry("/v/a.mp4")])
        writer.commit()
        writer.set_catalog_entries([entry("/v/b.mp4")])
        failures.append(OSError("the disk filled up"))
        with pytest.raises(OSError):
            writer.commit()
        writer.commit()  # the same generation's rows again
    assert [e.path for e in IndexReader.open(tmp_path).catalog] == ["/v/a.mp4", "/v/b.mp4"]


def test_replaced_rows_are_kept_for_a_few_generations(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog_module, "KEEP_GENERATIONS", 3)
    with open_writer(tmp_path) as writer:
        for size in range(10):
            writer.set_catalog_entries([entry("/v/a.mp4", size)])
            manifest = writer.commit()
    with sqlite3.connect(tmp_path / manifest.catalog) as connection:
        assert connection.execute("SELECT count(*) FROM entries").fetchone()[0] == 4  # the newest and 3 replaced
    old = read_manifest(tmp_path)
    old.generation -= 2
    assert [e.size for e in read_generation_catalog(tmp_path, old)] == [7]


def make_format_4(root):
    """An index whose catalog is a format-4 base and delta: /v/a.mp4 (size 9, video a) and /v/c.mp4 (video c)."""
    with open_writer(root) as writer:
        writer.add_units(make_batch(2))
        writer.set_catalog_entries([entry("/videos/v0.mp4")])
        writer.commit()
    write_catalog(
        root / "catalog-000001-base.parquet",
        [entry("/v/a.mp4", video_id="a"), entry("/v/b.mp4", video_id="b"), entry("/v/c.mp4", video_id="c")],
    )
    removed = CatalogEntry("/v/b.mp4", 0, 0, "", "", "removed", "", 0, 0.0)
    write_catalog(root / "catalog-000002-delta.parquet", [entry("/v/a.mp4", size=9, video_id="a"), removed])
    document = json.loads((root / "manifest.json").read_text())
    document.update(
        format_version=4, catalog="catalog-000001-base.parquet", catalog_deltas=["catalog-000002-delta.parquet"]
    )
    (root / "manifest.json").write_text(json.dumps(document))


def test_a_format_4_catalog_is_read_once_for_every_search(tmp_path, monkeypatch):
    make_format_4(tmp_path)
    replays = []
    original = catalog_module._replay
    monkeypatch.setattr(catalog_module, "_replay", lambda *a: replays.append(1) or original(*a))
    reader = IndexReader.open(tmp_path)
    for _ in range(3):
        found = reader.indexed_paths(["a", "b", "c"])
        assert {v: [e.path for e in entries] for v, entries in found.items()} == {"a": ["/v/a.mp4"], "c": ["/v/c.mp4"]}
    assert replays == [1]


def test_a_format_4_catalog_is_read_and_becomes_a_database_at_the_next_commit(tmp_path):
    make_format_4(tmp_path)
    assert [(e.path, e.size) for e in IndexReader.open(tmp_path).catalog] == [("/v/a.mp4", 9), ("/v/c.mp4", 1)]
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry("/v/d.mp4")])
        upgraded = writer.commit()
        writer.set_catalog_entries([entry("/v/e.mp4")])
        writer.commit()  # the format-4 files are no longer named by this generation or the previous one
    assert is_database(upgraded.catalog) and upgraded.catalog_deltas == [] and upgraded.format_version == 5
    assert not list(tmp_path.glob("catalog-*.parquet"))
    assert [e.path for e in IndexReader.open(tmp_path).catalog] == ["/v/a.mp4", "/v/c.mp4", "/v/d.mp4", "/v/e.mp4"]


def test_a_damaged_database_is_reported_and_rebuilt_from_the_shards(tmp_path):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(3))
        writer.set_catalog_entries([entry(f"/videos/v{i}.mp4", video_id=f"v{i}") for i in range(3)])
        manifest = writer.commit()
    (tmp_path / manifest.catalog).write_bytes(b"not a database" * 300)
    with pytest.raises(IndexCorruptError, match="glscl check --repair"):
        IndexReader.open(tmp_path).catalog  # noqa: B018
    assert [p.kind for p in check_index(tmp_path).problems] == [CATALOG_DAMAGED]
    report = repair_index(tmp_path)
    assert report.remaining == []
    assert [e.video_id for e in IndexReader.open(tmp_path).catalog] == ["v0", "v1", "v2"]


def test_on_read_only_media_the_database_is_opened_as_immutable(tmp_path, monkeypatch):
    with open_writer(tmp_path) as writer:
        writer.set_catalog_entries([entry("/v/a.mp4")])
        writer.commit()
    connect, tried = sqlite3.connect, []

    def read_only_media(database, *args, **kwargs):  # what SQLite says when it cannot create the log's index file
        tried.append(database.rsplit("?", 1)[-1])
        if database.endswith("mode=ro"):
            raise sqlite3.OperationalError("unable to open database file")
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(catalog_module.sqlite3, "connect", read_only_media)
    assert [e.path for e in IndexReader.open(tmp_path).catalog] == ["/v/a.mp4"]
    assert tried == ["mode=ro", "immutable=1"]


def test_info_counts_come_from_the_generation_s_own_rows(tmp_path):
    failed = CatalogEntry("/v/bad.mp4", 3, 0, "", "", "failed", "not a video", 0, 0.0)
    with open_writer(tmp_path) as writer:
        offline = CatalogEntry("/v/c.mp4", 1, 0, "h", "c", "indexed", "", 1, 0.0, offline=True)
        writer.set_catalog_entries([entry("/v/a.mp4"), failed, offline])
        first = writer.commit()
        writer.remove_catalog_paths(["/v/bad.mp4", "/v/c.mp4"])
        writer.commit()
    before = GenerationCatalog(tmp_path, first).counts()
    assert (before.indexed, before.offline, [e.path for e in before.failed]) == (2, 1, ["/v/bad.mp4"])
    now = index_stats(tmp_path)
    assert (now.videos, now.offline_files, now.failed_files) == (1, 0, 0)
    make_format_4(tmp_path / "old")
    old = index_stats(tmp_path / "old")
    assert (old.videos, old.offline_files, old.failed_files) == (2, 0, 0)
