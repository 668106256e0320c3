"""glscl_index: natural-language search over a video collection with GLSCL.

The Python API is ``open_index`` (see ``glscl_index.live_index``)::

    from glscl_index import open_index
    hits = open_index(path).search("a dog", k=10)

Importing this package is light: torch and the model load when an index is opened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# torch and faiss each bring their own OpenMP runtime. By default a runtime's idle threads spin for a while
# after each parallel region, and on a machine with few cores they take the CPU from the other runtime's
# threads: a 1M-unit search (faiss scan, then torch rerank) took 104 ms per query that way and 56 ms with
# passive waiting (2 cores, cProfile of Searcher.rank; benchmarks/index_scale.py prints the p50). Set before
# either library is imported (a runtime reads it once); a user's own setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from glscl_index.live_index import LiveIndex, open_index
    from glscl_index.search import Hit, QueryResult

__all__ = ["Hit", "LiveIndex", "QueryResult", "open_index"]

_LAZY = {"open_index": "glscl_index.live_index", "LiveIndex": "glscl_index.live_index",
         "Hit": "glscl_index.search", "QueryResult": "glscl_index.search"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
