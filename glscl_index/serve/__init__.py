"""`glscl serve`: the search page, the JSON API and range-served media over one ``LiveIndex``.

``create_app`` builds the FastAPI application; ``glscl_index.serve.thumbnails`` cuts and caches
the cards' frames; ``glscl_index.serve.security`` holds the bind and token rules.
"""

from glscl_index.serve.app import create_app

__all__ = ["create_app"]
