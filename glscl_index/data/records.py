"""The common record types every dataset reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clip:
    """One retrievable video (or segment of one) with its ground-truth captions.

    ``start_s``/``end_s`` bound a segment inside ``video_path``; None means the
    whole file (also for benchmarks whose clips are already cut, e.g. LSMDC).
    """

    video_id: str
    video_path: str
    captions: tuple[str, ...]
    start_s: float | None = None
    end_s: float | None = None

    @property
    def paragraph(self) -> str:
        """All captions joined, in annotation order, into one query."""
        return " ".join(self.captions)


@dataclass
class DatasetSplit:
    """The clips of one split of one dataset.

    paragraph: True for paragraph-to-video retrieval (DiDeMo, ActivityNet
    Captions): a clip's captions are joined into one query, for training and
    evaluation alike, as in CLIP4Clip-style code.
    skipped: annotated clips or rows left out because their video file was
    missing or the row was malformed (only with ``skip_missing=True``).
    """

    name: str
    clips: list[Clip]
    paragraph: bool = False
    skipped: int = 0

    def texts(self, index: int) -> tuple[str, ...]:
        """The query texts of clip ``index``: its captions, or its one paragraph."""
        clip = self.clips[index]
        return (clip.paragraph,) if self.paragraph else clip.captions

    def pairs(self) -> list[tuple[str, int]]:
        """(text, clip index) training pairs: one per caption, or one paragraph per clip."""
        return [(text, i) for i in range(len(self.clips)) for text in self.texts(i)]

    def queries(self) -> tuple[list[str], np.ndarray]:
        """Evaluation queries: (texts [C], caption_video int64 [C]).

        ``caption_video[c]`` is the clip index that query ``c`` should retrieve,
        ready for ``eval.metrics.text_to_video_metrics`` on a [C, len(clips)]
        similarity matrix.
        """
        pairs = self.pairs()
        texts = [text for text, _ in pairs]
        return texts, np.array([i for _, i in pairs], dtype=np.int64)
