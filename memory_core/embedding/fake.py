"""A deterministic embedder that needs nothing: for tests, demos and offline runs.

Not a language model: a hashed bag of lower-cased word unigrams and character
trigrams, signed (feature hashing), L2-normalised. Texts that share words and
spellings are similar; texts that share nothing are close to orthogonal. The
hash is blake2b, so vectors are identical across processes and machines
(Python's ``hash()`` is salted per process).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from memory_core.errors import ConfigError, ValidationError

__all__ = ["HashEmbedder"]

_WORD = re.compile(r"\w+", re.UNICODE)
_EMPTY_TEXT_FEATURE = "\x00empty"
_TRIGRAM_WEIGHT = 0.5


class HashEmbedder:
    """Feature-hashing embedder: word unigrams + character trigrams into ``dimension`` buckets.

    Every row has unit length; the empty text (or one with no word characters)
    gets one fixed unit vector.
    """

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 2:
            raise ConfigError(f"HashEmbedder dimension must be at least 2, got {dimension}")
        self.dimension = dimension
        self.model_id = f"hash-{dimension}"

    def __repr__(self) -> str:
        return f"HashEmbedder(dimension={self.dimension})"

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str):
            raise ValidationError("embed_batch takes a sequence of texts, not a single str")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValidationError(
                    f"embed_batch takes strings; item {row} is a {type(text).__name__}"
                )
            out[row] = self._embed_one(text)
        return out

    def _embed_one(self, text: str) -> npt.NDArray[np.float32]:
        vec = np.zeros(self.dimension, dtype=np.float64)
        words = _WORD.findall(text.lower())
        for word in words:
            self._add(vec, "w:" + word, 1.0)
            padded = f"#{word}#"
            for i in range(len(padded) - 2):
                self._add(vec, "c:" + padded[i : i + 3], _TRIGRAM_WEIGHT)
        norm = float(np.linalg.norm(vec))
        if not words or norm == 0.0:
            # No features, or (vanishingly unlikely) all of them cancelled out.
            vec[:] = 0.0
            self._add(vec, _EMPTY_TEXT_FEATURE, 1.0)
            norm = 1.0
        return (vec / norm).astype(np.float32)

    def _add(self, vec: npt.NDArray[np.float64], feature: str, weight: float) -> None:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        bucket = (value >> 1) % self.dimension
        vec[bucket] += weight if value & 1 else -weight
