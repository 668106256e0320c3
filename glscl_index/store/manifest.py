"""The manifest: the one small JSON file that names a generation's files.

Publishing = write ``manifest.json.tmp``, fsync, ``os.replace`` onto
``manifest.json``, fsync the directory. Readers read it once, so they see one
generation whatever a writer does meanwhile. The previous manifest is kept as
``manifest.prev.json`` so garbage collection spares the files a reader that
opened it just before may still load.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from glscl_index.atomic import atomic_write_bytes
from glscl_index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IndexPathError, repair_hint
from glscl_index.store.ann_state import AnnState
from glscl_index.store.schema import IndexDims

# 1: Parquet shards with a global-key column, FAISS built on open; 2: + Arrow copies of the shards and a
# persisted FAISS file; 3: keys derived from the rows, not stored, and scaled differently ([m ; U_flat],
# model/keys.py); 4: segments: each shard has its keys' codes (store/ann.py) instead of one FAISS file per
# generation, the catalog is a base plus deltas, features may be int8; 5: the catalog is an SQLite database
# with versioned rows (store/catalog.py). Older indexes are still read: their keys are derived and searched in
# memory until the next commit writes the missing codes, and the next commit writes their catalog's database.
FORMAT_VERSION = 5
MANIFEST = "manifest.json"
PREVIOUS = "manifest.prev.json"


@dataclass
class ShardRef:
    name: str  # file under shards/
    rows: int
    dead: list[int] = field(default_factory=list)  # row numbers no longer live (tombstones)
    codes: str = ""  # its keys' codes under shards/ (store/ann.py); "" = none yet (an index of format <= 3)
    copy: bool = True  # written with an Arrow copy (store/shards.py); small segments are not (store/merge_policy.py)


@dataclass
class Manifest:
    generation: int
    fingerprint: str
    model_config: dict
    dims: IndexDims
    faiss_type: str
    shards: list[ShardRef]
    catalog: str  # file name of the catalog's database (format 4: of its base; "" before the first commit)
    catalog_deltas: list[str] = field(default_factory=list)  # format 4: changes since the base, oldest first
    catalog_delta_rows: int = 0
    ann: AnnState = field(default_factory=AnnState)  # the encoder the shards' codes are in and its tuning
    updated_at: float = 0.0
    format_version: int = FORMAT_VERSION
    # The folders and files the index keeps current (absolute, as given): `glscl index` with no paths
    # re-scans them, and only entries under a root that was scanned and found can be removed.
    roots: list[str] = field(default_factory=list)

    @property
    def coded(self) -> bool:
        """Every shard has codes in a known encoder (else a reader derives keys: an index of format <= 3, or one coded
        as "ivfpq" before pqscan replaced it; the next commit codes it again)."""
        return all(s.codes for s in self.shards) and (
            self.ann.kind == "flat" or (self.ann.kind == "pqscan" and bool(self.ann.encoder))
        )

    @property
    def live_units(self) -> int:
        return sum(s.rows - len(s.dead) for s in self.shards)

    def files(self) -> set[str]:
        names = {f"shards/{s.name}" for s in self.shards}
        # A Parquet shard may have its memory-mappable Arrow copy (see store/shards.py).
        names |= {f"shards/{Path(s.name).with_suffix('.arrow')}" for s in self.shards if s.copy}
        names |= {f"shards/{s.codes}" for s in self.shards if s.codes}
        return names | {name for name in (self.catalog, *self.catalog_deltas, self.ann.encoder) if name}

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": self.format_version,
                "generation": self.generation,
                "fingerprint": self.fingerprint,
                "model_config": self.model_config,
                "dims": self.dims.to_dict(),
                "faiss_type": self.faiss_type,
                "shards": [
                    {"name": s.name, "rows": s.rows, "dead": s.dead, "codes": s.codes, "copy": s.copy}
                    for s in self.shards
                ],
                "catalog": self.catalog,
                "catalog_deltas": self.catalog_deltas,
                "catalog_delta_rows": self.catalog_delta_rows,
                "ann": self.ann.to_dict(),
                "updated_at": self.updated_at,
                "roots": self.roots,
            }
        )

    @classmethod
    def from_json(cls, text: str, source: str) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format_version", 0) > FORMAT_VERSION:
                raise IndexCorruptError(f"{source} was written by a newer glscl; upgrade glscl")
            return cls(
                generation=int(data["generation"]),
                fingerprint=str(data["fingerprint"]),
                model_config=dict(data["model_config"]),
                dims=IndexDims.from_dict(data["dims"]),
                faiss_type=str(data["faiss_type"]),
                shards=[
                    ShardRef(
                        str(s["name"]), int(s["rows"]), [int(r) for r in s["dead"]], str(s.get("codes", "")),
                        bool(s.get("copy", True)),
                    )
                    for s in data["shards"]
                ],
                catalog=str(data["catalog"]),
                catalog_deltas=[str(d) for d in data.get("catalog_deltas", [])],
                catalog_delta_rows=int(data.get("catalog_delta_rows", 0)),
                ann=AnnState.from_dict(data["ann"]) if "ann" in data else AnnState(kind=""),
                updated_at=float(data.get("updated_at", 0.0)),
                format_version=int(data["format_version"]),
                roots=[str(r) for r in data.get("roots", [])],
            )
        except IndexCorruptError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IndexCorruptError(
                f"{source} is damaged ({type(exc).__name__}: {exc}){repair_hint(Path(source).parent)}"
            ) from exc


def read_manifest(root: str | Path) -> Manifest:
    path = Path(root) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IndexNotFoundError(f"no index at {root}; run `glscl index PATH --index {root}` first") from None
    except NotADirectoryError:
        raise IndexPathError(f"--index {root} is a file, not an index folder; pass a folder with --index") from None
    except OSError as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc.strerror}{repair_hint(root)}") from exc
    return Manifest.from_json(text, str(path))


def read_previous_manifest(root: Path) -> Manifest | None:
    try:
        return Manifest.from_json((root / PREVIOUS).read_text(encoding="utf-8"), str(root / PREVIOUS))
    except (OSError, IndexCorruptError):
        return None


def require_model(root: Path | str, manifest: Manifest, fingerprint: str, advice: str, model: str = "") -> None:
    """Refuse a model other than the one that built the index at ``root``: an IndexMismatchError ending in ``advice``.

    ``model`` describes the refused model in the message (e.g. "ViT-B-32, trained").
    """
    if manifest.fingerprint == fingerprint:
        return
    asked = f"{fingerprint} ({model})" if model else fingerprint
    raise IndexMismatchError(
        f"{root} was built with model {manifest.fingerprint} ({describe_model(manifest.model_config)}), "
        f"not with the model asked for, {asked}; {advice}"
    )


def glscl_record(model_config: dict) -> dict:
    """The GLSCL config a manifest's ``model_config`` records ({} when it records none)."""
    glscl = model_config.get("glscl", {}) if isinstance(model_config, dict) else {}
    return glscl if isinstance(glscl, dict) else {}


def recorded_mode(model_config: dict) -> str:
    """"trained" or "zero-shot", as the manifest records the model."""
    return "trained" if glscl_record(model_config).get("trained") else "zero-shot"


def describe_model(model_config: dict) -> str:
    """"ViT-B-32, trained": a manifest's model in a few words."""
    return f"{glscl_record(model_config).get('clip_model', '?')}, {recorded_mode(model_config)}"


def publish_manifest(root: Path, manifest: Manifest, previous: Manifest | None) -> None:
    manifest.updated_at = time.time()
    if previous is not None:
        atomic_write_bytes(root / PREVIOUS, previous.to_json().encode())
    atomic_write_bytes(root / MANIFEST, manifest.to_json().encode())
