"""`glscl serve`'s HTTP API through an in-process client: the schema of `glscl search --json`, error statuses,
media and thumbnails (only indexed files, range requests), reload after a commit, the token."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from glscl_index.errors import InvalidOptionError
from glscl_index.live_index import LiveIndex
from glscl_index.serve import create_app
from glscl_index.serve.security import check_bind
from glscl_index.serve.thumbnails import ThumbnailCache
from tests.cli.helpers import run_glscl
from tests.media import make_clip
from tests.serve.conftest import CODEC


def client_for(index, cache, token=None, **live_options) -> TestClient:
    live = LiveIndex(index, check_every_s=0, **live_options)
    return TestClient(create_app(live, ThumbnailCache(cache), token))


@pytest.fixture(scope="module")
def client(served_index, tmp_path_factory):
    return client_for(served_index.index, tmp_path_factory.mktemp("thumbs"))


@pytest.mark.slow
def test_search_document_equals_glscl_search_json(client, served_index):
    response = client.get("/api/search", params={"q": "a red square moving", "k": 5})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    cli = run_glscl("search", "a red square moving", "--index", str(served_index.index), "--json", "-k", "5")
    assert cli.returncode == 0, cli.stderr
    assert response.json() == json.loads(cli.stdout)
    assert len(response.json()["results"]) == 3


def test_batch_search_answers_each_query_in_order(client):
    queries = ["something green", "a long blue video", "a red square moving"]
    response = client.post("/api/search", json={"queries": queries, "k": 2})
    assert response.status_code == 200
    documents = response.json()
    assert [d["query"] for d in documents] == queries
    for query, document in zip(queries, documents, strict=True):
        assert document == client.get("/api/search", params={"q": query, "k": 2}).json()


def test_info_and_health(client, served_index):
    info = client.get("/api/info").json()
    assert info["index"] == str(served_index.index) and info["videos"] == 3 and info["units"] == 6
    assert info["architecture"] == "tiny-clip" and info["mode"] == "trained" and info["device"] == "cpu"
    assert client.get("/api/health").json() == {"status": "ok", "generation": info["generation"], "units": 6}
    assert "/api/search" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "params", [{"q": ""}, {"q": "  \t "}, {}, {"q": "dog", "k": 0}, {"q": "dog", "k": "many"}],
)
def test_bad_queries_are_400_with_a_message(client, params):
    response = client.get("/api/search", params=params)
    assert response.status_code == 400
    assert set(response.json()) == {"error"} and response.json()["error"]


def test_empty_batch_and_empty_query_in_a_batch_are_400(client):
    assert client.post("/api/search", json={"queries": []}).status_code == 400
    response = client.post("/api/search", json={"queries": ["dog", " "]})
    assert response.status_code == 400 and "empty" in response.json()["error"]


def test_missing_index_is_503(tmp_path):
    missing = client_for(tmp_path / "none", tmp_path / "thumbs")
    for url in ("/api/search?q=dog", "/api/health", "/api/info", "/media/abc", "/thumb/abc"):
        response = missing.get(url)
        assert response.status_code == 503, url
        assert "no index" in response.json()["error"]


def test_damaged_index_is_503_with_the_repair_hint(served_index, tmp_path):
    index = served_index.copy(tmp_path / "index")
    codes = json.loads((index / "manifest.json").read_text())["shards"][0]["codes"]
    (index / "shards" / codes).write_bytes(b"not a codes file")
    response = client_for(index, tmp_path / "thumbs").get("/api/search", params={"q": "dog"})
    assert response.status_code == 503
    assert f"glscl check --repair --index {index}" in response.json()["error"]


@pytest.mark.slow
def test_index_of_another_model_is_409(served_index, tmp_path, tiny_zero_shot_checkpoint):
    # What `glscl checkpoint random DIR --model TINY --zero-shot` writes (tests/conftest.py), without a subprocess.
    other = client_for(served_index.index, tmp_path / "thumbs", checkpoint=str(tiny_zero_shot_checkpoint))
    response = other.get("/api/search", params={"q": "dog"})
    assert response.status_code == 409
    assert "--rebuild" in response.json()["error"]


def test_media_is_range_served_and_only_for_indexed_videos(client, served_index):
    hit = client.get("/api/search", params={"q": "red"}).json()["results"][0]
    data = open(hit["path"], "rb").read()
    part = client.get(f"/media/{hit['video_id']}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == data[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(data)}"
    whole = client.get(f"/media/{hit['video_id']}?p=0")
    assert whole.status_code == 200 and whole.content == data and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    for url in (
        "/media/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/media/%2Fetc%2Fpasswd", "/media/not-a-video-id",
        f"/media/{hit['video_id']}?p=1", "/thumb/..%2F..%2Fetc%2Fpasswd?t=0", "/static/..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/" + "..%2F" * 12 + "etc%2Fpasswd", f"/media/{hit['path']}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"root:" not in response.content


def test_thumbnail_is_a_real_frame_and_is_cached(served_index, tmp_path):
    client = client_for(served_index.index, tmp_path / "thumbs")
    hit = client.get("/api/search", params={"q": "red"}).json()["results"][0]
    response = client.get(f"/thumb/{hit['video_id']}", params={"t": hit["best_frame_s"]})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float32)
    assert image.shape[1] <= 320 and image.std() > 5  # the square on its background, not a blank frame
    cached = list((tmp_path / "thumbs").glob("*/*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == response.content
    assert client.get(f"/thumb/{hit['video_id']}", params={"t": hit["best_frame_s"] + 0.01}).content == response.content
    assert len(list((tmp_path / "thumbs").glob("*/*.jpg"))) == 1


def test_thumbnail_cache_is_bounded(served_index, tmp_path):
    cache = ThumbnailCache(tmp_path / "thumbs", max_files=4)
    path = str(served_index.videos / "long blue.mp4")
    for second in range(12):
        assert cache.get("v", path, float(second)).startswith(b"\xff\xd8")  # JPEG
    assert 1 <= len(list((tmp_path / "thumbs").glob("*/*.jpg"))) <= 4


@pytest.mark.slow
def test_a_commit_is_picked_up_without_restart_or_failed_requests(served_index, tmp_path):
    index = served_index.copy(tmp_path / "index")
    client = client_for(index, tmp_path / "thumbs")
    before = client.get("/api/search", params={"q": "a yellow square", "k": 10}).json()
    assert len(before["results"]) == 3
    make_clip(tmp_path / "more" / "yellow.mp4", color=(230, 230, 20), codec=CODEC)
    make_clip(tmp_path / "more" / "white.mp4", color=(240, 240, 240), codec=CODEC)
    statuses: list[int] = []
    stop = threading.Event()

    def keep_searching() -> None:  # requests in flight while the writer commits
        while not stop.is_set():
            statuses.append(client.get("/api/search", params={"q": "a yellow square"}).status_code)

    searching = threading.Thread(target=keep_searching)
    searching.start()
    try:
        indexed = run_glscl("index", str(tmp_path / "more"), "--index", str(index), "--workers", "1")
    finally:
        stop.set()
        searching.join()
    assert indexed.returncode == 0, indexed.stderr
    after = client.get("/api/search", params={"q": "a yellow square", "k": 10}).json()
    assert after["generation"] > before["generation"]
    assert {r["path"] for r in after["results"]} >= {str(tmp_path / "more" / "yellow.mp4")}
    assert len(after["results"]) == 5
    assert client.get("/api/health").json()["units"] == 8
    assert statuses and set(statuses) == {200}
    yellow = next(r for r in after["results"] if r["path"].endswith("yellow.mp4"))
    assert client.get(f"/media/{yellow['video_id']}", headers={"Range": "bytes=0-9"}).status_code == 206


def test_token_guards_every_request(served_index, tmp_path):
    client = client_for(served_index.index, tmp_path / "thumbs", token="s3cret")
    video_id = client.get("/api/search", params={"q": "red", "token": "s3cret"}).json()["results"][0]["video_id"]
    urls = ["/", "/api/search?q=red", "/api/info", "/api/health", "/static/app.js", "/openapi.json",
            f"/media/{video_id}", f"/thumb/{video_id}?t=0"]
    for url in urls:
        refused = client.get(url)
        assert refused.status_code == 401 and "token" in refused.json()["error"], url
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401, url
        assert client.get(url + ("&" if "?" in url else "?") + "token=wrong").status_code == 401, url
        assert client.get(url, headers={"Authorization": "Bearer s3cret"}).status_code == 200, url
        assert client.get(url + ("&" if "?" in url else "?") + "token=s3cret").status_code == 200, url
    assert client.post("/api/search", json={"queries": ["red"]}).status_code == 401
    page = client.get("/?token=s3cret").text
    assert "/static/app.js?token=s3cret" in page and "/static/style.css?token=s3cret" in page


def test_binding_beyond_loopback_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "s3cret")
    with pytest.raises(InvalidOptionError, match="--token"):
        check_bind("0.0.0.0", None)
    refused = run_glscl("serve", "--host", "0.0.0.0", "--index", "/nonexistent")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "--token" in lines[0], refused.stderr
