"""The FastAPI application of `glscl serve`: the page, the JSON API, thumbnails and range-served videos.

Media are addressed by video id (and the index of one of its paths), never by a filesystem path,
so only files the index holds can be read. Every route answers errors as ``{"error": message}``.
"""

from __future__ import annotations

import mimetypes
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from glscl_index.errors import GLSCLError
from glscl_index.live_index import Generation, LiveIndex
from glscl_index.results import result_document
from glscl_index.serve.errors import message_of, status_of
from glscl_index.serve.security import token_matches
from glscl_index.serve.thumbnails import ThumbnailCache
from glscl_index.store.stats import index_stats

STATIC = Path(__file__).parent / "static"
MAX_K = 1000
MAX_BATCH = 256
# Browsers can play these containers; anything else is still served, as a download-able stream.
VIDEO_TYPES = {".mkv": "video/x-matroska", ".webm": "video/webm", ".mp4": "video/mp4", ".m4v": "video/mp4"}


class BatchSearch(BaseModel):
    queries: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=MAX_K)
    exhaustive: bool = False
    candidates: int = Field(0, ge=0)


def create_app(live: LiveIndex, thumbnails: ThumbnailCache, token: str | None = None) -> FastAPI:
    """The app over ``live``; with ``token`` every request must carry it (header or ``?token=``)."""
    app = FastAPI(
        title="glscl", summary="Natural-language search over your own videos (GLSCL)",
        description="`GET /api/search?q=...` answers with the document of `glscl search --json`.",
    )
    # One search at a time: torch already uses every core for one query, and interleaving only adds latency.
    search_lock = threading.Lock()

    @app.middleware("http")
    async def require_token(request: Request, call_next: Any) -> Response:
        if token and not token_matches(token, request.headers.get("authorization"), request.query_params.get("token")):
            return JSONResponse({"error": "missing or wrong token; send 'Authorization: Bearer TOKEN' or ?token=TOKEN"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)

    @app.exception_handler(GLSCLError)
    async def library_error(request: Request, exc: GLSCLError) -> JSONResponse:
        return JSONResponse({"error": message_of(exc)}, status_code=status_of(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"error": problems or "bad request"}, status_code=400)

    @app.get("/api/search", summary="Search with one query (the document of `glscl search --json`)")
    def search_one(
        q: str = Query("", description="What to look for, e.g. 'a man cooking pasta'"),
        k: int = Query(10, ge=1, le=MAX_K), exhaustive: bool = False, candidates: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        return _search(live, search_lock, [q], k, exhaustive, candidates)[0]

    @app.post("/api/search", summary="Search with a batch of queries: one document per query, in order")
    def search_many(body: BatchSearch) -> list[dict[str, Any]]:
        return _search(live, search_lock, body.queries, body.k, body.exhaustive, body.candidates)

    @app.get("/api/info", summary="The index: model, generation, units, videos, failed files (as `glscl info --json`)")
    def info() -> dict[str, Any]:
        searcher = live.searcher()
        return {**index_stats(live.root).to_dict(), "generation": searcher.reader.manifest.generation,
                "device": str(searcher.device)}

    @app.get("/api/health", summary="200 when the model and an index generation are loaded")
    def health() -> dict[str, Any]:
        current = live.current()
        return {"status": "ok", "generation": current.generation, "units": len(current.searcher.reader.units)}

    @app.get("/thumb/{video_id}", summary="JPEG of a video's frame at t seconds", response_class=Response)
    def thumbnail(video_id: str, t: float = Query(0.0, ge=0.0, le=1e7)) -> Response:
        path = _existing_path(live.current(), video_id, None)
        data = thumbnails.get(video_id, path, t)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/media/{video_id}", summary="The video file, with HTTP range requests", response_class=FileResponse)
    def media(
        video_id: str,
        p: int | None = Query(None, ge=0, description="which of its paths (sorted); default: the first present"),
    ) -> FileResponse:
        path = _existing_path(live.current(), video_id, p)
        media_type = VIDEO_TYPES.get(Path(path).suffix.lower()) or mimetypes.guess_type(path)[0] or "video/mp4"
        return FileResponse(path, media_type=media_type, content_disposition_type="inline")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        query = f"?token={quote(token, safe='')}" if token else ""
        html = (STATIC / "index.html").read_text(encoding="utf-8").replace("__TOKEN_QUERY__", query)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _search(
    live: LiveIndex, lock: threading.Lock, queries: list[str], k: int, exhaustive: bool, candidates: int
) -> list[dict[str, Any]]:
    from glscl_index.search import SearchConfig

    searcher = live.searcher()  # this request keeps this generation even if a newer one is opened meanwhile
    with lock:
        results = searcher.search(queries, SearchConfig(k=k, candidates=candidates, exhaustive=exhaustive))
    return [result_document(result, searcher) for result in results]


def _existing_path(generation: Generation, video_id: str, which: int | None) -> str:
    """A file of an indexed video: path ``which`` of its sorted paths, else the first one that exists.

    Unknown ids (and anything that is not an id, e.g. ``../../etc/passwd``) are 404: no request names a path.
    """
    paths = generation.video_paths(video_id)
    if not paths:
        raise HTTPException(404, "no such video in the index")
    if which is not None:
        if which >= len(paths):
            raise HTTPException(404, f"the video has {len(paths)} path(s)")
        paths = [paths[which]]
    for path in paths:
        if Path(path).is_file():
            return path
    raise HTTPException(404, "the video's file is not reachable now (moved, or on a drive that is not mounted)")
