"""The manifest's record of the candidate index and the choices made from sizes alone (no faiss import).

``glscl info`` and the manifest read this without importing faiss; store/ann.py does the work.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ANN_CHOICES = ("auto", "flat", "ivfpq")
FLAT, IVFPQ = "flat", "ivfpq"
# Older manifests' FAISS types and what they mean now.
LEGACY_CHOICES = {"flat16": "flat", "ivf": "ivfpq", "hnsw": "auto"}
# float16 keys a flat scan reads per query: 256 MiB is ~29k trained ViT-B/32 units (G = 4608, ~30 ms on
# 2 cores) or ~262k zero-shot ones (G = 512); beyond, IVF-PQ.
FLAT_MAX_BYTES = 256 << 20
RETRAIN_GROWTH = 8  # the IVF-PQ encoder is trained again when the collection grew this many times past its sample
RETUNE_GROWTH = 2  # nprobe and the candidate count are measured again when the collection doubled or halved
RECALL_TARGET = 0.99
# The tuner asks its sample for more than the target: 100 queries' 1,000 neighbours measure recall to about
# +-0.3%, and the collection grows between two measurements.
TUNE_TARGET = 0.995
TUNE_QUERIES = 100
TRUTH_K = 10
CANDIDATE_LADDER = (200, 400, 800, 1600, 3200, 6400, 12800, 25600)

@dataclass
class AnnState:
    """The manifest's record of the approximate index: which encoder the segments' codes are in, and its tuning."""

    kind: str = FLAT  # "flat" | "ivfpq" (concrete)
    tag: str = FLAT  # names the encoder in segment code files; changes when it is trained again
    encoder: str = ""  # trained, empty IVF-PQ index file ("" for flat)
    trained_units: int = 0  # live units when the encoder was trained
    nprobe: int = 0  # inverted lists visited per query (IVF-PQ)
    # candidates the rerank needs for the recall target (0: the search default; the live count or more: every
    # unit is scored, as no cheaper setting reached the target)
    candidates: int = 0
    # measured mean recall, among the candidates, of the exact GLSCL top 10 of text-like queries made from the
    # collection (store/tuning_queries.py): the agreement of the search with exhaustive scoring (-1: not measured)
    recall: float = -1.0
    tuned_units: int = 0  # live units when it was measured
    tune_queries: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def candidates_for(self, live: int) -> int:
        """The tuned candidate count for a collection of ``live`` units: scaled with its growth since tuning, since the
        candidates needed to hold a top 10 grow with the collection (it is measured again when it doubled)."""
        if not self.candidates or not self.tuned_units:
            return self.candidates
        return math.ceil(self.candidates * max(1.0, live / self.tuned_units))

    @classmethod
    def from_dict(cls, data: dict) -> AnnState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def resolve_choice(requested: str) -> str:
    """A ``--faiss`` value -> one of ANN_CHOICES (older names map to their current meaning); ValueError if unknown."""
    choice = LEGACY_CHOICES.get(requested, requested)
    if choice not in ANN_CHOICES:
        raise ValueError(f"unknown FAISS index type {requested!r}; use one of {', '.join(ANN_CHOICES)}")
    return choice


def wanted_kind(choice: str, num_units: int, key_dim: int, current: str = "") -> str:
    """The concrete kind for ``num_units`` keys of width ``key_dim`` under ``choice`` (auto: flat while small).

    An IVF-PQ index goes back to flat only below half the threshold, so a collection hovering around
    it is not coded again at every commit.
    """
    choice = resolve_choice(choice)
    if choice != "auto":
        return choice
    limit = FLAT_MAX_BYTES // 2 if current == IVFPQ else FLAT_MAX_BYTES
    return FLAT if num_units * key_dim * 2 <= limit else IVFPQ


def needs_training(state: AnnState, kind: str, num_units: int) -> bool:
    """True when the codes must be made with a new encoder: another kind, or IVF-PQ grown past its training."""
    if kind != state.kind:
        return True
    return kind == IVFPQ and num_units > RETRAIN_GROWTH * max(1, state.trained_units)


def needs_tuning(state: AnnState, num_units: int) -> bool:
    if num_units == 0:
        return False
    if state.recall < 0 or state.tuned_units == 0:
        return True
    return num_units >= RETUNE_GROWTH * state.tuned_units or num_units * RETUNE_GROWTH <= state.tuned_units


