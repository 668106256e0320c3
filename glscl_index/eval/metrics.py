"""Retrieval metrics for text-video benchmarks: R@1/5/10, median and mean rank.

Rank convention (all functions): the rank of the correct item is

    rank = 1 + (number of candidates whose score is strictly greater)

so ties are counted optimistically: a correct item tied with others for first
place has rank 1. Ties only occur with degenerate scores (e.g. identical
features); a NaN score raises ``ValueError`` because it would compare as
"not greater" and silently give rank 1.

All functions take a similarity matrix as a numpy array or a torch tensor
(rows are queries or captions, columns are videos) and are vectorised: no
Python loop over queries.
"""

from __future__ import annotations

import numpy as np

RECALL_AT = (1, 5, 10)


def _as_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # torch.Tensor without importing torch here
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _check_sim(sim) -> np.ndarray:
    sim = _as_numpy(sim)
    if sim.ndim != 2:
        raise ValueError(f"sim must be 2-D [queries, videos], got shape {sim.shape}")
    if np.isnan(sim).any():
        raise ValueError("sim contains NaN scores")
    return sim


def _check_index(index, length: int, upper: int, name: str) -> np.ndarray:
    index = _as_numpy(index)
    if index.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {index.shape}")
    if not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"{name} must be integer column indices, got dtype {index.dtype}")
    if length and (index.min() < 0 or index.max() >= upper):
        raise ValueError(f"{name} has indices outside [0, {upper})")
    return index.astype(np.int64)


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (percent), MdR and MnR from 1-based ranks [N]."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("no ranks to summarise")
    metrics = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_AT}
    metrics["MdR"] = float(np.median(ranks))
    metrics["MnR"] = float(np.mean(ranks))
    return metrics


def correct_ranks(sim, gt) -> np.ndarray:
    """1-based rank of the correct column of each row.

    sim: [Q, V] scores; gt: [Q] int, the correct column of each row.
    Returns [Q] int64, rank = 1 + #columns with a strictly greater score.
    """
    sim = _check_sim(sim)
    gt = _check_index(gt, sim.shape[0], sim.shape[1], "gt")
    correct = sim[np.arange(sim.shape[0]), gt]  # [Q]
    return 1 + (sim > correct[:, None]).sum(axis=1)


def retrieval_metrics(sim, gt) -> dict[str, float]:
    """Metrics for one correct column per row (sim [Q, V], gt [Q] int).

    Returns {"R@1", "R@5", "R@10"} in percent and {"MdR", "MnR"} as 1-based
    ranks; ties are counted optimistically (see module docstring).
    """
    return metrics_from_ranks(correct_ranks(sim, gt))


def text_to_video_metrics(sim, caption_video) -> dict[str, float]:
    """Text-to-video retrieval with several captions per video.

    sim: [C, V] caption-by-video scores; caption_video: [C] int, the video of
    each caption. Every caption is one query with exactly one correct video,
    so this is ``retrieval_metrics`` with gt = caption_video (all C captions
    count, as in the MSVD / MSR-VTT-full protocols of CLIP4Clip-style code).
    """
    return retrieval_metrics(sim, caption_video)


def video_to_text_ranks(sim, caption_video) -> np.ndarray:
    """1-based rank per video [V] for video-to-text retrieval (see video_to_text_metrics)."""
    sim = _check_sim(sim)
    n_captions, n_videos = sim.shape
    caption_video = _check_index(caption_video, n_captions, n_videos, "caption_video")
    counts = np.bincount(caption_video, minlength=n_videos)
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0)[:5].tolist()
        raise ValueError(f"videos without any caption cannot be ranked (columns {missing}...)")
    # The rank is monotone in the score, so the best-ranked ground-truth caption
    # is the one with the highest score: rank the column's best gt score against
    # all captions instead of ranking every caption (which would need [C, C]).
    gt_scores = sim[np.arange(n_captions), caption_video]  # [C]
    best = np.full(n_videos, -np.inf, dtype=np.float64)
    np.maximum.at(best, caption_video, gt_scores.astype(np.float64))
    return 1 + (sim > best[None, :]).sum(axis=0)


def video_to_text_metrics(sim, caption_video) -> dict[str, float]:
    """Video-to-text retrieval with several captions per video.

    sim: [C, V] caption-by-video scores (the same matrix as for text-to-video;
    each video is the query, ranking all C captions in its column);
    caption_video: [C] int, the video of each caption.

    Protocol (the multi-sentence v2t of CLIP4Clip-style code for MSVD and
    MSR-VTT full): a video's rank is the best (minimum) rank among its
    ground-truth captions, i.e. 1 + the number of captions, of any video, that
    score strictly higher than the video's best-scoring own caption. Other
    ground-truth captions never push the rank down. One rank per video.
    """
    return metrics_from_ranks(video_to_text_ranks(sim, caption_video))
