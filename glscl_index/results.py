"""The JSON document of one query's results: `glscl search --json`, `--queries` lines and `GET /api/search` alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch comes with the searcher; this module stays light
    from glscl_index.search import Hit, QueryResult, Searcher


def result_document(result: QueryResult, searcher: Searcher) -> dict[str, Any]:
    """One query's hits, with the index and the generation that answered it."""
    return {
        "query": result.query,
        "truncated": result.truncated,
        "mode": searcher.model.config.mode,
        "random_weights": searcher.model.config.random_weights,
        "index": str(searcher.reader.root),
        "generation": searcher.reader.manifest.generation,
        "results": [hit_document(rank, hit) for rank, hit in enumerate(result.hits, start=1)],
    }


def hit_document(rank: int, hit: Hit) -> dict[str, Any]:
    return {
        "rank": rank,
        "path": hit.video_path,
        "paths": hit.paths,
        "offline": hit.offline,
        "video_id": hit.video_id,
        "score": round(hit.score, 6),
        "global_score": round(hit.global_score, 6),
        "local_score": None if hit.local_score is None else round(hit.local_score, 6),
        "segment": {"index": hit.segment_index, "start_s": round(hit.start_s, 3), "end_s": round(hit.end_s, 3)},
        "best_frame_s": round(hit.best_frame_s, 3),
    }
