"""The embedder protocol and the content-hash cache that wraps any embedder."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["CachedEmbedder", "Embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors.

    ``model_id`` names the model (stored beside every vector: vectors of
    different model ids are never compared); ``dimension`` is the vector size.
    """

    model_id: str
    dimension: int

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, shape ``(len(texts), dimension)``, rows of unit length."""
        ...


class CachedEmbedder:
    """Wraps an embedder with an in-memory LRU cache keyed by the text's sha256.

    Repeated texts (greetings, boilerplate, re-ingested history, repeated
    queries) are embedded once. Thread-safe.
    """

    def __init__(self, inner: Embedder, max_entries: int = 50_000) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self._max = max_entries
        self._cache: OrderedDict[bytes, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        keys = [hashlib.sha256(t.encode("utf-8")).digest() for t in texts]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        with self._lock:
            for i, key in enumerate(keys):
                cached = self._cache.get(key)
                if cached is None:
                    todo.setdefault(key, []).append(i)
                else:
                    self._cache.move_to_end(key)
                    out[i] = cached
                    self.hits += 1
        if todo:
            firsts = [rows[0] for rows in todo.values()]
            fresh = self.inner.embed_batch([texts[i] for i in firsts])
            with self._lock:
                for (key, rows), vec in zip(todo.items(), fresh, strict=True):
                    out[rows] = vec
                    self._cache[key] = vec.copy()
                    self.misses += len(rows)
                while len(self._cache) > self._max:
                    self._cache.popitem(last=False)
        return out

    def forget(self, texts: Sequence[str]) -> int:
        """Drop the cached vectors of ``texts`` (their text was deleted); how many were held."""
        keys = {hashlib.sha256(t.encode("utf-8")).digest() for t in texts}
        with self._lock:
            return sum(self._cache.pop(key, None) is not None for key in keys)

    def clear(self) -> None:
        """Drop every cached vector."""
        with self._lock:
            self._cache.clear()
