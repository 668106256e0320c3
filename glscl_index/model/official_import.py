"""Import a checkpoint trained with the official GLSCL code into our format.

The official state dict holds ``clip.*`` (OpenAI CLIP layout, which is also
open_clip's ``CLIP`` layout), ``transformerClip.*`` (the temporal encoder,
CLIP-style residual blocks), ``frame_position_embeddings.*``,
``spatial_queries`` (the shared queries) and ``transformer_decoder_noun.*``
(the shared decoder, a ``torch.nn.TransformerDecoder``). With query and
decoder sharing on, the official model also carries parameters that never
reach a score; those are dropped. A checkpoint trained without sharing is
refused, never mapped onto shared queries. Anything else is an error naming
the keys. The official decoder attends to padded tokens and frames too, so an
imported model records ``lim_memory="unmasked"``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from glscl_index.errors import CheckpointError
from glscl_index.model.config import GLSCLConfig
from glscl_index.model.factory import architecture_config
from glscl_index.model.glscl import GLSCL

# Present in official checkpoints but unused when queries and decoder are shared.
UNUSED_PREFIXES = (
    "noun_queries",
    "transformer_decoder_spatial.",
    "decoder_layer_spatial.",
    "decoder_layer_noun.",
    "weight_fc.",
)
CLIP_BUFFERS = ("clip.input_resolution", "clip.context_length", "clip.vocab_size")

RENAMES = (
    ("clip.", "backbone.clip."),
    ("transformerClip.", "temporal.transformer."),
    ("frame_position_embeddings.", "temporal.position_embeddings."),
    ("spatial_queries", "lim.queries"),
    ("transformer_decoder_noun.", "lim.decoder."),
)


def read_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load an official ``pytorch_model.bin``-style file without unpickling arbitrary objects."""
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or truncated files
        raise CheckpointError(f"{path} is not a readable PyTorch state dict: {str(exc).splitlines()[0][:200]}") from exc
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in data.items()}


