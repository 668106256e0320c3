"""Training configuration: the reference recipe of DESIGN.md §2 as one typed, JSON-serialisable object."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from glscl_index.model.losses import LossConfig


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
    mixed_precision: bool = True  # on CUDA only; CPU always trains in fp32
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):
            self.loss = LossConfig(**self.loss)
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2 (InfoNCE needs negatives)")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("warmup_fraction must be in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)
