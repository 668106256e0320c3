"""Backbone wrapper: tokenization, per-token features, masks, frames."""

import torch

from tests.tiny import tiny_model


def test_tokenize_truncates_long_text_at_32_with_end_token():
    backbone = tiny_model().backbone
    tokens = backbone.tokenize(["word " * 200, "short"])
    assert tokens.shape == (2, 32)
    assert int(tokens[0, -1]) == backbone.tokenizer.eot_token_id
    assert backbone.count_tokens("word " * 200) > 32


@torch.no_grad()
def test_text_features_shapes_mask_and_sentence():
    backbone = tiny_model().backbone
    tokens = backbone.tokenize(["a cat", "a dog runs in the park"])
    text = backbone.encode_text(tokens)
    assert text.tokens.shape == (2, 32, 32) and text.sentence.shape == (2, 32)
    end = tokens.argmax(-1)
    for b in range(2):
        assert text.mask[b].sum() == end[b] + 1
        assert torch.equal(text.sentence[b], text.tokens[b, end[b]])


@torch.no_grad()
def test_sentence_feature_equals_open_clip_encode_text():
    backbone = tiny_model().backbone
    clip = backbone.clip
    tokens = backbone.tokenize(["a person slices tortillas"])
    full = torch.zeros(1, clip.context_length, dtype=torch.long)
    full[:, :32] = tokens
    torch.testing.assert_close(backbone.encode_text(tokens).sentence, clip.encode_text(full), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_unicode_and_empty_strings_tokenize():
    backbone = tiny_model().backbone
    tokens = backbone.tokenize(["vidéo d'été 🎥 日本語"])
    assert tokens.shape == (1, 32)


@torch.no_grad()
def test_frames_normalised_and_encoded():
    model = tiny_model()
    frames = torch.full((3, 32, 32, 3), 128, dtype=torch.uint8)
    pixels = model.backbone.normalize_pixels(frames)
    assert pixels.shape == (3, 3, 32, 32)
    expected = (128 / 255 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    torch.testing.assert_close(pixels[0, :, 0, 0], expected)
    assert model.encode_frames(frames).shape == (3, 32)
