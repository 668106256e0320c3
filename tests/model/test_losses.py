"""Each loss against a slow, obvious reference written here."""

import math

import torch

from glscl_index.model.losses import LossConfig, glscl_loss, inter_consistency, intra_diversity, multi_positive_infonce


def reference_infonce(S, ids, scale):
    B = S.shape[0]
    total_t2v = 0.0
    for i in range(B):
        positives = [j for j in range(B) if ids[j] == ids[i]]
        denominator = sum(math.exp(scale * float(S[i, j])) for j in range(B))
        total_t2v += -sum(math.log(math.exp(scale * float(S[i, j])) / denominator) for j in positives) / len(positives)
    total_v2t = 0.0
    for j in range(B):
        positives = [i for i in range(B) if ids[i] == ids[j]]
        denominator = sum(math.exp(scale * float(S[i, j])) for i in range(B))
        total_v2t += -sum(math.log(math.exp(scale * float(S[i, j])) / denominator) for i in positives) / len(positives)
    return (total_t2v / B + total_v2t / B) / 2


def test_infonce_multi_positive_matches_reference():
    torch.manual_seed(5)
    S = torch.rand(6, 6) * 2 - 1
    ids = torch.tensor([0, 1, 1, 2, 3, 3])
    got = multi_positive_infonce(S, ids, torch.tensor(20.0))
    assert abs(float(got) - reference_infonce(S, ids.tolist(), 20.0)) < 1e-4


def test_infonce_single_positive_is_clip_loss():
    torch.manual_seed(6)
    S = torch.rand(4, 4)
    got = multi_positive_infonce(S, torch.arange(4), torch.tensor(10.0))
    labels = torch.arange(4)
    expected = (
        torch.nn.functional.cross_entropy(10 * S, labels) + torch.nn.functional.cross_entropy(10 * S.T, labels)
    ) / 2
    torch.testing.assert_close(got, expected)


def reference_diversity(U, margin):
    B, K, _ = U.shape
    G = [[sum(float(U[b, i] @ U[b, j]) for b in range(B)) / B for j in range(K)] for i in range(K)]
    rows = sum(max(0.0, margin + G[i][j] - G[i][i]) for i in range(K) for j in range(K) if i != j)
    cols = sum(max(0.0, margin + G[i][j] - G[j][j]) for i in range(K) for j in range(K) if i != j)
    return rows / (K * (K - 1)) + cols / (K * (K - 1))


def test_intra_diversity_matches_reference():
    torch.manual_seed(7)
    U = torch.nn.functional.normalize(torch.randn(5, 4, 8), dim=-1)
    assert abs(float(intra_diversity(U, 0.1)) - reference_diversity(U, 0.1)) < 1e-5


def test_intra_diversity_zero_for_orthogonal_concepts():
    U = torch.eye(4).unsqueeze(0).repeat(3, 1, 1)
    assert float(intra_diversity(U, 0.1)) == 0.0


def reference_consistency(U, W, beta, target):
    B, K, D = U.shape
    mean_u = [[sum(float(U[b, k, d]) for b in range(B)) / B for d in range(D)] for k in range(K)]
    mean_w = [[sum(float(W[b, k, d]) for b in range(B)) / B for d in range(D)] for k in range(K)]
    mse = sum((mean_u[k][d] - mean_w[k][d]) ** 2 for k in range(K) for d in range(D)) / (K * D)
    C_diag = [sum(float(U[b, k] @ W[b, k]) for b in range(B)) / K for k in range(K)]
    return mse + beta * sum((c - target) ** 2 for c in C_diag)


def test_inter_consistency_matches_reference():
    torch.manual_seed(8)
    U = torch.nn.functional.normalize(torch.randn(3, 4, 6), dim=-1)
    W = torch.nn.functional.normalize(torch.randn(3, 4, 6), dim=-1)
    got = float(inter_consistency(U, W, 5e-3, 0.75))
    assert abs(got - reference_consistency(U, W, 5e-3, 0.75)) < 1e-6


def test_total_loss_weights_and_logit_scale_clamp():
    torch.manual_seed(9)
    S = torch.rand(4, 4)
    ids = torch.arange(4)
    U = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1)
    W = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1)
    config = LossConfig()
    terms = glscl_loss(S, ids, torch.tensor(math.log(1000.0)), U, W, config)
    torch.testing.assert_close(terms.contrastive, multi_positive_infonce(S, ids, torch.tensor(100.0)))
    torch.testing.assert_close(terms.diversity, 1e-4 * intra_diversity(U, 0.1))
    torch.testing.assert_close(terms.total, terms.contrastive + terms.diversity + terms.consistency)
    off = glscl_loss(S, ids, torch.tensor(0.0), U, W, LossConfig(use_diversity=False, use_consistency=False))
    assert float(off.diversity) == 0.0 and float(off.consistency) == 0.0
