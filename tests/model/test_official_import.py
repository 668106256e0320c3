"""Import of a state dict laid out like the official GLSCL code's."""

import pytest
import torch
from open_clip.transformer import QuickGELU, Transformer

from glscl_index.errors import CheckpointError
from glscl_index.model.official_import import import_official_state_dict
from tests.tiny import TINY_ARCH, tiny_model


def official_layout_state(seed=21):
    """A synthetic official checkpoint: our random tiny model's tensors under the official names, plus extras."""
    model = tiny_model(trained=True, seed=seed)
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(std=0.1)
    state = {}
    for key, value in model.state_dict().items():
        key = key.replace("backbone.clip.", "clip.").replace("temporal.transformer.", "transformerClip.")
        key = key.replace("temporal.position_embeddings.", "frame_position_embeddings.")
        key = key.replace("lim.queries", "spatial_queries").replace("lim.decoder.", "transformer_decoder_noun.")
        state[key] = value.clone()
    # Unused with --query_share 1 / --cross_att_share 1: they keep their initial values.
    state["noun_queries"] = torch.rand(8, 32)
    state["transformer_decoder_spatial.layers.0.linear1.weight"] = torch.rand(64, 32)
    state["transformer_decoder_spatial.layers.0.norm1.weight"] = torch.ones(32)
    state["transformer_decoder_spatial.layers.0.norm1.bias"] = torch.zeros(32)
    state["weight_fc.0.weight"] = torch.rand(128, 64)
    return state


def reference_scores(state, frames, mask, tokens_feat, tokens_mask, sentence, blank=None):
    """Independent GLSCL forward from the raw official tensors (seq-first decoder, as the official code).

    With ``blank`` (the CLIP feature of an all-zero frame) it follows the official code's padding: padded
    frames are blank frames run through the temporal encoder (their keys masked), and the decoder reads
    every frame and every token position with no memory mask. Without it, only real positions are read.
    """
    D = 32
    te = Transformer(width=D, layers=4, heads=1, act_layer=QuickGELU)
    te.load_state_dict(
        {k.removeprefix("transformerClip."): v for k, v in state.items() if k.startswith("transformerClip.")}
    )
    layer = torch.nn.TransformerDecoderLayer(d_model=D, nhead=8, dim_feedforward=64)
    decoder = torch.nn.TransformerDecoder(layer, num_layers=3).eval()
    decoder.load_state_dict(
        {
            k.removeprefix("transformer_decoder_noun."): v
            for k, v in state.items()
            if k.startswith("transformer_decoder_noun.")
        }
    )
    positions = state["frame_position_embeddings.weight"][: frames.shape[1]]
    queries = state["spatial_queries"]
    scores = torch.zeros(sentence.shape[0], frames.shape[0])
    for v in range(frames.shape[0]):
        n = int(mask[v].sum())
        if blank is None:
            f = frames[v : v + 1, :n]
            video = f + te(f + positions[:n])
            memory = video
        else:
            T = frames.shape[1]
            f = torch.where(mask[v].unsqueeze(-1), frames[v], blank).unsqueeze(0)
            keys = torch.zeros(T, T).masked_fill(~mask[v].unsqueeze(0), -1e6)  # the official additive key mask
            memory = f + te(f + positions[:T], attn_mask=keys)
            video = memory[:, :n]
        U = decoder(queries.unsqueeze(1), memory.transpose(0, 1)).squeeze(1)
        U = U / U.norm(dim=-1, keepdim=True)
        for q in range(sentence.shape[0]):
            L = int(tokens_mask[q].sum()) if blank is None else tokens_feat.shape[1]
            W = decoder(queries.unsqueeze(1), tokens_feat[q : q + 1, :L].transpose(0, 1)).squeeze(1)
            W = W / W.norm(dim=-1, keepdim=True)
            e = sentence[q]
            logits = (video[0] @ e) / 3.0
            a = torch.softmax(logits, dim=0)
            g = (a.unsqueeze(1) * video[0]).sum(0)
            sim1 = float(e @ g) / (float(e.norm()) * float(g.norm()))
            sim2 = float((W * U).sum()) / queries.shape[0]
            scores[q, v] = sim1 + 0.5 * sim2
    return scores