def infer_openai_clip_config(clip_state: dict[str, torch.Tensor]) -> dict:
    """open_clip model config of a ViT CLIP from its OpenAI-layout weights (shapes and key counts)."""
    try:
        vision_width = clip_state["visual.conv1.weight"].shape[0]
        patch = clip_state["visual.conv1.weight"].shape[-1]
        grid = round((clip_state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        text_width = clip_state["ln_final.weight"].shape[0]
    except KeyError as exc:
        raise CheckpointError(f"the clip.* weights are not a ViT CLIP in OpenAI layout (no {exc.args[0]})") from exc
    vision_layers = len({k.split(".")[3] for k in clip_state if k.startswith("visual.transformer.resblocks.")})
    text_layers = len({k.split(".")[2] for k in clip_state if k.startswith("transformer.resblocks.")})
    return {
        "embed_dim": int(clip_state["text_projection"].shape[1]),
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": int(patch * grid),
            "layers": vision_layers,
            "width": int(vision_width),
            "patch_size": int(patch),
            "head_width": 64,
        },
        "text_cfg": {
            "context_length": int(clip_state["positional_embedding"].shape[0]),
            "vocab_size": int(clip_state["token_embedding.weight"].shape[0]),
            "width": int(text_width),
            "heads": int(text_width // 64),
            "layers": text_layers,
        },
    }


def import_official_state_dict(state: dict[str, torch.Tensor], clip_model: str = "") -> GLSCL:
    """Official GLSCL state dict -> our trained ``GLSCL`` model with identical weights.

    ``clip_model`` (an open_clip name or JSON config) fixes the CLIP
    architecture; empty infers it from the tensor shapes as the official code
    does (heads = width / 64, the OpenAI ViT rule).
    """
    _refuse_unshared(state)
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED_PREFIXES) and k not in CLIP_BUFFERS}
    unknown = sorted(k for k in state if not k.startswith(tuple(old for old, _ in RENAMES)))
    if unknown:
        raise CheckpointError(f"unknown keys in the official checkpoint: {_names(unknown)}")
    clip_state = {k.removeprefix("clip."): v for k, v in state.items() if k.startswith("clip.")}
    if not clip_state:
        raise CheckpointError("the official checkpoint has no clip.* weights")
    if clip_model:
        name, clip_config = architecture_config(clip_model)
        clip_config["quick_gelu"] = True  # the official code runs OpenAI CLIP, a QuickGELU model
    else:
        name, clip_config = "ViT-openai", infer_openai_clip_config(clip_state)
    temporal_layers = len({k.split(".")[2] for k in state if k.startswith("transformerClip.resblocks.")})
    decoder_layers = len({k.split(".")[2] for k in state if k.startswith("transformer_decoder_noun.layers.")})
    if "spatial_queries" not in state or "frame_position_embeddings.weight" not in state:
        missing = [k for k in ("spatial_queries", "frame_position_embeddings.weight") if k not in state]
        raise CheckpointError(f"missing keys in the official checkpoint: {_names(missing)}")
    ffn_key = "transformer_decoder_noun.layers.0.linear1.weight"
    config = GLSCLConfig(
        clip_model=name,
        clip_config=clip_config,
        pretrained="official-glscl",
        trained=True,
        temporal_layers=temporal_layers,
        temporal_positions=int(state["frame_position_embeddings.weight"].shape[0]),
        num_queries=int(state["spatial_queries"].shape[0]),
        decoder_layers=decoder_layers,
        decoder_ffn=int(state[ffn_key].shape[0]) if ffn_key in state else 2048,
        lim_memory="unmasked",  # the official decoder is called without a memory mask
    )
    try:
        model = GLSCL(config)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot build the architecture of the official checkpoint: {exc}") from exc
    renamed = {_rename(k): v for k, v in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(renamed))
    if missing:
        raise CheckpointError(
            f"missing keys in the official checkpoint: {_names([_official_name(k) for k in missing])}"
        )
    wrong = sorted(k for k in renamed if renamed[k].shape != expected[k].shape)
    if wrong:
        raise CheckpointError(f"keys with unexpected shapes: {_names([_official_name(k) for k in wrong])}")
    model.load_state_dict({k: v.float() for k, v in renamed.items()}, strict=True)
    return model.eval()


def _refuse_unshared(state: dict[str, torch.Tensor]) -> None:
    """Refuse a checkpoint trained with ``--query_share 0`` or ``--cross_att_share 0``.

    Such a model scores text with its own queries or decoder, which glscl's one shared LIM cannot
    hold. The flags are not saved, but their traces are: a parameter that never got a gradient
    keeps its initial value. ``noun_queries`` start as ``torch.rand`` (every value in [0, 1)),
    and the unused decoder's LayerNorms start at weight 1 and bias 0 exactly.
    """
    noun = state.get("noun_queries")
    if noun is not None and (noun.min() < 0 or noun.max() >= 1):
        raise CheckpointError(
            "this official checkpoint was trained with --query_share 0 (its own queries for text); glscl supports "
            "only the shared queries of the paper's model (--query_share 1)"
        )
    norms = {k: v for k, v in state.items() if k.startswith("transformer_decoder_spatial.") and ".norm" in k}
    untouched = all(torch.all(v == (1.0 if k.endswith("weight") else 0.0)) for k, v in norms.items())
    if not untouched:
        raise CheckpointError(
            "this official checkpoint was trained with --cross_att_share 0 (its own decoder for video); glscl supports "
            "only the shared decoder of the paper's model (--cross_att_share 1)"
        )


def _rename(key: str) -> str:
    for old, new in RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _official_name(key: str) -> str:
    for old, new in RENAMES:
        if key.startswith(new):
            return old + key[len(new):]
    return key


def _names(keys: list[str], limit: int = 6) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
