"""atomic_write: the target is replaced whole on success and untouched on failure, with no temp file left."""

import pytest

from glscl_index.atomic import atomic_write, atomic_write_bytes


def test_replaces_the_file_whole(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
