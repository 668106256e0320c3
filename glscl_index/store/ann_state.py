"""The manifest's record of the candidate index and the choices made from sizes alone (no faiss import).

``glscl info`` and the manifest read this without importing faiss; store/ann.py does the work.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

ANN_CHOICES = ("auto", "flat", "pqscan")
FLAT, PQSCAN = "flat", "pqscan"
# Older FAISS types and what they mean now (an "ivfpq" index is coded again as pqscan at its next commit).
LEGACY_CHOICES = {"flat16": "flat", "ivf": "pqscan", "ivfpq": "pqscan", "hnsw": "auto"}
# float16 keys a flat scan reads per query: 256 MiB is ~29k trained ViT-B/32 units (G = 4608, ~30 ms on
# 2 cores) or ~262k zero-shot ones (G = 512); beyond, a PQ scan (store/ann.py).
FLAT_MAX_BYTES = 256 << 20
RETRAIN_GROWTH = 8  # the pqscan encoder is trained again when the collection grew this many times past its sample
RETUNE_GROWTH = 2  # the shortlist and the candidate count are measured again when the collection doubled or halved
# The tuner asks its sample for more than the target: the recall measured on TUNE_QUERIES queries of each kind,
# less two of its standard errors, must reach it (store/ann.recall_bound).
RECALL_TARGET = 0.99
TUNE_QUERIES = 100
TRUTH_K = 10
# Candidate counts the tuner tries: steps of 2^(1/4), so the count it takes is within 19% of the fewest that hold
# the target, not within 2x as with doubling counts: the rerank's cost is proportional to the count, and the
# recall of every count comes from one search.
CANDIDATE_LADDER = (
    200, 240, 280, 340, 400, 480, 560, 670, 800, 950, 1130, 1350, 1600, 1900, 2260, 2690, 3200, 4520, 6400, 9050,
    12800, 18100, 25600,
)
# The tuner's ladders change between versions: a state tuned by an older tuner is tuned again at the next commit.
# 3: a setting's search cost timed one query at a time (2: a batch's time per query; counts in steps of 2^(1/4) and
# the recall's lower bound since 2; 1: doubling counts, mean >= 0.995)
TUNER_VERSION = 3
# pqscan codes (store/ann.py): 8-bit codes of the keys' top AXES principal axes, and 4-bit scan codes of the first
# SCAN_AXES of them (two axes per 4-bit sub-quantizer: SCAN_AXES / 4 bytes, the part a reader holds in memory).
AXES = 512
SCAN_AXES = 256


def scan_dims(key_dim: int) -> int:
    """Projections the 4-bit scan codes cover for keys ``key_dim`` wide: an even count (two per sub-quantizer)."""
    return min(SCAN_AXES, AXES, key_dim) // 2 * 2  # keys are D (1 + K) >= 2 wide


def scan_bytes(key_dim: int, lists: int) -> int:
    """Bytes of one unit's scan code (the part of a pqscan code a reader holds in memory): its list number (as faiss
    writes it: the bytes that hold lists - 1), then two 4-bit sub-quantizer codes a byte."""
    list_bytes = math.ceil((max(1, lists) - 1).bit_length() / 8)
    return list_bytes + math.ceil(scan_dims(key_dim) / 4)


# Coarse lists of the pqscan encoder: the scan codes are residuals from the nearest list centre, so units of one
# tight cluster get distinct codes (a global 4-bit code gave them the same one; queries by example then needed a
# 4x larger shortlist at 1M units, docs/benchmarks.md). At least LIST_POINTS training keys per list.
MAX_LISTS = 1024
LIST_POINTS = 48


def lists_for(train_rows: int) -> int:
    """Coarse lists for an encoder trained on ``train_rows`` keys: a power of two, 1..MAX_LISTS."""
    fit = max(1, train_rows // LIST_POINTS)
    return min(MAX_LISTS, 1 << (fit.bit_length() - 1))


# A search visits lists / d of the lists for one d of these, the tuner's choice (1: every list, none is missed).
PROBE_DIVISORS = (1, 4, 16)


def probe_choices(lists: int) -> list[int]:
    """The numbers of lists a search may visit that the tuner tries, most first."""
    return sorted({max(1, lists // d) for d in PROBE_DIVISORS}, reverse=True)


# PQ-scan shortlists (units refined by their 8-bit codes) the tuner tries; beyond the last, every unit is scored.
SHORTLIST_LADDER = (1600, 3200, 6400, 12800, 25600, 51200, 102400)


@dataclass
class AnnState:
    """The manifest's record of the approximate index: which encoder the segments' codes are in, and its tuning."""

    kind: str = FLAT  # "flat" | "pqscan" (concrete; "ivfpq" in indexes written before pqscan, read as uncoded)
    tag: str = FLAT  # names the encoder in segment code files; changes when it is trained again
    encoder: str = ""  # the pqscan encoder file ("" for flat)
    trained_units: int = 0  # live units when the encoder was trained
    lists: int = 0  # coarse lists of the pqscan encoder (0: one trained before lists; coded again at the next commit)
    probes: int = 0  # lists a search visits (0: all)
    shortlist: int = 0  # units the PQ scan passes to the 8-bit refinement (pqscan)
    # candidates the rerank needs for the recall target (0: the search default; the live count or more: every
    # unit is scored, as no cheaper setting reached the target)
    candidates: int = 0
    # measured mean recall, among the candidates, of the exact GLSCL top 10 of text-like queries made from the
    # collection (store/tuning_queries.py): the agreement of the search with exhaustive scoring (-1: not measured)
    recall: float = -1.0
    tuned_units: int = 0  # live units when it was measured
    tune_queries: int = 0
    tuner: int = 1  # the TUNER_VERSION that measured it (states written before versions: 1)

    def to_dict(self) -> dict:
        return asdict(self)

    def candidates_for(self, live: int) -> int:
        """The tuned candidate count for a collection of ``live`` units: scaled with its growth since tuning, since the
        candidates needed to hold a top 10 grow with the collection (it is measured again when it doubled)."""
        return self._grown(self.candidates, live)

    def shortlist_for(self, live: int) -> int:
        """The tuned PQ-scan shortlist for ``live`` units, scaled like the candidates (0: not tuned)."""
        return self._grown(self.shortlist, live)

    def _grown(self, count: int, live: int) -> int:
        if not count or not self.tuned_units:
            return count
        return math.ceil(count * max(1.0, live / self.tuned_units))

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

    A pqscan index goes back to flat only below half the threshold, so a collection hovering around
    it is not coded again at every commit.
    """
    choice = resolve_choice(choice)
    if choice != "auto":
        return choice
    limit = FLAT_MAX_BYTES // 2 if current == PQSCAN else FLAT_MAX_BYTES
    return FLAT if num_units * key_dim * 2 <= limit else PQSCAN


def must_train(state: AnnState, kind: str) -> bool:
    """True when no key can be coded in ``state``'s encoder for ``kind``: another kind, or a pqscan encoder trained
    before coarse lists."""
    return kind != state.kind or (kind == PQSCAN and not state.lists)


def needs_training(state: AnnState, kind: str, num_units: int) -> bool:
    """True when the codes must be made with a new encoder: ``must_train``, or a PQ scan grown past its training."""
    return must_train(state, kind) or (kind == PQSCAN and num_units > RETRAIN_GROWTH * max(1, state.trained_units))


def needs_tuning(state: AnnState, num_units: int) -> bool:
    if num_units == 0:
        return False
    if state.recall < 0 or state.tuned_units == 0 or state.tuner < TUNER_VERSION:
        return True
    return num_units >= RETUNE_GROWTH * state.tuned_units or num_units * RETUNE_GROWTH <= state.tuned_units


