"""Issue 10, the CLI's rough edges: start-up cost, Ctrl-C, help defaults, `glscl info` from the manifest,
option checks that write nothing, unusable --index folders, search input and model/checkpoint messages.

Most cases run many ``glscl`` invocations in one Python process (``run_in_process``): the real entry point
(``cli.app.main``) with ``sys.argv`` set, so torch is imported once rather than once per case.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from glscl_index.model.spec import ModelSpec
from glscl_index.video.decode_config import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from tests.cli.helpers import REPO, one_line_error, run_glscl, run_in_process
from tests.media import make_broken_files, make_clip
from tests.tiny import TINY_ARCH

pytestmark = pytest.mark.slow  # every test runs `glscl` in subprocesses


def flat(text: str) -> str:
    """Rich boxes and line wrapping removed: words separated by single spaces."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A tiny-model index of two clips and the broken files of tests/media.py."""
    root = tmp_path_factory.mktemp("usability")
    videos = root / "videos"
    make_clip(videos / "red.mp4", color=(220, 20, 20))
    make_clip(videos / "green.mp4", color=(20, 220, 20))
    broken = [p for p in make_broken_files(videos / "broken").values() if p.suffix != ".m4a"]
    made, result = run_in_process(  # one interpreter for both commands
        ["checkpoint", "random", str(root / "ck"), "--model", TINY_ARCH, "--decoder-ffn", "64"],
        ["index", str(videos), "--index", str(root / "index"), "--checkpoint", str(root / "ck"), "--workers", "2",
         "--json"],
    )
    assert made["code"] == 0, made["stderr"]
    assert result["code"] == 0, result["stderr"]
    return root, broken


def test_start_up_imports_no_torch():
    """`glscl --help` must not pay for torch (4 s, 1.2 GB): the commands import it when they run."""
    for argv in (["--help"], ["index", "--help"], ["search", "--help"], ["info", "--help"], ["train", "--help"],
                 ["serve", "--help"]):
        [result] = run_in_process(argv)
        assert result["code"] == 0 and "Usage" in result["stdout"]
        assert result["heavy"] == [], (argv, result["heavy"])


def test_info_reads_the_index_without_loading_a_model(indexed):
    root, broken = indexed
    index = str(root / "index")
    as_json, table, failures = run_in_process(
        ["info", "--index", index, "--json"], ["info", "--index", index], ["info", "--index", index, "--failures"]
    )
    assert as_json["code"] == 0, as_json["stderr"]
    assert as_json["heavy"] == [] and table["heavy"] == [] and failures["heavy"] == []
    document = json.loads(as_json["stdout"])
    assert (document["units"], document["videos"], document["failed_files"]) == (2, 2, len(broken))
    assert document["architecture"] == "tiny-clip" and document["mode"] == "trained"
    assert document["source"] == str((root / "ck").resolve())
    assert document["search_index"] == "flat" and document["recall"] == 1.0 and document["segments"] >= 1
    files = [p for p in (root / "index").rglob("*") if p.is_file() and p.name != "writer.lock"]
    assert 0 < document["memory_bytes"] < document["disk_bytes"] <= sum(p.stat().st_size for p in files)
    assert document["disk_kb_per_unit"] == round(document["disk_bytes"] / 2 / 1000, 2)
    shown = flat(table["stdout"])
    assert "units 2" in shown and "videos 2" in shown and f"failed_files {len(broken)}" in shown
    listed = flat(failures["stdout"])
    assert f"{len(broken)} file(s) could not be indexed" in listed
    for path in broken:
        assert path.name in listed


def test_info_with_model_options_still_loads_the_model(indexed):
    root, _ = indexed
    [result] = run_in_process(["info", "--index", str(root / "index"), "--checkpoint", str(root / "ck"), "--json"])
    document = json.loads(result["stdout"])
    assert "torch" in result["heavy"] and document["device"] == "cpu" and document["units"] == 2


