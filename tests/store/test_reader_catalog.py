"""IndexReader.catalog is read on first use, from the generation the reader opened, even after a writer moved on."""

from glscl_index.store import catalog as catalog_module
from glscl_index.store import reader as reader_module
from glscl_index.store.reader import IndexReader
from glscl_index.store.schema import CatalogEntry
from tests.store.helpers import make_batch, open_writer


def entry(path, size):
    return CatalogEntry(path, size, 0, "h", "v0", "indexed", "", 1, 0.0)


def test_the_catalog_is_read_lazily_from_the_opened_generation(tmp_path, monkeypatch):
    with open_writer(tmp_path) as writer:
        writer.add_units(make_batch(1))
        writer.set_catalog_entries([entry("/videos/v0.mp4", 1)])
        writer.commit()
    reads = []
    original = reader_module.read_generation_catalog
    monkeypatch.setattr(reader_module, "read_generation_catalog", lambda *a: reads.append(a) or original(*a))
    monkeypatch.setattr(catalog_module, "MIN_FOLD_ROWS", 0)  # every commit writes a new base, no delta
    reader = IndexReader.open(tmp_path)
    assert reads == []
    with open_writer(tmp_path) as writer:  # two commits: the opened generation's catalog file is deleted
        for size in (2, 3):
            writer.set_catalog_entries([entry("/videos/v0.mp4", size)])
            writer.commit()
    assert not (tmp_path / reader.manifest.catalog).exists()
    assert [e.size for e in reader.catalog] == [1] and len(reads) == 1
    assert [e.size for e in IndexReader.open(tmp_path).catalog] == [3]
