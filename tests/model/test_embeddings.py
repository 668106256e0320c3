"""Row selection, concatenation and float32 conversion of the embedding batches."""

import torch

from glscl_index.model.glscl import TextEmbedding, VideoEmbedding


def test_rows_and_concat_act_on_every_field_and_keep_none():
    text = TextEmbedding(
        sentence=torch.arange(12.0).reshape(4, 3), tokens=torch.zeros(4, 2, 3), mask=torch.ones(4, 2, dtype=torch.bool),
        concepts=torch.arange(24.0).reshape(4, 2, 3),
    )
    part = text.rows(slice(1, 3))
    assert torch.equal(part.sentence, text.sentence[1:3]) and torch.equal(part.concepts, text.concepts[1:3])
    assert part.mask.shape == (2, 2) and part.tokens.shape == (2, 2, 3)
    again = TextEmbedding.concat([text.rows(slice(0, 1)), text.rows(slice(1, 4))])
    assert all(
        torch.equal(getattr(again, name), getattr(text, name)) for name in ("sentence", "tokens", "mask", "concepts")
    )

    video = VideoEmbedding(
        frames=torch.ones(2, 3, 4, dtype=torch.bfloat16), mask=torch.ones(2, 3, dtype=torch.bool), concepts=None
    )
    joined = VideoEmbedding.concat([video, video.rows(torch.tensor([1]))]).float32()
    assert joined.frames.dtype == torch.float32 and joined.frames.shape == (3, 3, 4)
    assert joined.mask.dtype == torch.bool and joined.concepts is None