def test_ctrl_c_prints_the_interrupted_message(tmp_path):
    """A real SIGINT while `glscl index` runs (the job is replaced by one that waits)."""
    script = (
        "import sys, time\n"
        "import pipelines.index\n"
        "def waiting(config, progress=None):\n"
        "    print('running', flush=True)\n"
        "    time.sleep(120)\n"
        "pipelines.index.run_index = waiting\n"
        f"sys.argv = ['glscl', 'index', {str(tmp_path)!r}, '--index', {str(tmp_path / 'index')!r}]\n"
        "from cli.app import main\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    assert process.stdout.readline().strip() == "running"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip() == "glscl: interrupted; committed work is kept, re-run to finish"


def test_usage_errors_keep_click_messages_and_exit_2():
    dash, unknown, missing = run_in_process(["search", "-red circle"], ["index", "--bogus"], ["checkpoint", "random"])
    assert dash["code"] == 2 and "Traceback" not in dash["stderr"]
    assert "No such option: -r" in flat(dash["stderr"])
    assert 'glscl search -- "-red circle"' in flat(dash["stderr"])
    assert unknown["code"] == 2 and "No such option: --bogus" in flat(unknown["stderr"])
    assert missing["code"] == 2 and "Missing argument" in flat(missing["stderr"])


def test_help_shows_the_defaults_written_in_brackets():
    index_help, search_help = run_in_process(["index", "--help"], ["search", "--help"])
    shown = flat(index_help["stdout"])
    assert "[default: $GLSCL_INDEX, else $XDG_DATA_HOME/glscl/index or ~/.local/share/glscl/index]" in shown
    assert "[default: the index's model, else ViT-B-32]" in shown
    assert "[default: 20 x --top, at least 200]" in flat(search_help["stdout"])


BAD_INDEX_OPTIONS = [
    (["--workers", "0"], "--workers"),
    (["--batch-frames", "0"], "--batch-frames"),
    (["--segment-overlap", "30"], "shorter than the segment length"),
    (["--segment-seconds", "0"], "--segment-seconds (the segment length) must be positive"),
    (["--faiss", "bogus"], "unknown --faiss type 'bogus'"),
    (["--commit-every", "0"], "--commit-every"),
    (["--timeout", "0"], "--timeout"),
    (["--memory-limit", "0"], "--memory-limit"),
    (["--workers", "many"], "--workers must be a number or auto (got 'many')"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--engine", "spark"], "unknown --engine 'spark'; use one of local, ray"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
]


def test_bad_index_options_exit_2_and_write_nothing(indexed, tmp_path):
    root, _ = indexed
    cases = [
        [
            "index",
            str(root / "videos"),
            "--index",
            str(tmp_path / f"index{n}"),
            "--checkpoint",
            str(root / "ck"),
            *options,
        ]
        for n, (options, _) in enumerate(BAD_INDEX_OPTIONS)
    ]
    for n, (result, (options, fragment)) in enumerate(zip(run_in_process(*cases), BAD_INDEX_OPTIONS, strict=False)):
        one_line_error(result, fragment, code=2)
        assert not (tmp_path / f"index{n}").exists(), options


def test_engine_ray_without_ray_names_the_extra(indexed, tmp_path):
    root, _ = indexed
    argv = ["index", str(root / "videos"), "--index", str(tmp_path / "index"), "--engine", "ray"]
    [result] = run_in_process(argv, patch="import sys; sys.modules['ray'] = None")  # as if not installed
    one_line_error(result, "pip install 'glscl[distributed]'", code=2)
    assert not (tmp_path / "index").exists()


def test_index_option_naming_a_file_or_a_read_only_folder(indexed, tmp_path):
    root, _ = indexed
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    read_only = tmp_path / "read-only"
    # A read-only file system as root sees it (chmod does not stop root): mkdir under the folder fails with EROFS.
    patch = (
        "import errno, pathlib\n"
        "_mkdir = pathlib.Path.mkdir\n"
        "def mkdir(self, *a, **k):\n"
        f"    if str(self).startswith({str(read_only)!r}):\n"
        "        raise OSError(errno.EROFS, 'Read-only file system', str(self))\n"
        "    return _mkdir(self, *a, **k)\n"
        "pathlib.Path.mkdir = mkdir\n"
    )
    ck = ["--checkpoint", str(root / "ck")]
    index, search, info, locked = run_in_process(
        ["index", str(root / "videos"), "--index", str(a_file), *ck],
        ["search", "red", "--index", str(a_file)],
        ["info", "--index", str(a_file)],
        ["index", str(root / "videos"), "--index", str(read_only), *ck],
        patch=patch,
    )
    for result in (index, search, info):
        one_line_error(result, "is a file, not an index folder", code=2)
    one_line_error(locked, f"cannot write to the index folder {read_only} (read-only?")
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 folder (see the EROFS case above)")
def test_index_into_a_chmod_read_only_folder(indexed, tmp_path):
    root, _ = indexed
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = run_glscl(
            "index", str(root / "videos"), "--index", str(folder / "index"), "--checkpoint", str(root / "ck")
        )
    finally:
        folder.chmod(0o755)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "cannot write to the index folder" in result.stderr


def test_search_input_errors(indexed, tmp_path):
    root, _ = indexed
    index = ["--index", str(root / "index")]
    latin1 = tmp_path / "queries.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    queries = tmp_path / "fine.txt"
    queries.write_text("a red square\n")
    not_utf8, both, formats, paths_lines, empty = run_in_process(
        ["search", "--queries", str(latin1), *index],
        ["search", "red", "--queries", str(queries), *index],
        ["search", "red", "--json", "--paths-only", *index],
        ["search", "--queries", str(queries), "--paths-only", *index],
        ["search", "  ", *index],
    )
    one_line_error(not_utf8, "is not UTF-8", code=2)
    one_line_error(both, "not both", code=2)
    one_line_error(formats, "--json and --paths-only cannot be used together", code=2)
    one_line_error(paths_lines, "--paths-only", code=2)
    one_line_error(empty, "empty", code=2)
    assert all(r["heavy"] == [] for r in (not_utf8, both, formats, paths_lines))


def test_checkpoint_messages(indexed, tmp_path):
    root, _ = indexed
    moved = tmp_path / "ck-before"
    shutil.copytree(root / "ck", moved)
    # In this process (what `glscl index red.mp4 --checkpoint MOVED` writes; the CLI's index run is tested above).
    run_index(IndexJobConfig(paths=[str(root / "videos" / "red.mp4")], index_dir=tmp_path / "index",
                             model=ModelSpec(checkpoint=str(moved)), decode=DecodeConfig(workers=1)))
    moved.rename(tmp_path / "ck-after")
    search, config_file, random_weights = run_in_process(
        ["search", "red", "--index", str(tmp_path / "index")],
        ["info", "--checkpoint", str(root / "ck" / "config.json"), "--index", str(tmp_path / "none")],
        ["index", str(root / "videos"), "--index", str(tmp_path / "random"), "--model", TINY_ARCH, "--pretrained", ""],
    )
    line = one_line_error(search, str(moved), code=3)
    assert "remembers" in line and "--checkpoint NEW_DIR" in line
    line = one_line_error(config_file, "is a file", code=3)
    assert "checkpoint directory (the folder holding config.json" in line
    line = one_line_error(random_weights, "random weights", code=3)
    assert "glscl checkpoint random DIR" in line and "glscl index --checkpoint DIR" in line
    assert not (tmp_path / "random").exists()


def test_checkpoint_weights_get_the_umask_mode(indexed):
    root, _ = indexed
    umask = os.umask(0)
    os.umask(umask)
    assert (root / "ck" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_offline_weights_message_names_the_ways_forward(tmp_path):
    """What `make demo` prints without internet: no exception class name, the two environment variables."""
    patch = (
        "import glscl_index.model.pretrained as pretrained\n"
        "def offline(*args, **kwargs):\n"
        "    raise FileNotFoundError('no cached file')\n"
        "pretrained.download_pretrained = offline\n"
    )
    [result] = run_in_process(
        ["info", "--model", "ViT-B-32", "--pretrained", "openai", "--index", str(tmp_path)], patch=patch
    )
    line = one_line_error(result, "could not fetch the ViT-B-32/openai CLIP weights", code=3)
    assert "GLSCL_PRETRAINED=/path/to/weights" in line and "GLSCL_CHECKPOINT=/path/to/checkpoint" in line
    assert "FileNotFoundError" not in line
