"""Run the real ``glscl`` entry point in a subprocess, as a user would.

``run_glscl`` starts one interpreter per command. ``run_in_process`` runs several commands through the same
entry point (``cli.app.main`` with ``sys.argv`` set) in ONE fresh interpreter, so torch is imported once: each
command's exit code, stdout and stderr are captured as a real run would give them (an exception that escapes
prints its traceback and exits 1, ``sys.exit("text")`` prints the text), and warnings are shown per command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "open_clip", "faiss", "pipelines.index", "fastapi", "uvicorn")

# Runs each argv of CASES through cli.app.main and prints one JSON line: exit code, stdout, stderr,
# and which heavy modules were imported by then. PATCH is Python run first (e.g. a monkeypatch).
IN_PROCESS = """
import contextlib, io, json, os, sys, traceback, warnings
os.environ["COLUMNS"] = "200"
exec(os.environ.get("GLSCL_TEST_PATCH", ""))
from cli.app import main
results = []
for argv in json.loads(os.environ["GLSCL_TEST_CASES"]):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    sys.argv = ["glscl", *argv]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        try:
            main()
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # what the interpreter does with sys.exit("text")
                print(exc.code, file=sys.stderr)
                code = 1
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
                    "heavy": [m for m in %r if m in sys.modules]})
print(json.dumps(results))
""" % (HEAVY,)


def run_glscl(*args: str, env: dict | None = None, timeout: float = 300, input: str | None = None):
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
        input=input,
    )


def run_in_process(*cases: list[str], patch: str = "", input: str | None = None) -> list[dict]:
    """One ``{code, stdout, stderr, heavy}`` per argv of ``cases``, all run in one fresh interpreter.

    ``input`` is the process's stdin (read by whichever command reads stdin first).
    """
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "GLSCL_TEST_CASES": json.dumps([list(c) for c in cases]), "GLSCL_TEST_PATCH": patch}
    done = subprocess.run(
        [sys.executable, "-c", IN_PROCESS], capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
        input=input,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def one_line_error(result: dict, fragment: str, code: int | None = None) -> str:
    """The single ``glscl: error:`` line of a failed run (asserting there is nothing else on stderr)."""
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert "Traceback" not in result["stderr"]
    assert len(lines) == 1 and lines[0].startswith("glscl: error:"), result["stderr"]
    assert fragment in lines[0], lines[0]
    assert result["code"] != 0 and (code is None or result["code"] == code), (result["code"], lines[0])
    return lines[0]
