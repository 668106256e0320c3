"""What an index holds, read from its manifest and catalog only (no model, no torch, no FAISS).

``glscl info`` shows this in well under a second on any index size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store.manifest import glscl_record, read_manifest, recorded_mode
from glscl_index.store.schema import CatalogEntry
from glscl_index.store.shards import read_catalog


@dataclass
class FailedFile:
    path: str
    reason: str


@dataclass
class IndexStats:
    root: str
    generation: int
    fingerprint: str
    model: dict  # architecture, source, mode, embed_dim, num_queries, num_frames, max_words, score
    faiss_type: str
    updated_at: float  # unix seconds of the last commit
    roots: list[str]
    units: int  # live units (videos up to a minute are one unit, longer ones one per segment)
    videos: int  # files indexed (a copy of the same content counts once per path)
    failed_files: int
    offline_files: int  # kept from a root that was missing at the last run
    failures: list[FailedFile] = field(default_factory=list)

    def to_dict(self, failures: bool = False) -> dict:
        document = {
            "index": self.root, "generation": self.generation, **self.model, "fingerprint": self.fingerprint,
            "faiss_type": self.faiss_type, "updated_at": self.updated_at, "roots": self.roots,
            "units": self.units, "videos": self.videos, "failed_files": self.failed_files,
            "offline_files": self.offline_files,
        }
        if failures:
            document["failures"] = [{"path": f.path, "reason": f.reason} for f in self.failures]
        return document


def index_stats(root: str | Path) -> IndexStats:
    """Counts and the model of the committed generation at ``root`` (IndexNotFoundError when there is none)."""
    root = Path(root)
    manifest = read_manifest(root)
    entries = _catalog(root, manifest.catalog)
    failed = sorted((e for e in entries if e.status == "failed"), key=lambda e: e.path)
    return IndexStats(
        root=str(root),
        generation=manifest.generation,
        fingerprint=manifest.fingerprint,
        model=describe_model(manifest.model_config, manifest.dims.dim, manifest.dims.concepts, manifest.dims.frames),
        faiss_type=manifest.faiss_type,
        updated_at=manifest.updated_at,
        roots=list(manifest.roots),
        units=manifest.live_units,
        videos=sum(e.status == "indexed" for e in entries),
        failed_files=len(failed),
        offline_files=sum(e.offline for e in entries),
        failures=[FailedFile(e.path, e.error) for e in failed],
    )


def describe_model(model_config: dict, embed_dim: int, concepts: int, frames: int) -> dict:
    """The manifest's record of a model, in the terms ``glscl info`` shows for a loaded one."""
    glscl = glscl_record(model_config)
    source = model_config.get("source", {}) if isinstance(model_config, dict) else {}
    trained = bool(glscl.get("trained"))
    return {
        "architecture": glscl.get("clip_model", "?"),
        "source": source.get("checkpoint") or source.get("pretrained") or "random weights",
        "mode": recorded_mode(model_config),
        "random_weights": bool(glscl.get("random_weights", False)),
        "embed_dim": embed_dim,
        "num_queries": concepts,
        "num_frames": frames,
        "max_words": glscl.get("max_words"),
        "score": f"sim1 + {glscl.get('local_weight', 0.5):g} * sim2" if trained
        else "sim1 (zero-shot: no trained GLSCL modules)",
    }


def _catalog(root: Path, name: str) -> list[CatalogEntry]:
    if not name:
        return []
    try:
        return read_catalog(root / name)
    except FileNotFoundError:
        raise IndexCorruptError(f"the catalog {name} of {root} is missing{repair_hint(root)}") from None
