"""Reading one consistent generation of an index."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from glscl_index.errors import IndexCorruptError, repair_hint
from glscl_index.store import ann, ann_state
from glscl_index.store.catalog import GenerationCatalog
from glscl_index.store.manifest import Manifest, read_manifest, require_model
from glscl_index.store.schema import ARRAY_FIELDS, CatalogEntry, FileRows, OpenFile, StackedRows, UnitBatch
from glscl_index.store.shards import LAZY_COLUMNS, read_shard
from glscl_index.store.unit_keys import UnitKeys

OPEN_ATTEMPTS = 3


class IndexReader:
    """The manifest is read once; every later read uses that generation's (immutable) files.

    ``units`` holds the small columns in memory and reads features and concepts
    from the memory-mapped shards only for the rows that are indexed.
    """

    def __init__(
        self, root: Path, manifest: Manifest, units: UnitBatch, catalog: GenerationCatalog | None = None,
        stored_index: ann.SearchIndex | None = None, layout: SegmentLayout | None = None,
    ):
        self.root = root
        self.manifest = manifest
        self.units = units
        self._catalog = catalog or GenerationCatalog(root, manifest)
        self._stored_index = stored_index
        self._live_rows = (layout or segment_layout(manifest)).live_rows

    @cached_property
    def catalog(self) -> list[CatalogEntry]:
        """The generation's source files, by path, read on first use (a search reads only its hits' entries)."""
        return self._catalog.entries()

    def indexed_paths(self, video_ids: list[str]) -> dict[str, list[CatalogEntry]]:
        """The indexed catalog entries of each of ``video_ids`` that has some, by path (one query)."""
        return self._catalog.indexed_paths(video_ids)

    @classmethod
    def open(cls, root: str | Path, *, expected_fingerprint: str | None = None) -> IndexReader:
        root = Path(root)
        for attempt in range(OPEN_ATTEMPTS):
            manifest = read_manifest(root)
            if expected_fingerprint is not None:
                require_model(
                    root, manifest, expected_fingerprint, f"re-index with `glscl index PATH --index {root} --rebuild`"
                )
            try:
                units = load_units(root, manifest)
                layout = segment_layout(manifest)
                stored = _load_index(root, manifest, layout.dead)
                return cls(root, manifest, units, GenerationCatalog(root, manifest), stored, layout)
            except FileNotFoundError as exc:
                # A writer garbage-collected this generation's files after we read its manifest:
                # a newer generation is published, so read again.
                if attempt == OPEN_ATTEMPTS - 1:
                    name = Path(exc.filename).name if exc.filename else "?"
                    raise IndexCorruptError(
                        f"{root}: file {name} named by the manifest is missing{repair_hint(root)}"
                    ) from exc
        raise AssertionError("unreachable")

    def populate_maps(self) -> threading.Thread | None:
        """Map every page of the shards' Arrow copies, on a background thread, for a reader that answers many
        searches (a server, the Python API): a search then copies its candidates' features from the maps instead
        of reading them with pread (store/shards.MappedCopy.populate), each copy as soon as it is mapped.

        Skipped (None) when the copies are over half the machine's memory: mapping them all would push other
        files out of the page cache. The thread reads files the page cache lacks from disk."""
        files = {id(f): f for column in (self.units.frame_features, self.units.visual_concepts)
                 if isinstance(column, StackedRows) for f in column.open_files}
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if not files or 2 * sum(f.size for f in files.values()) > memory:
            return None
        thread = threading.Thread(target=_populate, args=(list(files.values()),), name="glscl-populate", daemon=True)
        thread.start()
        return thread

    @cached_property
    def key_index(self) -> ann.SearchIndex:
        """The approximate index over every segment's keys (ids are physical: ``search_keys`` maps them)."""
        if self._stored_index is not None:
            return self._stored_index
        # An index of format <= 3 has no codes: derive its keys and scan them in memory until the next commit.
        state = ann_state.AnnState(kind=ann_state.FLAT)
        keys = UnitKeys(self.units, self.manifest.dims)
        codes = [ann.encode(keys[s : s + ann.ADD_CHUNK], state, None) for s in range(0, len(keys), ann.ADD_CHUNK)]
        return ann.open_index(state, None, codes, self.manifest.dims.key_dim, np.zeros(0, np.int64))

    def search_keys(
        self, queries: np.ndarray, n: int, shortlist: int | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """queries float32 ``[Q, G]`` -> (scores ``[Q, n']``, rows ``[Q, n']`` into ``self.units``; -1 pads).

        ``shortlist`` and ``probes`` override the tuned number of units a PQ scan refines and of lists it visits
        (benchmarks sweep them)."""
        if len(self.units) == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        index = self.key_index
        scores, ids = index.search(queries, n, shortlist, probes)
        if self._stored_index is None:
            return scores, ids  # built over the live rows themselves
        return scores, np.where(ids >= 0, self._live_rows[np.maximum(ids, 0)], -1)


def _populate(files: list[OpenFile]) -> None:
    for file in files:
        file.populate()


@dataclass
class SegmentLayout:
    """Where each segment's rows sit among the generation's physical ids (segment base + row number)."""

    bases: np.ndarray  # int64 [S]: the first physical id of each segment
    dead: np.ndarray  # int64 [dead]: physical ids of tombstoned rows
    live_rows: np.ndarray  # int64 [physical]: a physical id's row among the live units, -1 when dead


def segment_layout(manifest: Manifest) -> SegmentLayout:
    sizes = np.array([s.rows for s in manifest.shards], np.int64)
    bases = np.concatenate([np.zeros(1, np.int64), np.cumsum(sizes)])
    dead = np.concatenate([
        np.zeros(0, np.int64),
        *(base + np.asarray(s.dead, np.int64) for base, s in zip(bases, manifest.shards, strict=False)),
    ])
    alive = np.ones(int(bases[-1]), bool)
    alive[dead] = False
    live_rows = np.where(alive, np.cumsum(alive) - 1, -1)
    return SegmentLayout(bases[:-1], dead, live_rows)


def load_units(root: Path, manifest: Manifest) -> UnitBatch:
    """The live units of a generation, in manifest shard order then row order (the FAISS row order)."""
    shards = [
        (read_shard(root / "shards" / ref.name, manifest.dims, manifest.fingerprint), ref) for ref in manifest.shards
    ]
    for batch, ref in shards:
        if len(batch) != ref.rows:
            raise IndexCorruptError(
                f"shard {ref.name} has {len(batch)} rows, the manifest says {ref.rows}{repair_hint(root)}"
            )
    empty = UnitBatch.empty(manifest.dims, manifest.fingerprint)
    lives = [np.setdiff1d(np.arange(ref.rows), np.asarray(ref.dead, dtype=np.int64)) for _, ref in shards]
    columns: dict[str, Any] = {}
    for name in ARRAY_FIELDS:
        if name in LAZY_COLUMNS and all(isinstance(getattr(b, name), StackedRows) for b, _ in shards):
            columns[name] = _stack_lazy([getattr(b, name) for b, _ in shards], lives, getattr(empty, name))
        else:
            loaded = [getattr(b, name)[live] for (b, _), live in zip(shards, lives, strict=False)]
            columns[name] = np.concatenate([getattr(empty, name), *loaded])
    return UnitBatch(**columns, fingerprint=manifest.fingerprint)


def _stack_lazy(columns: list[StackedRows], lives: list[np.ndarray], empty: np.ndarray) -> StackedRows:
    """One StackedRows over every shard's parts, selecting the live rows ``[N]``."""
    parts, rows, offset = [empty], [np.zeros(0, np.int64)], 0
    scales: list[np.ndarray | None] = [None]
    files: list[FileRows | None] = [None]
    for column, live in zip(columns, lives, strict=False):
        parts += column.parts
        scales += column.scales if column.scales is not None else [None] * len(column.parts)
        files += column.files if column.files is not None else [None] * len(column.parts)
        rows.append(offset + live)
        offset += len(column)
    return StackedRows(parts, np.concatenate(rows), scales=scales, files=files)


def _load_index(root: Path, manifest: Manifest, dead: np.ndarray) -> ann.SearchIndex | None:
    """Every segment's codes in one index; None for an index whose segments have no codes yet (format <= 3)."""
    if not manifest.shards or not manifest.coded:
        return None
    encoder = None
    if manifest.ann.kind == ann_state.PQSCAN:
        try:
            encoder = ann.read_encoder(root / manifest.ann.encoder)
        except ValueError as exc:
            raise IndexCorruptError(
                f"search encoder {manifest.ann.encoder} is damaged: {str(exc)[:200]}{repair_hint(root)}"
            ) from exc
    width = encoder.code_size if encoder is not None else 2 * manifest.dims.key_dim
    codes = []
    for segment in manifest.shards:
        try:
            part = ann.read_codes(root / "shards" / segment.codes)
        except ValueError as exc:  # numpy's word for a damaged .npy file
            raise IndexCorruptError(f"codes {segment.codes} are damaged: {exc}{repair_hint(root)}") from exc
        if part.ndim != 2 or part.shape != (segment.rows, width) or part.dtype != np.uint8:
            raise IndexCorruptError(
                f"codes {segment.codes} have shape {part.shape}, the manifest says ({segment.rows}, {width})"
                f"{repair_hint(root)}"
            )
        codes.append(part)
    return ann.open_index(manifest.ann, encoder, codes, manifest.dims.key_dim, dead)
