"""The storage backend protocol.

A backend is a tenant-partitioned record store with keyword, vector and hybrid
search. It knows nothing about customers: identity, merging, cascading
deletion and ranking policy live above it, in the engine, so every backend
behaves the same. Its behaviour is pinned by ``tests/contract``, which runs
against every implementation.

Records are the pydantic models of :mod:`memory_core.models`, grouped into
:class:`Collection`\\ s. Each collection declares which fields can be filtered
on (:attr:`CollectionSpec.filter_fields`) and, for searchable collections,
which field holds the text that is indexed for BM25 and embedded.

Guarantees every backend gives:

- **Tenant partition**: no call reads or writes outside the tenant it names.
- **Atomic writes**: ``upsert`` and ``delete`` either apply whole or not at all;
  ``batch()`` groups several calls into one atomic unit where the backend can.
- **Vectors carry their model id**; vector search only compares vectors of the
  model id it is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from memory_core.errors import ValidationError
from memory_core.models import (
    ApiKey,
    AuditEvent,
    Chunk,
    Conversation,
    ExtractionRecord,
    IdentifierLink,
    KnowledgeBase,
    MergeRecord,
    Message,
    Observation,
    PolicyRecord,
    Profile,
    Record,
    Source,
    Summary,
    Trait,
    TraitDefinition,
)

__all__ = [
    "ALL",
    "COLLECTIONS",
    "Backend",
    "Collection",
    "CollectionSpec",
    "FilterValue",
    "Hit",
    "SearchMode",
    "SupportsExport",
    "Vectors",
    "Where",
    "check_records",
    "check_search",
    "iter_chunks",
    "query_vector",
    "unit_vectors",
]

R = TypeVar("R", bound=Record)

FilterValue = str | int | float | bool | datetime | None


class Collection(StrEnum):
    PROFILES = "profiles"
    IDENTIFIERS = "identifiers"
    TRAITS = "traits"
    CONVERSATIONS = "conversations"
    MESSAGES = "messages"
    MERGES = "merges"
    OBSERVATIONS = "observations"
    SUMMARIES = "summaries"
    EXTRACTIONS = "extractions"
    TRAIT_SCHEMA = "trait_schema"
    KNOWLEDGE_BASES = "knowledge_bases"
    SOURCES = "sources"
    CHUNKS = "chunks"
    POLICIES = "policies"
    AUDIT = "audit"
    API_KEYS = "api_keys"


@dataclass(frozen=True)
class CollectionSpec:
    """How a collection's records are stored and filtered."""

    name: Collection
    model: type[Record]
    filter_fields: tuple[str, ...]
    text_field: str | None = None  # set for searchable collections
    time_fields: tuple[str, ...] = ()  # filter fields holding datetimes

    @property
    def searchable(self) -> bool:
        return self.text_field is not None


COLLECTIONS: dict[Collection, CollectionSpec] = {
    spec.name: spec
    for spec in (
        CollectionSpec(
            Collection.PROFILES, Profile, ("merged_into", "created_at"), None, ("created_at",)
        ),
        CollectionSpec(Collection.IDENTIFIERS, IdentifierLink, ("kind", "value", "profile_id")),
        CollectionSpec(Collection.TRAITS, Trait, ("profile_id", "key", "source")),
        CollectionSpec(
            Collection.CONVERSATIONS,
            Conversation,
            ("profile_id", "channel", "status", "started_at"),
            None,
            ("started_at",),
        ),
        CollectionSpec(
            Collection.MESSAGES,
            Message,
            ("conversation_id", "profile_id", "channel", "role", "ts", "seq"),
            "text",
            ("ts",),
        ),
        CollectionSpec(Collection.MERGES, MergeRecord, ("survivor_id",)),
        CollectionSpec(
            Collection.OBSERVATIONS,
            Observation,
            (
                "profile_id",
                "conversation_id",
                "kind",
                "status",
                "trait_key",
                "source",
                "valid_from",
                "valid_to",
                "created_at",
                "updated_at",
            ),
            "text",
            ("valid_from", "valid_to", "created_at", "updated_at"),
        ),
        CollectionSpec(
            Collection.SUMMARIES,
            Summary,
            ("profile_id", "conversation_id", "channel", "outcome", "ts", "created_at"),
            "text",
            ("ts", "created_at"),
        ),
        CollectionSpec(
            Collection.EXTRACTIONS,
            ExtractionRecord,
            ("profile_id", "conversation_id", "status", "extractor", "updated_at"),
            None,
            ("updated_at",),
        ),
        CollectionSpec(Collection.TRAIT_SCHEMA, TraitDefinition, ("type", "declared_by")),
        CollectionSpec(Collection.KNOWLEDGE_BASES, KnowledgeBase, ("name",)),
        CollectionSpec(Collection.SOURCES, Source, ("kb_id", "type", "status", "uri")),
        CollectionSpec(
            Collection.CHUNKS, Chunk, ("kb_id", "source_id", "page_uri", "since", "gen"), "text"
        ),
        CollectionSpec(Collection.POLICIES, PolicyRecord, ("updated_by",)),
        CollectionSpec(
            Collection.AUDIT, AuditEvent, ("ts", "actor", "action", "target"), None, ("ts",)
        ),
        CollectionSpec(
            Collection.API_KEYS, ApiKey, ("name", "role", "created_at"), None, ("created_at",)
        ),
    )
}