@torch.no_grad()
def test_imported_model_scores_equal_the_official_forward_padding_included():
    state = official_layout_state()
    model = import_official_state_dict(state, clip_model=TINY_ARCH)
    assert model.config.trained and model.config.num_queries == 8 and model.config.decoder_layers == 3
    assert model.config.lim_memory == "unmasked"
    frames = torch.randn(3, 5, 32)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    text = model.embed_text(model.backbone.tokenize(["a cat jumps", "someone is cooking rice in a pan"]))
    ours = model.score(text, model.embed_video(frames, mask)).total
    image_size = model.backbone.clip.visual.image_size
    blank = model.backbone.clip.encode_image(torch.zeros(1, 3, *image_size))[0]
    official = reference_scores(state, frames, mask, text.tokens, text.mask, text.sentence, blank=blank)
    torch.testing.assert_close(ours, official, atol=1e-4, rtol=1e-4)
    # Padding matters: reading only the real positions gives other scores.
    masked = reference_scores(state, frames, mask, text.tokens, text.mask, text.sentence)
    assert not torch.allclose(ours, masked, atol=1e-3)
    # The CLIP towers are the official clip.* tensors.
    assert torch.equal(model.backbone.clip.visual.conv1.weight, state["clip.visual.conv1.weight"])


@torch.no_grad()
def test_masked_lim_reads_only_real_frames_and_tokens():
    state = official_layout_state()
    model = import_official_state_dict(state, clip_model=TINY_ARCH)
    model.config.lim_memory = "masked"
    frames = torch.randn(3, 5, 32)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    text = model.embed_text(model.backbone.tokenize(["a cat jumps", "someone is cooking rice in a pan"]))
    ours = model.score(text, model.embed_video(frames, mask)).total
    expected = reference_scores(state, frames, mask, text.tokens, text.mask, text.sentence)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=1e-4)


def test_unshared_queries_or_decoder_are_refused_not_mapped():
    state = official_layout_state()
    state["noun_queries"] = state["noun_queries"] - 0.5  # trained: no longer torch.rand's [0, 1)
    with pytest.raises(CheckpointError, match="query_share 0"):
        import_official_state_dict(state, clip_model=TINY_ARCH)
    state = official_layout_state()
    state["transformer_decoder_spatial.layers.0.norm1.weight"] = torch.full((32,), 0.97)
    with pytest.raises(CheckpointError, match="cross_att_share 0"):
        import_official_state_dict(state, clip_model=TINY_ARCH)


def test_unknown_keys_are_named():
    state = official_layout_state()
    state["mystery_head.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError, match="mystery_head.weight"):
        import_official_state_dict(state, clip_model=TINY_ARCH)


def test_missing_keys_are_named():
    state = official_layout_state()
    del state["transformer_decoder_noun.layers.2.norm3.bias"]
    with pytest.raises(CheckpointError, match=r"transformer_decoder_noun.layers.2.norm3.bias"):
        import_official_state_dict(state, clip_model=TINY_ARCH)
    state = official_layout_state()
    del state["spatial_queries"]
    with pytest.raises(CheckpointError, match="spatial_queries"):
        import_official_state_dict(state, clip_model=TINY_ARCH)


def test_cli_import_official(tmp_path):
    from typer.testing import CliRunner

    from cli.app import app

    state = official_layout_state()
    torch.save(state, tmp_path / "pytorch_model.bin")
    result = CliRunner().invoke(
        app,
        [
            "checkpoint",
            "import-official",
            str(tmp_path / "pytorch_model.bin"),
            str(tmp_path / "ck"),
            "--model",
            TINY_ARCH,
        ],
    )
    assert result.exit_code == 0, result.output
    info = CliRunner().invoke(app, ["info", "--checkpoint", str(tmp_path / "ck"), "--json"])
    assert '"mode": "trained"' in info.output
