"""`glscl serve` as a user starts it: a real process on a free port, searched over HTTP, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.cli.helpers import REPO
from tests.serve.browser import free_port


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.slow
def test_glscl_serve_answers_http_until_interrupted(served_index, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.app", "serve", "--index", str(served_index.index), "--port", str(port),
         "--token", "s3cret"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if get(base + "/api/health", "s3cret")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "glscl serve did not come up"
            time.sleep(0.3)
        status, body = get(base + "/api/search?q=a%20red%20square&k=2", "s3cret")
        assert status == 200 and len(json.loads(body)["results"]) == 2
        assert get(base + "/api/search?q=red")[0] == 401
        video_id = json.loads(body)["results"][0]["video_id"]
        status, jpeg = get(f"{base}/thumb/{video_id}?t=1&token=s3cret")
        assert status == 200 and jpeg.startswith(b"\xff\xd8")
        assert list((tmp_path / "cache" / "glscl" / "thumbnails").glob("*/*.jpg"))
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=30)
    assert f"serving {served_index.index} at {base}/" in stderr
    assert "Traceback" not in stderr
