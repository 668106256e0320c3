"""`glscl check [--repair] [--json] [--quick]` through the CLI's entry point: exit codes 0 / 5 / 6 and output.

Runs ``cli.app.main`` in-process (the path the `glscl` script takes, errors to exit codes included);
the index is written with the store's writer, no model needed.
"""

import json
import sys

import pytest

from cli.app import main
from tests.store.helpers import build_index


def glscl(monkeypatch, capsys, *args):
    """(exit code, stdout, stderr) of `glscl ARGS`."""
    monkeypatch.setattr(sys, "argv", ["glscl", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr()
    return exited.value.code or 0, out.out, out.err


def test_check_exit_codes_and_repair(tmp_path, monkeypatch, capsys):
    root = tmp_path / "index"
    manifest = build_index(root)

    code, out, _ = glscl(monkeypatch, capsys, "check", "--index", str(root))
    assert code == 0 and out.startswith("ok:") and "deep check" in out

    codes = f"shards/{manifest.shards[0].codes}"
    (root / codes).unlink()
    code, out, err = glscl(monkeypatch, capsys, "check", "--index", str(root), "--quick")
    assert code == 6
    assert out.splitlines() == [f"damaged: {codes}: missing"]
    assert err.strip() == f"glscl: error: {root}: 1 problem(s) found; run `glscl check --repair --index {root}`"

    code, out, _ = glscl(monkeypatch, capsys, "check", "--index", str(root), "--json")
    document = json.loads(out)
    assert code == 6 and document["healthy"] is False and document["problems"][0]["kind"] == "faiss"

    code, out, _ = glscl(monkeypatch, capsys, "check", "--index", str(root), "--repair", "--json")
    document = json.loads(out)
    assert code == 0 and document["healthy"] and document["generation"] == manifest.generation + 1
    assert [p["path"] for p in document["found"]] == [codes] and document["remaining"] == []

    code, out, _ = glscl(monkeypatch, capsys, "check", "--index", str(root), "--repair")
    assert code == 0 and out.strip() == f"ok: {root}: nothing to repair"


def test_repair_prints_what_it_did(tmp_path, monkeypatch, capsys):
    manifest = build_index(tmp_path)
    shard = tmp_path / "shards" / manifest.shards[0].name
    shard.write_bytes(shard.read_bytes()[:100])
    code, out, _ = glscl(monkeypatch, capsys, "check", "--index", str(tmp_path), "--repair")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"found: shards/{shard.name}: unreadable") and "re-embedded" in lines[0]
    assert any(line.startswith(f"repaired: dropped shards/{shard.name}") for line in lines)
    assert lines[-1] == f"ok: {tmp_path}: repaired as generation {manifest.generation + 1}"
    assert glscl(monkeypatch, capsys, "check", "--index", str(tmp_path))[0] == 0


def test_no_index_exits_5(tmp_path, monkeypatch, capsys):
    code, _, err = glscl(monkeypatch, capsys, "check", "--index", str(tmp_path / "none"))
    assert code == 5 and err.startswith("glscl: error: no index")
    assert glscl(monkeypatch, capsys, "check", "--index", str(tmp_path / "none"), "--repair")[0] == 5
