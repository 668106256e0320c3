"""Retrieval metrics against hand-computed ranks and a slow loop reference.

Reference for every rank: sort the candidates by descending score, breaking
ties in favour of the correct item (the documented optimistic convention), and
take the 1-based position of the correct item.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch

from glscl_index.eval.metrics import (
    correct_ranks,
    retrieval_metrics,
    text_to_video_metrics,
    video_to_text_metrics,
    video_to_text_ranks,
)


def _loop_rank(scores, correct: int) -> int:
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j != correct))
    return order.index(correct) + 1


def _loop_summary(ranks) -> dict[str, float]:
    n = len(ranks)
    summary = {f"R@{k}": 100.0 * sum(1 for r in ranks if r <= k) / n for k in (1, 5, 10)}
    summary["MdR"] = float(statistics.median(ranks))
    summary["MnR"] = sum(ranks) / n
    return summary


def _loop_t2v(sim, caption_video):
    return [_loop_rank(list(sim[c]), int(caption_video[c])) for c in range(sim.shape[0])]


def _loop_v2t(sim, caption_video):
    ranks = []
    for v in range(sim.shape[1]):
        column = list(sim[:, v])
        own = [c for c in range(sim.shape[0]) if caption_video[c] == v]
        ranks.append(min(_loop_rank(column, c) for c in own))
    return ranks


def _assert_metrics(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key


def test_hand_computed_small_matrix_with_tie():
    sim = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # gt 0: nothing above 0.9              -> rank 1
            [0.2, 0.4, 0.8, 0.6],  # gt 1: 0.8 and 0.6 above 0.4           -> rank 3
            [0.7, 0.7, 0.7, 0.1],  # gt 2: tied with two 0.7s, none above  -> rank 1 (optimistic)
        ]
    )
    gt = np.array([0, 1, 2])
    assert correct_ranks(sim, gt).tolist() == [1, 3, 1]
    # ranks [1, 3, 1]: R@1 = 2/3, R@5 = R@10 = 3/3, median 1, mean 5/3
    _assert_metrics(
        retrieval_metrics(sim, gt),
        {"R@1": 200 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 1.0, "MnR": 5 / 3},
    )


def test_hand_computed_ranks_beyond_five_and_ten():
    # Every row scores column j as 11 - j, so column j has rank j + 1.
    sim = np.tile(np.arange(12)[::-1].astype(np.float32), (4, 1))
    gt = np.array([0, 5, 11, 2])
    assert correct_ranks(sim, gt).tolist() == [1, 6, 12, 3]
    # ranks [1, 6, 12, 3]: R@1 = 1/4, R@5 = 2/4 (1, 3), R@10 = 3/4, median (3 + 6) / 2, mean 22/4
    _assert_metrics(
        retrieval_metrics(sim, gt),
        {"R@1": 25.0, "R@5": 50.0, "R@10": 75.0, "MdR": 4.5, "MnR": 5.5},
    )


def test_all_tied_is_rank_one():
    sim = np.zeros((3, 5))
    assert correct_ranks(sim, np.array([0, 2, 4])).tolist() == [1, 1, 1]


# Five captions of three videos: c0, c1 -> v0; c2, c3 -> v1; c4 -> v2.
MULTI_SIM = np.array(
    [
        [0.9, 0.2, 0.1],
        [0.3, 0.6, 0.4],
        [0.1, 0.45, 0.7],
        [0.8, 0.55, 0.2],
        [0.2, 0.3, 0.25],
    ]
)
MULTI_VIDEO = np.array([0, 0, 1, 1, 2])


def test_multi_caption_text_to_video_hand_computed():
    # Row-wise, rank of the own video's score:
    # c0 0.9 in [.9 .2 .1] -> 1;  c1 0.3 in [.3 .6 .4] -> 3;  c2 0.45 in [.1 .45 .7] -> 2
    # c3 0.55 in [.8 .55 .2] -> 2; c4 0.25 in [.2 .3 .25] -> 2
    # ranks [1, 3, 2, 2, 2]: R@1 = 1/5, R@5 = R@10 = 5/5, median 2, mean 10/5
    _assert_metrics(
        text_to_video_metrics(MULTI_SIM, MULTI_VIDEO),
        {"R@1": 20.0, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0},
    )


def test_multi_caption_video_to_text_hand_computed():
    # Column-wise, best rank among the video's own captions:
    # v0 column [.9 .3 .1 .8 .2]: own c0 0.9 -> 1 (c1 -> 4)           -> 1
    # v1 column [.2 .6 .45 .55 .3]: own c3 0.55 -> 2 (only c1's 0.6 above); c2 0.45 -> 4  -> 2
    # v2 column [.1 .4 .7 .2 .25]: own c4 0.25 -> 3 (0.4, 0.7 above)  -> 3
    assert video_to_text_ranks(MULTI_SIM, MULTI_VIDEO).tolist() == [1, 2, 3]
    # ranks [1, 2, 3]: R@1 = 1/3, R@5 = R@10 = 3/3, median 2, mean 2
    _assert_metrics(
        video_to_text_metrics(MULTI_SIM, MULTI_VIDEO),
        {"R@1": 100 / 3, "R@5": 100.0, "R@10": 100.0, "MdR": 2.0, "MnR": 2.0},
    )


def test_video_to_text_tie_with_other_video_caption_is_optimistic():
    # v0's only caption c0 scores 0.5 in column v0, tied with c1 (of v1) -> rank 1.
    sim = np.array([[0.5, 0.1], [0.5, 0.9]])
    assert video_to_text_ranks(sim, np.array([0, 1])).tolist() == [1, 1]


def test_video_without_caption_is_an_error():
    with pytest.raises(ValueError, match="without any caption"):
        video_to_text_metrics(np.zeros((2, 3)), np.array([0, 1]))


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="outside"):
        retrieval_metrics(np.zeros((1, 2)), np.array([2]))
    with pytest.raises(ValueError, match="shape"):
        retrieval_metrics(np.zeros((2, 2)), np.array([0]))
    with pytest.raises(ValueError, match="integer"):
        retrieval_metrics(np.zeros((1, 2)), np.array([0.0]))


def test_torch_input_matches_numpy():
    sim = torch.randn(6, 4)
    gt = torch.tensor([0, 1, 2, 3, 0, 1])
    assert retrieval_metrics(sim, gt) == retrieval_metrics(sim.numpy(), gt.numpy())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("integer_scores", [False, True])  # integer scores force many ties
def test_random_matrices_match_loop_reference(seed, integer_scores):
    rng = np.random.default_rng(seed)
    n_videos = 17
    caption_video = np.concatenate([np.arange(n_videos), rng.integers(0, n_videos, size=23)])
    rng.shuffle(caption_video)
    shape = (caption_video.size, n_videos)
    sim = rng.integers(0, 4, size=shape).astype(np.float32) if integer_scores else rng.normal(size=shape)

    t2v_ref = _loop_t2v(sim, caption_video)
    assert correct_ranks(sim, caption_video).tolist() == t2v_ref
    _assert_metrics(text_to_video_metrics(sim, caption_video), _loop_summary(t2v_ref))

    v2t_ref = _loop_v2t(sim, caption_video)
    assert video_to_text_ranks(sim, caption_video).tolist() == v2t_ref
    _assert_metrics(video_to_text_metrics(sim, caption_video), _loop_summary(v2t_ref))


def test_one_caption_per_video_v2t_is_t2v_of_transpose():
    rng = np.random.default_rng(7)
    sim = rng.normal(size=(9, 9))
    ids = np.arange(9)
    _assert_metrics(video_to_text_metrics(sim, ids), retrieval_metrics(sim.T, ids))
