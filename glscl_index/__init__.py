"""glscl_index: natural-language search over a video collection with GLSCL.

The Python API is ``open_index`` (see ``glscl_index.live_index``)::

    from glscl_index import open_index
    hits = open_index(path).search("a dog", k=10)

Importing this package is light: torch and the model load when an index is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
