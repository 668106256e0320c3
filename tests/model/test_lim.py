"""LIM: similarity against loops over queries; masks on both sides."""

import torch

from glscl_index.model.lim import flatten_concepts, local_similarity
from tests.tiny import tiny_model


def test_local_similarity_matches_loop():
    torch.manual_seed(2)
    W = torch.nn.functional.normalize(torch.randn(3, 4, 8), dim=-1)
    U = torch.nn.functional.normalize(torch.randn(5, 4, 8), dim=-1)
    expected = torch.zeros(3, 5)
    for q in range(3):
        for v in range(5):
            expected[q, v] = sum(float(W[q, k] @ U[v, k]) for k in range(4)) / 4
    torch.testing.assert_close(local_similarity(W, U), expected)


def test_flattened_concepts_inner_product_is_sim2():
    torch.manual_seed(3)
    W = torch.nn.functional.normalize(torch.randn(2, 8, 16), dim=-1)
    U = torch.nn.functional.normalize(torch.randn(6, 8, 16), dim=-1)
    torch.testing.assert_close(flatten_concepts(W) @ flatten_concepts(U).T, local_similarity(W, U))


def test_lim_concepts_are_unit_rows_and_ignore_padding():
    model = tiny_model()
    lim = model.lim
    features = torch.randn(2, 6, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    concepts = lim(features, mask)
    assert concepts.shape == (2, 8, 32)
    torch.testing.assert_close(concepts.norm(dim=-1), torch.ones(2, 8))
    garbage = features.clone()
    garbage[0, 3:] = torch.randn(3, 32) * 50
    torch.testing.assert_close(lim(garbage, mask)[0], concepts[0], atol=1e-5, rtol=1e-5)
    # The same video alone, without the padding columns, gives the same concepts.
    alone = lim(features[:1, :3], mask[:1, :3])
    torch.testing.assert_close(alone[0], concepts[0], atol=1e-5, rtol=1e-5)


def test_queries_and_decoder_are_shared_between_modalities():
    model = tiny_model()
    tokens = model.backbone.tokenize(["a red square moves left"])
    text = model.embed_text(tokens)
    # Running the LIM by hand on the token features reproduces the textual concepts.
    torch.testing.assert_close(model.lim(text.tokens, text.mask), text.concepts)
