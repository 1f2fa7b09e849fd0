"""Two embedders as one vector: the opt-in two-embedder mode of messages.

Each message is embedded by both models and stored as one vector, the two unit
vectors side by side, each scaled by ``1/sqrt(2)`` (so the stored vector has unit
length and any backend stores, re-embeds and erases it like any other). A query is
the two models' query embeddings side by side, likewise.

Recall searches it as two dense views (:meth:`DualEmbedder.views`): each model's half
of the query, the other half zero, so each model nominates its own best candidates;
every candidate is then scored by both models on their calibrated scales::

    dense = (1 - w) * scale1(cos1) + w * scale2(cos2)      (w = second model's share)
    scale_i(c) = (c - zero_i) / (one_i - zero_i)

A view's cosine with a stored vector is its model's cosine over sqrt(2), so a view's
scale is its model's scale over sqrt(2) (``DenseView.scale``). Stored vectors do not
depend on ``w``: the share can change without re-embedding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from memory_core.embedding.base import Embedder
from memory_core.errors import ConfigError

__all__ = ["DenseView", "DualEmbedder", "QueryEmbedder"]


class QueryEmbedder(Embedder, Protocol):
    """An embedder that embeds search queries differently from documents (e5's
    ``query: `` / ``passage: `` prefixes)."""

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit-length row per query text."""
        ...


Scale = tuple[float, float]
"""A cosine scale: (the cosine scoring 0, the cosine scoring 1)."""


class DenseView(NamedTuple):
    """One model's side of a two-embedder query: a stored-vector query that
    searches by that model alone, its share of the dense score, and the cosine
    scale of its hits (None: the settings' scale of the configured embedder)."""

    vector: npt.NDArray[np.float32]
    share: float
    scale: Scale | None


class DualEmbedder:
    """Documents embedded by ``first`` and ``second`` into one vector (module doc).

    Args:
        first: The configured embedder (its document and query embeddings are the same).
        second: The second model, with its own query embedding.
        weight: The second model's share of the dense score, 0 to 1.
        first_scale: ``first``'s cosine scale (``Settings.recall_cosine_zero/one``).
        second_scale: ``second``'s (``Settings.second_cosine_zero/one``).
    """

    def __init__(
        self,
        first: Embedder,
        second: QueryEmbedder,
        *,
        weight: float,
        first_scale: Scale,
        second_scale: Scale,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"the second embedder's weight must be 0 to 1, got {weight}")
        for name, (zero, one) in (("first", first_scale), ("second", second_scale)):
            if not one > zero:
                raise ConfigError(
                    f"the {name} embedder's cosine scale must rise: zero {zero} >= one {one}"
                )
        self.first = first
        self.second = second
        self.model_id = f"{first.model_id}+{second.model_id}"
        self.dimension = first.dimension + second.dimension
        self._shares = (1.0 - weight, weight)
        root2 = math.sqrt(2.0)
        self._view_scales: tuple[Scale, Scale] = (
            (first_scale[0] / root2, first_scale[1] / root2),
            (second_scale[0] / root2, second_scale[1] / root2),
        )

    def __repr__(self) -> str:
        return f"DualEmbedder(model_id={self.model_id!r})"

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Documents: both models' unit vectors side by side, each over sqrt(2)."""
        return _side_by_side(self.first.embed_batch(texts), self.second.embed_batch(texts))

    def embed_queries(
        self,
        texts: Sequence[str],
        first: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """Queries: both models' query embeddings side by side, each over sqrt(2).
        ``first``: the first model's embeddings of ``texts`` when already computed
        (recall has them)."""
        one = self.first.embed_batch(texts) if first is None else first
        return _side_by_side(one, self.second.embed_queries(texts))

    def views(self, query: npt.NDArray[np.float32]) -> list[DenseView]:
        """A query of :meth:`embed_queries` as one search per model: the model's half
        of the query, the other half zero, at unit length. Its cosine with a stored
        vector is that model's cosine over sqrt(2) (``DenseView.scale`` accounts for
        it). Recall searches each view for its own best candidates (a message only
        one model ranks high still joins the pool), then scores every candidate by
        both, ``sum(share * scale(cosine))`` (module doc)."""
        cut = self.first.dimension
        out: list[DenseView] = []
        for i, (lo, hi) in enumerate(((0, cut), (cut, query.shape[1]))):
            if self._shares[i] <= 0.0:
                continue
            half = np.zeros_like(query)
            half[:, lo:hi] = query[:, lo:hi]
            norm = np.linalg.norm(half, axis=1, keepdims=True)
            half /= np.where(norm > 0, norm, 1.0).astype(np.float32)
            out.append(DenseView(half.astype(np.float32), self._shares[i], self._view_scales[i]))
        return out


def _side_by_side(
    first: npt.NDArray[np.float32], second: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Two models' unit rows side by side, each over sqrt(2): unit rows again."""
    out: npt.NDArray[np.float32] = (np.hstack([first, second]) / np.float32(math.sqrt(2.0))).astype(
        np.float32
    )
    return out
