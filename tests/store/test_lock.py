"""Creating and locking the index folder: a file in the way or a read-only place is one typed error."""

import errno
import pathlib

import pytest

from glscl_index.errors import IndexPathError
from glscl_index.store.lock import WriterLock, make_index_dirs


def test_a_file_in_the_way_is_reported_as_such(tmp_path):
    (tmp_path / "index").write_text("x")
    with pytest.raises(IndexPathError, match="is a file, not an index folder") as raised:
        make_index_dirs(tmp_path / "index", "shards")
    assert raised.value.exit_code == 2
    with pytest.raises(IndexPathError, match=r"\(.*not-a-folder is a file\)"):
        (tmp_path / "not-a-folder").write_text("x")
        make_index_dirs(tmp_path / "not-a-folder" / "index", "shards")


def test_a_read_only_file_system_says_read_only(tmp_path, monkeypatch):
    """EROFS as a read-only mount gives it, for root too (chmod 0555 does not stop root)."""
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(IndexPathError, match=r"cannot write to the index folder .*index \(read-only\?"):
        make_index_dirs(tmp_path / "index", "shards")


def test_lock_file_that_cannot_be_created(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(IndexPathError, match="read-only"):
        WriterLock(tmp_path).acquire()


def test_an_existing_folder_that_cannot_be_written(tmp_path, monkeypatch):
    """Found before the run starts, not at its first commit.

    os.access says EROFS on a read-only mount, for root too.
    """
    make_index_dirs(tmp_path / "index", "shards")
    monkeypatch.setattr("glscl_index.store.lock.os.access", lambda path, mode: False)
    with pytest.raises(IndexPathError, match=r"cannot write to the index folder .*index \(read-only\?"):
        make_index_dirs(tmp_path / "index", "shards")
