"""Scanning folders: recursion, extensions, hidden and excluded paths, symlinks, problems, content hash."""

import os

import pytest

from glscl_index.video.scan import SourceFile, content_hash, scan_paths


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(result, root):
    return [os.path.relpath(f.path, root) for f in result.files]


def test_recursion_extensions_and_sorting(tmp_path):
    for name in ("b.mp4", "a/z.MKV", "a/b/c.webm", "a/b/d.txt", "e.jpg", "f.mov"):
        touch(tmp_path / name)
    result = scan_paths([tmp_path])
    assert names(result, tmp_path) == ["a/b/c.webm", "a/z.MKV", "b.mp4", "f.mov"]
    assert result.problems == []
    first = result.files[0]
    assert isinstance(first, SourceFile) and os.path.isabs(first.path)
    assert first.size == 1 and first.mtime_ns == os.stat(first.path).st_mtime_ns


def test_hidden_files_and_folders(tmp_path):
    touch(tmp_path / ".h.mp4")
    touch(tmp_path / ".cache" / "v.mp4")
    touch(tmp_path / "v.mp4")
    assert names(scan_paths([tmp_path]), tmp_path) == ["v.mp4"]
    assert names(scan_paths([tmp_path], include_hidden=True), tmp_path) == [".cache/v.mp4", ".h.mp4", "v.mp4"]


def test_exclude_globs_on_relative_path_and_name(tmp_path):
    for name in ("keep.mp4", "part.tmp.mp4", "raw/a.mp4", "raw/deep/b.mp4", "x/drafts/c.mp4", "y/d.mp4"):
        touch(tmp_path / name)
    result = scan_paths([tmp_path], exclude=["*.tmp.mp4", "raw/*", "drafts"])
    assert names(result, tmp_path) == ["keep.mp4", "y/d.mp4"]


def test_explicit_file_is_taken_whatever_its_extension(tmp_path):
    odd = touch(tmp_path / "recording.bin")
    hidden = touch(tmp_path / ".secret.mp4")
    result = scan_paths([odd, hidden])
    assert [f.path for f in result.files] == sorted([str(odd), str(hidden)])


def test_duplicates_and_relative_paths(tmp_path, monkeypatch):
    touch(tmp_path / "v" / "a.mp4")
    monkeypatch.chdir(tmp_path)
    result = scan_paths(["v", tmp_path / "v", "v/a.mp4"])
    assert [f.path for f in result.files] == [str(tmp_path / "v" / "a.mp4")]


def test_symlink_loop_is_visited_once(tmp_path):
    touch(tmp_path / "x" / "a.mp4")
    os.symlink(tmp_path / "x", tmp_path / "x" / "loop")
    os.symlink(tmp_path, tmp_path / "x" / "up")
    result = scan_paths([tmp_path])
    assert names(result, tmp_path) == ["x/a.mp4"]
    assert result.problems == []


def test_symlinks_resolve_to_one_file(tmp_path):
    target = touch(tmp_path / "store" / "real.mp4")
    os.symlink(target, tmp_path / "link.mp4")
    os.symlink(tmp_path / "store", tmp_path / "alias")
    result = scan_paths([tmp_path / "link.mp4", tmp_path])
    assert [f.path for f in result.files] == [str(target)]
    assert [r.files for r in result.roots] == [1, 1]


def test_missing_paths_and_dangling_symlinks_are_problems(tmp_path):
    touch(tmp_path / "ok.mp4")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "dangling.mp4")
    os.symlink(tmp_path / "gone.txt", tmp_path / "dangling.txt")  # not a video name: not worth a problem
    result = scan_paths([tmp_path, tmp_path / "missing.mp4", tmp_path / "dangling.mp4"])
    assert names(result, tmp_path) == ["ok.mp4"]
    problems = {os.path.basename(p.path): p.reason for p in result.problems}
    assert problems == {"dangling.mp4": "dangling symlink"}  # found inside a folder
    roots = [(os.path.basename(r.path), r.state, r.reason) for r in result.roots]
    assert roots == [
        (tmp_path.name, "ok", ""),
        ("missing.mp4", "absent", "no such file or directory"),
        ("dangling.mp4", "absent", "dangling symlink"),
    ]


def test_non_regular_file_is_a_problem(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    result = scan_paths([tmp_path])
    assert result.files == [] and [p.reason for p in result.problems] == ["not a regular file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folder_is_a_problem(tmp_path):
    locked = tmp_path / "locked"
    touch(locked / "a.mp4")
    locked.chmod(0)
    try:
        result = scan_paths([tmp_path])
    finally:
        locked.chmod(0o755)
    assert result.files == [] and [p.reason for p in result.problems] == ["permission denied"]


def test_non_ascii_names(tmp_path):
    path = touch(tmp_path / "día" / "vidéo ünï 日本.mp4")
    result = scan_paths([tmp_path / "día"], exclude=["*ünï*.txt"])
    assert [f.path for f in result.files] == [str(path)]


def test_content_hash_tracks_content_not_name(tmp_path):
    a = touch(tmp_path / "a.mp4", b"abc" * 1000)
    b = touch(tmp_path / "moved" / "b.mp4", a.read_bytes())
    c = touch(tmp_path / "c.mp4", b"abd" * 1000)
    assert content_hash(a) == content_hash(b) != content_hash(c)
    assert len(content_hash(a)) == 32


def test_content_hash_of_large_files_samples_start_middle_end(tmp_path):
    size = 8 << 20
    data = bytearray(size)
    base = touch(tmp_path / "base.bin", bytes(data))
    data[size // 2] = 1  # inside the middle sample
    middle = touch(tmp_path / "middle.bin", bytes(data))
    data[size // 2] = 0
    data[(3 << 20)] = 1  # between samples: by design not seen
    between = touch(tmp_path / "between.bin", bytes(data))
    longer = touch(tmp_path / "longer.bin", bytes(size + 1))
    assert content_hash(base) != content_hash(middle)
    assert content_hash(base) == content_hash(between)
    assert content_hash(base) != content_hash(longer)
