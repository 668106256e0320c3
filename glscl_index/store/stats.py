"""What an index holds, read from its manifest and catalog only (no model, no torch, no FAISS).

``glscl info`` shows this in well under a second on any index size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from glscl_index.store.ann_state import PQSCAN, AnnState, scan_bytes
from glscl_index.store.catalog import CatalogCounts, GenerationCatalog, missing_catalog
from glscl_index.store.manifest import MANIFEST, Manifest, glscl_record, read_manifest, recorded_mode


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
    faiss_type: str  # what was asked for: auto, flat or pqscan
    # what the candidates come from now: "flat", "pqscan (P of L lists, shortlist N)", or "exhaustive (...)" where
    # the tuner found no candidate setting that holds the exact top 10, so the search scores every unit
    search_index: str
    # measured share of the exact GLSCL top 10 of the tuner's queries among the candidates (None: not measured yet)
    recall: float | None
    recall_measured_at: int  # live units when it was measured
    candidates: int  # candidates reranked per query by default
    segments: int
    disk_bytes: int  # every file of this generation
    memory_bytes: int  # what a reader loads into memory for the candidates (codes, encoder, small segments' rows)
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
            "faiss_type": self.faiss_type, "search_index": self.search_index, "recall": self.recall,
            "recall_measured_at": self.recall_measured_at, "candidates": self.candidates, "segments": self.segments,
            "updated_at": self.updated_at, "roots": self.roots,
            "units": self.units, "videos": self.videos, "failed_files": self.failed_files,
            "offline_files": self.offline_files, "disk_bytes": self.disk_bytes,
            "disk_kb_per_unit": _per_unit_kb(self.disk_bytes, self.units), "memory_bytes": self.memory_bytes,
            "memory_kb_per_unit": _per_unit_kb(self.memory_bytes, self.units),
        }
        if failures:
            document["failures"] = [{"path": f.path, "reason": f.reason} for f in self.failures]
        return document


def index_stats(root: str | Path) -> IndexStats:
    """Counts and the model of the committed generation at ``root`` (IndexNotFoundError when there is none)."""
    root = Path(root)
    manifest = read_manifest(root)
    counts = _catalog_counts(root, manifest)
    state = manifest.ann
    searched = state.kind if state.kind == PQSCAN else "flat"
    sizes = _sizes(root, manifest)
    return IndexStats(
        root=str(root),
        generation=manifest.generation,
        fingerprint=manifest.fingerprint,
        model=describe_model(manifest.model_config, manifest.dims.dim, manifest.dims.concepts, manifest.dims.frames),
        faiss_type=manifest.faiss_type,
        search_index=_search_index(state, searched, manifest.live_units),
        recall=state.recall if state.recall >= 0 else None,
        recall_measured_at=state.tuned_units,
        candidates=max(200, state.candidates_for(manifest.live_units)),
        segments=len(manifest.shards),
        disk_bytes=sum(sizes.values()) + _size(root / MANIFEST),
        memory_bytes=_reader_memory(manifest, sizes),
        updated_at=manifest.updated_at,
        roots=list(manifest.roots),
        units=manifest.live_units,
        videos=counts.indexed,
        failed_files=len(counts.failed),
        offline_files=counts.offline,
        failures=[FailedFile(e.path, e.error) for e in counts.failed],
    )


def _search_index(state: AnnState, searched: str, live: int) -> str:
    if state.candidates and state.candidates_for(live) >= live:
        return "exhaustive (every unit scored: no cheaper candidate setting held the exact top 10)"
    if searched != PQSCAN:
        return "flat"
    lists = f"{state.probes or state.lists} of {state.lists} lists, " if state.lists else ""
    return f"pqscan ({lists}shortlist {state.shortlist_for(live)})"


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


def _catalog_counts(root: Path, manifest: Manifest) -> CatalogCounts:
    try:
        catalog = GenerationCatalog(root, manifest)
    except FileNotFoundError as exc:
        raise missing_catalog(root, manifest, exc) from None
    try:
        return catalog.counts()
    finally:
        catalog.close()


def _sizes(root: Path, manifest: Manifest) -> dict[str, int]:
    """Bytes of each file the generation names (one stat each; a missing file counts 0: `glscl check` reports it)."""
    return {name: _size(root / name) for name in manifest.files()}


def _reader_memory(manifest: Manifest, sizes: dict[str, int]) -> int:
    """Bytes a reader loads for the candidates: the encoder, the flat codes whole or the pqscan codes' scan part
    (their 8-bit part is memory-mapped, like the shards; the catalog is read on demand), the features' float16
    scales (one per frame and concept vector, held in memory so that reading a candidate touches no map), and the
    int8 features of the small segments written without an Arrow copy (store/merge_policy.py)."""
    rows = sum(s.rows for s in manifest.shards)
    codes = sum(size for name, size in sizes.items() if name.endswith(".codes.npy"))
    if manifest.ann.kind == PQSCAN:
        codes = rows * scan_bytes(manifest.dims.key_dim, manifest.ann.lists)
    vectors = manifest.dims.frames + manifest.dims.concepts
    scales = rows * vectors * 2
    held = sum(s.rows for s in manifest.shards if not s.copy) * vectors * manifest.dims.dim
    return codes + scales + held + sizes.get(manifest.ann.encoder, 0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _per_unit_kb(total: int, units: int) -> float:
    return round(total / units / 1000, 2) if units else 0.0