@dataclass(frozen=True)
class Where:
    """A conjunction of simple conditions on a collection's filter fields.

    ``eq``: field equals value (``None`` means the field is null);
    ``any_of``: field is one of the values (an empty list matches nothing);
    ``gte`` / ``lt``: range bounds (inclusive / exclusive), for numbers and times.
    """

    eq: Mapping[str, FilterValue] = field(default_factory=dict)
    any_of: Mapping[str, Sequence[FilterValue]] = field(default_factory=dict)
    gte: Mapping[str, FilterValue] = field(default_factory=dict)
    lt: Mapping[str, FilterValue] = field(default_factory=dict)

    def fields(self) -> set[str]:
        return set(self.eq) | set(self.any_of) | set(self.gte) | set(self.lt)

    def and_(self, other: Where) -> Where:
        """Both conditions; on a field given in both, ``other`` wins."""
        return Where(
            eq={**self.eq, **other.eq},
            any_of={**self.any_of, **other.any_of},
            gte={**self.gte, **other.gte},
            lt={**self.lt, **other.lt},
        )


ALL = Where()


@dataclass(frozen=True)
class Vectors:
    """Embeddings for records, row ``i`` for record ``i``, made by ``model_id``."""

    model_id: str
    array: npt.NDArray[np.float32]


class SearchMode(StrEnum):
    KEYWORD = "keyword"  # BM25 over the text field
    VECTOR = "vector"  # cosine similarity of stored vectors
    HYBRID = "hybrid"  # both, fused


@dataclass(frozen=True)
class Hit(Generic[R]):
    """One search result. ``score`` is higher-is-better; its scale depends on the mode."""

    record: R
    score: float


@runtime_checkable
class Backend(Protocol):
    """A tenant-partitioned record store with search. See the module docstring."""

    name: str

    def close(self) -> None:
        """Release connections and files. The backend is unusable afterwards."""

    def batch(self) -> AbstractContextManager[None]:
        """Group calls into one atomic unit (where supported); nests."""

    # -- tenants ------------------------------------------------------------
    def ensure_tenant(self, tenant: str) -> None:
        """Create the tenant's partition if it does not exist (idempotent)."""

    def list_tenants(self) -> list[str]:
        """Every tenant with a partition, sorted."""

    def drop_tenant(self, tenant: str) -> dict[str, int]:
        """Delete the tenant's partition and everything in it; counts per collection."""

    # -- records ------------------------------------------------------------
    def upsert(
        self,
        tenant: str,
        collection: Collection,
        records: Sequence[Record],
        vectors: Vectors | None = None,
    ) -> None:
        """Insert or replace records by id. Searchable collections need ``vectors``
        to be vector-searchable; a replaced record without new vectors loses its old ones."""

    def get(self, tenant: str, collection: Collection, ids: Sequence[str]) -> list[Record]:
        """The records with these ids that exist, in the order of ``ids``."""

    def find(
        self,
        tenant: str,
        collection: Collection,
        where: Where = ALL,
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Record]:
        """Records matching ``where``, ordered by a filter field (then id)."""

    def count(self, tenant: str, collection: Collection, where: Where = ALL) -> int:
        """How many records match ``where``."""

    def delete(self, tenant: str, collection: Collection, where: Where) -> int:
        """Delete every matching record from every index; returns how many."""

    # -- search -------------------------------------------------------------
    def search(
        self,
        tenant: str,
        collection: Collection,
        *,
        mode: SearchMode,
        text: str | None = None,
        vector: Vectors | None = None,
        where: Where = ALL,
        limit: int = 10,
        alpha: float = 0.5,
    ) -> list[Hit[Record]]:
        """Search a searchable collection, best first.

        KEYWORD needs ``text``; VECTOR needs ``vector`` (one row); HYBRID takes
        both and fuses them, ``alpha`` weighting the vector side (0 = keyword only,
        1 = vector only). Only records matching ``where`` are returned.
        """


