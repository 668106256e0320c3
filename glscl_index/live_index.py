"""An index kept open with its model, following the generations a scheduled `glscl index` commits.

``open_index(path).search("a dog", k=10)`` is the Python API; `glscl serve` holds one ``LiveIndex`` for
its whole life. The model is loaded once. When ``manifest.json`` is replaced (a commit), the next
``searcher()`` call (at most every ``check_every_s`` seconds) opens the new generation with the same
model and swaps one reference: a search that already holds the old ``Searcher`` finishes on it (its
files are kept until the commit after next, docs/storage.md).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glscl_index.store.manifest import MANIFEST, read_manifest

if TYPE_CHECKING:  # torch is imported when the first generation is opened, not by `import glscl_index`
    from glscl_index.search import Hit, QueryResult, Searcher


@dataclass
class Generation:
    """One opened generation: its searcher and the stamp of the manifest it was opened from."""

    searcher: Searcher
    manifest_stamp: tuple[int, int, int]  # (inode, mtime ns, size) of the manifest.json it was opened from

    @property
    def generation(self) -> int:
        return self.searcher.reader.manifest.generation

    def video_paths(self, video_id: str) -> list[str]:
        """The indexed paths of a video, sorted ([] for an id the generation does not hold)."""
        return [e.path for e in self.searcher.reader.indexed_paths([video_id]).get(video_id, [])]


class LiveIndex:
    """The current generation of the index at ``root``, searched with the model that built it."""

    def __init__(
        self, root: str | Path, checkpoint: str | None = None, clip_model: str | None = None,
        pretrained: str | None = None, device: str = "auto", check_every_s: float = 2.0,
    ):
        self.root = Path(root)
        self.check_every_s = check_every_s
        self._model_options = (checkpoint, clip_model, pretrained, device)
        self._current: Generation | None = None
        self._checked_at = 0.0
        self._reload_lock = threading.Lock()

    @classmethod
    def from_searcher(cls, searcher: Searcher, check_every_s: float = 2.0) -> LiveIndex:
        """A live index that starts from an opened searcher (its model is kept for later generations)."""
        live = cls(searcher.reader.root, check_every_s=check_every_s)
        searcher.reader.populate_maps()
        live._current = Generation(searcher, _stamp(live.root))
        live._checked_at = time.monotonic()
        return live

    def current(self) -> Generation:
        """The newest committed generation (checked at most every ``check_every_s`` seconds).

        The first call loads the model (seconds); a reload reads only the new generation's files.
        Raises IndexNotFoundError, IndexCorruptError, IndexMismatchError (the index was rebuilt
        with another model) or CheckpointError.
        """
        current = self._current
        if current is not None and time.monotonic() - self._checked_at < self.check_every_s:
            return current
        if current is not None and not self._reload_lock.acquire(blocking=False):
            return current  # another request is opening the new generation; this one uses the old
        if current is None:
            self._reload_lock.acquire()
        try:
            self._current = self._newest(self._current)
            self._checked_at = time.monotonic()
            return self._current
        finally:
            self._reload_lock.release()

    def searcher(self) -> Searcher:
        return self.current().searcher

    def search(self, query: str, k: int = 10, exhaustive: bool = False, candidates: int = 0) -> list[Hit]:
        """The top ``k`` videos for ``query``, best first (one Hit per video: its best segment)."""
        return self.search_many([query], k, exhaustive, candidates)[0].hits

    def search_many(
        self, queries: list[str], k: int = 10, exhaustive: bool = False, candidates: int = 0
    ) -> list[QueryResult]:
        """One result per query, in order, all from the same generation."""
        from glscl_index.search import SearchConfig

        return self.searcher().search(queries, SearchConfig(k=k, candidates=candidates, exhaustive=exhaustive))

    def _newest(self, current: Generation | None) -> Generation:
        stamp = _stamp(self.root)
        if current is not None and stamp == current.manifest_stamp:
            return current
        if current is None:
            from glscl_index.search import open_searcher

            checkpoint, clip_model, pretrained, device = self._model_options
            searcher = open_searcher(self.root, checkpoint, clip_model, pretrained, device)
            searcher.reader.populate_maps()
            return Generation(searcher, stamp)
        if read_manifest(self.root).generation == current.generation:
            return Generation(current.searcher, stamp)  # rewritten, same generation
        from glscl_index.search import Searcher
        from glscl_index.store.reader import IndexReader

        old = current.searcher
        # Same model, so the new generation must carry the fingerprint the model was checked against.
        reader = IndexReader.open(self.root, expected_fingerprint=old.reader.manifest.fingerprint)
        reader.populate_maps()
        searcher = Searcher(reader, old.model, old.device)
        return Generation(searcher, stamp)


def open_index(
    root: str | Path, checkpoint: str | None = None, clip_model: str | None = None, pretrained: str | None = None,
    device: str = "auto",
) -> LiveIndex:
    """Open the index at ``root`` with the model it remembers (or the one named) and keep it open.

    >>> index = open_index("~/.local/share/glscl/index")          # doctest: +SKIP
    >>> for hit in index.search("a dog catching a frisbee", k=5):  # doctest: +SKIP
    ...     print(f"{hit.score:.3f} {hit.video_path} {hit.start_s:.0f}-{hit.end_s:.0f} s")

    The model is loaded here (so errors surface now); later searches follow new commits.
    """
    index = LiveIndex(Path(root).expanduser(), checkpoint, clip_model, pretrained, device)
    index.current()
    return index


def _stamp(root: Path) -> tuple[int, int, int]:
    """What changes when a writer replaces manifest.json (a rename gives it a new inode); zeros when it is absent."""
    try:
        stat = os.stat(root / MANIFEST)
    except OSError:
        return (0, 0, 0)
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
