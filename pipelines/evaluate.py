"""The evaluation job: retrieval metrics in memory, and optionally through a real index and two-stage search."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glscl_index.device import resolve_device
from glscl_index.errors import DatasetError
from glscl_index.eval.evaluate import EvalReport, evaluate
from glscl_index.eval.metrics import metrics_from_ranks
from glscl_index.model.factory import load_model_and_fingerprint
from glscl_index.model.glscl import GLSCL
from glscl_index.model.spec import ModelSpec
from glscl_index.search import Hit, SearchConfig, Searcher
from glscl_index.store.manifest import require_model
from glscl_index.store.reader import IndexReader
from glscl_index.video.workers import DecodeConfig
from pipelines.index import IndexJobConfig, run_index
from pipelines.train import (
    DatasetSource,
    PreparedSplit,
    eval_data,
    prepare_split,
)


@dataclass
class EvalJobConfig:
    dataset: DatasetSource
    split: str = "test"
    model: ModelSpec = field(default_factory=ModelSpec)
    device: str = "auto"
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    cache_dir: Path | None = None  # frame cache; None = decode without caching
    via_index: Path | None = None  # index directory to build (or update) and search through
    # FAISS candidates per query through the index; 0 = what `glscl search` takes for its default k = 10,
    # so the evaluation measures the real two-stage path (a video outside the candidates ranks after them).
    candidates: int = 0


@dataclass
class IndexedEval:
    """Text-to-video metrics through an index and ``glscl search``'s two-stage path."""

    text_to_video: dict[str, float]
    index_dir: Path
    exhaustive_fallbacks: int  # queries whose video was outside the FAISS candidates (ranked after them)
    candidates: int  # FAISS candidates per query

    def to_dict(self) -> dict:
        return {
            "text_to_video": self.text_to_video,
            "index": str(self.index_dir),
            "exhaustive_fallbacks": self.exhaustive_fallbacks,
            "candidates": self.candidates,
        }


@dataclass
class EvalResult:
    in_memory: EvalReport
    via_index: IndexedEval | None
    split_name: str
    skipped: int  # clips left out (missing or undecodable videos, with skip_missing)

    def to_dict(self) -> dict:
        return {
            "split": self.split_name,
            "skipped": self.skipped,
            "in_memory": self.in_memory.to_dict(),
            "via_index": None if self.via_index is None else self.via_index.to_dict(),
        }


def run_eval(config: EvalJobConfig, on_video: Callable[[], None] | None = None) -> EvalResult:
    """Everything ``glscl eval`` does."""
    model, fingerprint = load_model_and_fingerprint(config.model)
    device = resolve_device(config.device)
    model.to(device)
    prepared = prepare_split(config.dataset, config.split, model, config.decode, config.cache_dir, on_video)
    data = eval_data(prepared)
    report = evaluate(model, data.frames, data.texts, data.caption_clip, device)
    indexed = None
    if config.via_index is not None:
        indexed = evaluate_via_index(model, fingerprint, prepared, config, device)
    return EvalResult(report, indexed, prepared.split.name, prepared.split.skipped)


def evaluate_via_index(
    model: GLSCL, fingerprint: str, prepared: PreparedSplit, config: EvalJobConfig, device
) -> IndexedEval:
    """Index the split's videos with ``model`` and rank every caption's video with the two-stage search.

    Each video is indexed as one unit (as the in-memory protocol samples it),
    so the numbers match the in-memory ones up to float16 storage.
    """
    clips = prepared.split.clips
    if any(c.start_s is not None or c.end_s is not None for c in clips):
        raise DatasetError("--via-index needs whole-video clips; this split captions segments of videos")
    paths = sorted({os.path.realpath(c.video_path) for c in clips})
    if len(paths) != len(clips):
        raise DatasetError("--via-index needs one clip per video file; this split has several clips per file")
    index_job = IndexJobConfig(
        paths=paths, index_dir=config.via_index, model=config.model, device=config.device,
        single_unit_max_s=float("inf"), decode=config.decode,
    )
    run_index(index_job, model=model)
    reader = IndexReader.open(config.via_index)
    require_model(config.via_index, reader.manifest, fingerprint, "pass an empty --via-index directory")
    searcher = Searcher(reader, model, device)
    texts, caption_clip = prepared.split.queries()
    target = [os.path.realpath(clips[i].video_path) for i in caption_clip]
    candidates = config.candidates or SearchConfig().candidate_count()
    ranks, fallbacks = two_stage_ranks(searcher, texts, target, len(clips), candidates)
    return IndexedEval(metrics_from_ranks(ranks), Path(config.via_index), fallbacks, candidates)


def two_stage_ranks(
    searcher: Searcher, texts: list[str], target: list[str], num_videos: int, candidates: int
) -> tuple[np.ndarray, int]:
    """1-based rank of each caption's video as `glscl search` would order it, and how many fell outside.

    Two-stage search with ``candidates`` FAISS candidates ranks the videos it reaches; a
    video it misses ranks after all of those, in exact-score order among the rest (what a
    user paging past the candidates would see from an exhaustive search).
    """
    two_stage = _hits_all(searcher, texts, SearchConfig(k=num_videos, candidates=candidates))
    ranks = np.array([_rank_of(hits, wanted) for hits, wanted in zip(two_stage, target, strict=False)], dtype=np.int64)
    missing = np.flatnonzero(ranks == 0)
    if len(missing):
        exhaustive = _hits_all(searcher, [texts[i] for i in missing], SearchConfig(k=num_videos, exhaustive=True))
        for i, every in zip(missing, exhaustive, strict=False):
            reached = {hit.video_id for hit in two_stage[i]}
            rest = _rank_of([hit for hit in every if hit.video_id not in reached], target[i])
            ranks[i] = len(reached) + rest if rest else 0
    if (ranks == 0).any():
        raise DatasetError("some videos of the split are missing from the index (they failed to decode there)")
    return ranks, len(missing)


def _hits_all(searcher: Searcher, texts: list[str], config: SearchConfig) -> list[list[Hit]]:
    hits: list[list[Hit]] = []
    for start in range(0, len(texts), 256):
        text, keys = searcher.encode_queries(texts[start : start + 256])
        hits += searcher.rank(text, keys, config)
    return hits


def _rank_of(hits: list[Hit], wanted: str) -> int:
    """1-based position of the video with path ``wanted`` (any of its paths) in ``hits``; 0 if absent."""
    for rank, hit in enumerate(hits, 1):
        if any(os.path.realpath(path) == wanted for path in hit.paths or [hit.video_path]):
            return rank
    return 0
