"""In-memory retrieval evaluation: embed every clip and every caption, score all pairs, compute the metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from glscl_index.eval.metrics import text_to_video_metrics, video_to_text_metrics
from glscl_index.model.glscl import GLSCL, TextEmbedding, VideoEmbedding
from glscl_index.train.frames import ClipFrames
from glscl_index.train.step import encode_videos


@dataclass
class EvalReport:
    """Text-to-video and video-to-text R@1/R@5/R@10 (percent), MdR, MnR.

    Over ``queries`` captions and ``videos`` clips.
    """

    text_to_video: dict[str, float]
    video_to_text: dict[str, float]
    queries: int
    videos: int

    def to_dict(self) -> dict:
        return {
            "text_to_video": self.text_to_video,
            "video_to_text": self.video_to_text,
            "queries": self.queries,
            "videos": self.videos,
        }


@torch.inference_mode()
def embed_clips(model: GLSCL, frames: ClipFrames, device: torch.device, batch_size: int = 32) -> VideoEmbedding:
    """Every kept clip -> one VideoEmbedding ``[N, T, D]`` (+ concepts ``[N, K, D]``) on ``device``, float32."""
    parts = []
    for start in range(0, len(frames), batch_size):
        clip_frames, counts = frames.batch(np.arange(start, min(len(frames), start + batch_size)))
        video = encode_videos(
            model, torch.from_numpy(clip_frames).to(device), torch.from_numpy(counts).to(device)
        )
        parts.append(video)
    return VideoEmbedding.concat(parts).float32()


@torch.inference_mode()
def embed_texts(model: GLSCL, texts: list[str], device: torch.device, batch_size: int = 256) -> TextEmbedding:
    """Captions -> one TextEmbedding ``[C, ...]`` on ``device``, float32."""
    parts = [
        model.embed_text(model.backbone.tokenize(texts[start : start + batch_size]).to(device))
        for start in range(0, len(texts), batch_size)
    ]
    return TextEmbedding.concat(parts).float32()


@torch.inference_mode()
def similarity_matrix(model: GLSCL, text: TextEmbedding, video: VideoEmbedding, chunk: int = 256) -> np.ndarray:
    """GLSCL scores s ``[C, N]`` of every caption against every clip, in chunks of captions (bounded memory)."""
    rows = []
    for start in range(0, text.sentence.shape[0], chunk):
        part = text.rows(slice(start, start + chunk))
        rows.append(model.score(part, video).total.float().cpu().numpy())
    return np.concatenate(rows, axis=0)


def evaluate(
    model: GLSCL, frames: ClipFrames, texts: list[str], caption_clip: np.ndarray, device: torch.device
) -> EvalReport:
    """Retrieval metrics of ``model`` on captions ``texts [C]`` whose clip is ``caption_clip [C]`` (kept-clip index).

    Multi-caption protocol: text-to-video ranks each caption against every
    clip; video-to-text ranks a clip by its best-ranked caption.
    """
    was_training = model.training
    model.eval()
    try:
        sim = similarity_matrix(model, embed_texts(model, texts, device), embed_clips(model, frames, device))
    finally:
        model.train(was_training)
    return EvalReport(
        text_to_video=text_to_video_metrics(sim, caption_clip),
        video_to_text=video_to_text_metrics(sim, caption_clip),
        queries=len(texts),
        videos=len(frames),
    )
