"""Storage backends. See :mod:`memory_core.backends.base` for the protocol."""

from memory_core.backends.base import (
    ALL,
    COLLECTIONS,
    Backend,
    Collection,
    CollectionSpec,
    Hit,
    SearchMode,
    Vectors,
    Where,
    require,
)

__all__ = [
    "ALL",
    "COLLECTIONS",
    "Backend",
    "Collection",
    "CollectionSpec",
    "Hit",
    "SearchMode",
    "Vectors",
    "Where",
    "require",
]
