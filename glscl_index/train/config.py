"""Training configuration: the reference recipe of docs/architecture.md §2 as one typed, JSON-serialisable object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from glscl_index.model.losses import LossConfig
from glscl_index.train.augment import OFFICIAL_RANDAUGMENT


@dataclass
class TrainConfig:
    """Optimiser, schedule and loop settings (defaults: MSR-VTT, ViT-B/32 reference).

    Learning rates are per optimiser step; ``batch_size`` is the global batch
    (split across ranks under torchrun).
    """

    epochs: int = 5
    batch_size: int = 128
    lr_new: float = 1e-4  # temporal encoder, LIM
    lr_clip: float = 1e-7  # CLIP image and text towers, logit scale
    weight_decay: float = 0.2
    warmup_fraction: float = 0.1  # of all steps, linear from 0
    grad_clip: float = 1.0  # max global gradient norm
    seed: int = 0
    save_every_steps: int = 0  # 0 = only at the end of each epoch
    # Also validate every N steps (the official code evaluates every 150 and keeps the best); 0 = per epoch only.
    eval_every_steps: int = 0
    mixed_precision: bool = True  # on CUDA only; CPU always trains in fp32
    # Clip-consistent RandAugment of training frames (timm policy string, as the official loader); "" = off.
    augment: str = OFFICIAL_RANDAUGMENT
    # "cosine": warm-up, then a cosine over the remaining steps (1 -> 0); "official": the official code's
    # 0.5 (1 + cos(pi * step / total)) after warm-up, which starts below 1 where the warm-up ends.
    schedule: str = "cosine"
    # Parameters without weight decay: "bias-norm-embedding" (biases, norms, embeddings, queries, scalars)
    # or "bias" (the official code: its no-decay names match CLIP's biases only).
    no_decay: str = "bias-norm-embedding"
    # Clip at world_size x grad_clip, what the official all-gather backward amounts to on several GPUs.
    grad_clip_per_rank: bool = False
    # How training clips are decoded (SamplingConfig): "round"/"floor" frame positions, "ffmpeg"/"pil" resize.
    frame_positions: str = "round"
    resize: str = "ffmpeg"
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):
            self.loss = LossConfig(**self.loss)
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2 (InfoNCE needs negatives)")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("warmup_fraction must be in [0, 1)")
        if self.schedule not in ("cosine", "official"):
            raise ValueError(f"schedule must be 'cosine' or 'official', got {self.schedule!r}")
        if self.no_decay not in ("bias-norm-embedding", "bias"):
            raise ValueError(f"no_decay must be 'bias-norm-embedding' or 'bias', got {self.no_decay!r}")

    @property
    def freezes_clip(self) -> bool:
        """lr_clip 0 freezes the CLIP towers (no gradients computed for them)."""
        return self.lr_clip == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)


RECIPES = ("paper", "official")


def recipe(name: str, **overrides) -> TrainConfig:
    """A named preset, then ``overrides`` (TrainConfig fields).

    "paper": the paper's text (the defaults). "official": what the official code's
    ``train_msrvtt.sh`` run does: beta 0.02, its cosine, decay on all but biases, clipping at
    world size x 1.0, CLIP towers that do not move (its fp16 weights round 1e-7 updates
    away; here lr_clip 0 freezes them), truncated frame positions and PIL's bicubic resize.
    """
    if name == "paper":
        config = TrainConfig()
    elif name == "official":
        config = TrainConfig(
            lr_clip=0.0, schedule="official", no_decay="bias", grad_clip_per_rank=True, frame_positions="floor",
            resize="pil",
            loss=LossConfig(consistency_weight=0.02),
        )
    else:
        raise ValueError(f"unknown recipe {name!r}; use one of {', '.join(RECIPES)}")
    loss = overrides.pop("loss", None)
    config = replace(config, **overrides)
    return replace(config, loss=loss) if loss is not None else config
