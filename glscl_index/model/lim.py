"""Local interaction module: K shared learnable queries decoded against either modality (docs/architecture.md §2).

  U = rownorm(Dec(Q, v_1..v_T)),  W = rownorm(Dec(Q, h_1..h_L)),  sim2 = (1/K) sum_k <W_k, U_k>
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from glscl_index.model.config import GLSCLConfig


class LocalInteraction(nn.Module):
    """Shared queries ``[K, D]`` and one shared transformer decoder for frames and tokens.

    The decoder is PyTorch's standard post-norm decoder layer (self-attention
    over the queries, cross-attention to the features, FFN), the layout of the
    official GLSCL code, so its weights import name for name.
    """

    def __init__(self, config: GLSCLConfig):
        super().__init__()
        width = config.embed_dim
        self.queries = nn.Parameter(torch.rand(config.num_queries, width))
        layer = nn.TransformerDecoderLayer(
            d_model=width,
            nhead=config.decoder_heads,
            dim_feedforward=config.decoder_ffn,
            dropout=config.decoder_dropout,
            batch_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=config.decoder_layers)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Features ``[B, N, D]`` with mask ``[B, N]`` (True = real; None = attend to every position)
        -> unit-norm concepts ``[B, K, D]``."""
        queries = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1).to(features.dtype)
        decoded = self.decoder(queries, features, memory_key_padding_mask=None if mask is None else ~mask)
        return F.normalize(decoded, dim=-1, eps=1e-6)


def local_similarity(textual_concepts: torch.Tensor, visual_concepts: torch.Tensor) -> torch.Tensor:
    """sim2 ``[Q, V]`` from textual concepts ``[Q, K, D]`` and visual concepts ``[V, K, D]``."""
    num_queries = textual_concepts.shape[1]
    # One [Q, K*D] x [K*D, V] matrix product: torch's einsum over the two contracted axes runs a batched
    # path 30x slower on CPU (measured 38.8 vs 1.2 ms for 1,600 units), which dominated the exact rerank.
    return (textual_concepts.flatten(1) @ visual_concepts.flatten(1).T) / num_queries


def flatten_concepts(concepts: torch.Tensor) -> torch.Tensor:
    """Concepts ``[B, K, D]`` -> ``[B, K*D]`` scaled by 1/sqrt(K), so that a plain inner product of
    a flattened text and a flattened video equals sim2 (what lets FAISS search it)."""
    return concepts.flatten(1) / math.sqrt(concepts.shape[1])
