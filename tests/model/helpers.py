"""Slow, obvious reference computations shared by the model tests."""

import math

import torch


def reference_sim1(sentence, frames, mask, tau):
    """For each (q, v): softmax over real frames of (e . v_t)/tau, g = sum a_t v_t, cos(e, g)."""
    Q, V = sentence.shape[0], frames.shape[0]
    sims = torch.zeros(Q, V, dtype=torch.float64)
    weights = torch.zeros(Q, V, frames.shape[1], dtype=torch.float64)
    for q in range(Q):
        e = sentence[q].double()
        for v in range(V):
            real = [t for t in range(frames.shape[1]) if mask[v, t]]
            logits = [float(e @ frames[v, t].double()) / tau for t in real]
            top = max(logits)
            exps = [math.exp(x - top) for x in logits]
            total = sum(exps)
            g = torch.zeros(frames.shape[2], dtype=torch.float64)
            for t, ex in zip(real, exps, strict=False):
                weights[q, v, t] = ex / total
                g += (ex / total) * frames[v, t].double()
            sims[q, v] = float(e @ g) / (float(e.norm()) * float(g.norm()))
    return sims, weights