@runtime_checkable
class SupportsExport(Protocol):
    """Optional capability: read a tenant's records back with their stored vectors
    (the protocol itself has no call that returns vectors). ``convmem migrate``
    uses it to copy a tenant between backends without re-embedding; detect it
    with ``isinstance(backend, SupportsExport)``."""

    def export(
        self, tenant: str, collection: Collection, batch_size: int = 500
    ) -> Iterator[tuple[list[Record], Vectors | None]]:
        """Every record of the tenant's collection, once each, in an order the backend
        chooses (by id on SQLite), in pages of at most ``batch_size``; each item holds
        consecutive records sharing one model's vectors (``None``: records without a
        vector). Pages are read one at a time: writes made during an export may or
        may not be included. Raises ``NotFoundError`` for an unknown tenant."""


def iter_chunks(items: Sequence[R], size: int) -> Iterator[Sequence[R]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- argument checks every backend makes the same way -------------------------------


def check_records(spec: CollectionSpec, tenant: str, records: Sequence[Record]) -> None:
    """Every record is of the collection's type and belongs to ``tenant``."""
    for record in records:
        if not isinstance(record, spec.model):
            raise ValidationError(
                f"Collection {spec.name.value!r} holds {spec.model.__name__} records, "
                f"got {type(record).__name__}"
            )
        if record.tenant != tenant:
            raise ValidationError(
                f"Record {record.id!r} belongs to tenant {record.tenant!r}, not {tenant!r}"
            )


def unit_vectors(spec: CollectionSpec, vectors: Vectors, count: int) -> npt.NDArray[np.float32]:
    """``vectors`` for ``count`` records of ``spec``, checked and scaled to unit length."""
    if not spec.searchable:
        raise ValidationError(f"Collection {spec.name.value!r} does not store vectors")
    if not isinstance(vectors.model_id, str) or not vectors.model_id:
        raise ValidationError("Vectors need a non-empty model_id")
    array = vectors.array
    if not isinstance(array, np.ndarray) or array.dtype != np.float32:
        raise ValidationError("Vectors must be a float32 numpy array")
    if array.ndim != 2 or array.shape[0] != count or array.shape[1] == 0:
        raise ValidationError(
            f"Vectors must have shape ({count}, d) for {count} records, got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValidationError("Vectors must be finite (no NaN or infinity)")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def query_vector(vector: Vectors | None) -> tuple[str, npt.NDArray[np.float32]]:
    """The query's model id and unit vector (one row of floats, finite, non-zero)."""
    if vector is None:
        raise ValidationError("Vector and hybrid search need a query vector")
    array = np.asarray(vector.array)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0 or array.dtype.kind != "f":
        raise ValidationError(
            f"The query vector must be one row of floats, got shape {array.shape} of {array.dtype}"
        )
    norm = float(np.linalg.norm(array))
    if not np.isfinite(array).all() or norm == 0.0:
        raise ValidationError("The query vector must be finite and non-zero")
    return vector.model_id, (array / norm).astype(np.float32)


def check_search(
    spec: CollectionSpec, mode: SearchMode | str, text: str | None, limit: int, alpha: float
) -> SearchMode:
    """The arguments of :meth:`Backend.search` checked; returns the mode."""
    if not spec.searchable:
        searchable = ", ".join(c.value for c, s in COLLECTIONS.items() if s.searchable)
        raise ValidationError(
            f"Collection {spec.name.value!r} is not searchable; searchable: {searchable}"
        )
    try:
        mode = SearchMode(mode)
    except ValueError:
        raise ValidationError(f"Unknown search mode {mode!r}") from None
    if isinstance(limit, bool) or limit < 0:
        raise ValidationError(f"limit must be >= 0, got {limit!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValidationError(f"alpha must be within [0, 1], got {alpha}")
    if mode is not SearchMode.VECTOR and not isinstance(text, str):
        raise ValidationError(f"{mode.value} search needs text")
    return mode
