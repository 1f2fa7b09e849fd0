"""The storage backend protocol.

A backend is a tenant-partitioned record store with keyword, vector and hybrid
search. It knows nothing about customers: identity, merging, cascading
deletion and ranking policy live above it, in the engine, so every backend
behaves the same. Its behaviour is pinned by ``tests/contract``, which runs
against every implementation.

Records are the pydantic models of :mod:`memory_core.models`, grouped into
:class:`Collection`\\ s. Each collection declares which fields can be filtered
on (:attr:`CollectionSpec.filter_fields`) and, for searchable collections,
which field holds the text that is indexed for BM25 and embedded. A collection
is a typed key (``Collection.PROFILES: Collection[Profile]``), so every read is
typed by its collection: ``backend.get(tenant, Collection.PROFILES, ids)`` is a
``list[Profile]``, and :func:`require` fetches one record or raises
``NotFoundError``.

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
from typing import (
    Any,
    ClassVar,
    Generic,
    NamedTuple,
    Protocol,
    TypeVar,
    cast,
    overload,
    runtime_checkable,
)

import numpy as np
import numpy.typing as npt
import typing_extensions

from memory_core.errors import NotFoundError, ValidationError
from memory_core.models import (
    ApiKey,
    AuditEvent,
    Chunk,
    ConnectorState,
    Conversation,
    ExtractionRecord,
    IdentifierLink,
    KnowledgeBase,
    MergeRecord,
    Message,
    Observation,
    PendingMerge,
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
    "MessageRow",
    "SearchMode",
    "SupportsExport",
    "SupportsMessageRows",
    "SupportsSnapshot",
    "Vectors",
    "Where",
    "check_records",
    "check_search",
    "iter_chunks",
    "query_vector",
    "require",
    "unit_vectors",
]

R = TypeVar("R", bound=Record)

FilterValue = str | int | float | bool | datetime | None


#: The record model of a :class:`Collection` (a bare ``Collection`` means ``Collection[Record]``).
M = typing_extensions.TypeVar("M", bound=Record, covariant=True, default=Record)

_MEMBERS: dict[str, Collection] = {}  # value -> the one Collection of that name, in order


class _CollectionMeta(type):
    """Lets the :class:`Collection` class be iterated like an Enum: ``list(Collection)``."""

    def __iter__(cls) -> Iterator[Collection]:
        return iter(list(_MEMBERS.values()))

    def __len__(cls) -> int:
        return len(_MEMBERS)

    def __contains__(cls, item: object) -> bool:
        return isinstance(item, Collection) and _MEMBERS.get(item.value) is item


class Collection(Generic[M], metaclass=_CollectionMeta):
    """A collection of records: a typed key, ``Collection.PROFILES: Collection[Profile]``.

    Backend calls are typed by the key they are given: ``backend.get(tenant,
    Collection.PROFILES, ids)`` is a ``list[Profile]``. There is exactly one
    instance per collection (the class attributes below), so keys compare with
    ``is`` and ``==`` and serve as dict keys; ``.value`` (also ``str()`` and
    f-strings) is the name, ``.model`` the record class, ``.spec`` the
    :class:`CollectionSpec`. Enum-like: ``list(Collection)`` (also
    :meth:`all`) lists them in declaration order and ``Collection("profiles")``
    looks one up by name (``ValueError`` for an unknown name). Unlike the
    ``StrEnum`` it replaces, a key is not a ``str``: write ``.value`` where a
    string is wanted.
    """

    __slots__ = ("_model", "_value")
    _value: str
    _model: type[M]

    PROFILES: ClassVar[Collection[Profile]]
    IDENTIFIERS: ClassVar[Collection[IdentifierLink]]
    TRAITS: ClassVar[Collection[Trait]]
    CONVERSATIONS: ClassVar[Collection[Conversation]]
    MESSAGES: ClassVar[Collection[Message]]
    MERGES: ClassVar[Collection[MergeRecord]]
    OBSERVATIONS: ClassVar[Collection[Observation]]
    SUMMARIES: ClassVar[Collection[Summary]]
    EXTRACTIONS: ClassVar[Collection[ExtractionRecord]]
    TRAIT_SCHEMA: ClassVar[Collection[TraitDefinition]]
    KNOWLEDGE_BASES: ClassVar[Collection[KnowledgeBase]]
    SOURCES: ClassVar[Collection[Source]]
    CHUNKS: ClassVar[Collection[Chunk]]
    POLICIES: ClassVar[Collection[PolicyRecord]]
    AUDIT: ClassVar[Collection[AuditEvent]]
    API_KEYS: ClassVar[Collection[ApiKey]]
    CONNECTOR_STATE: ClassVar[Collection[ConnectorState]]
    PENDING_MERGES: ClassVar[Collection[PendingMerge]]

    @overload
    def __new__(cls, value: Collection[R]) -> Collection[R]: ...
    @overload
    def __new__(cls, value: str) -> Collection: ...
    def __new__(cls, value: str | Collection) -> Collection:
        """The collection named ``value`` (or ``value`` itself, if it is one)."""
        if isinstance(value, Collection) and _MEMBERS.get(value.value) is value:
            return value
        found = _MEMBERS.get(value) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{value!r} is not a valid Collection")
        return found

    @classmethod
    def _define(cls, value: str, model: type[R]) -> Collection[R]:
        if value in _MEMBERS:
            raise ValueError(f"Collection {value!r} is already defined")
        key = cast("Collection[R]", object.__new__(cls))
        object.__setattr__(key, "_value", value)
        object.__setattr__(key, "_model", model)
        _MEMBERS[value] = key
        return key

    @classmethod
    def all(cls) -> list[Collection]:
        """Every collection, in declaration order (the same as ``list(Collection)``)."""
        return list(_MEMBERS.values())

    @property
    def value(self) -> str:
        """The collection's name, e.g. ``"profiles"``."""
        return self._value

    @property
    def model(self) -> type[M]:
        """The class of the collection's records."""
        return self._model

    @property
    def spec(self) -> CollectionSpec[M]:
        """How the collection is stored and filtered (``COLLECTIONS[self]``)."""
        return cast("CollectionSpec[M]", COLLECTIONS[self])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Collection {self._value!r} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Collection {self._value!r} is immutable")

    def __reduce__(self) -> tuple[type[Collection], tuple[str]]:
        return Collection, (self._value,)  # unpickles (and copies) to the same instance

    def __copy__(self) -> Collection[M]:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Collection[M]:
        return self

    def __str__(self) -> str:
        return self._value

    def __format__(self, format_spec: str) -> str:
        return format(self._value, format_spec)

    def __repr__(self) -> str:
        return f"Collection({self._value!r})"


Collection.PROFILES = Collection._define("profiles", Profile)
Collection.IDENTIFIERS = Collection._define("identifiers", IdentifierLink)
Collection.TRAITS = Collection._define("traits", Trait)
Collection.CONVERSATIONS = Collection._define("conversations", Conversation)
Collection.MESSAGES = Collection._define("messages", Message)
Collection.MERGES = Collection._define("merges", MergeRecord)
Collection.OBSERVATIONS = Collection._define("observations", Observation)
Collection.SUMMARIES = Collection._define("summaries", Summary)
Collection.EXTRACTIONS = Collection._define("extractions", ExtractionRecord)
Collection.TRAIT_SCHEMA = Collection._define("trait_schema", TraitDefinition)
Collection.KNOWLEDGE_BASES = Collection._define("knowledge_bases", KnowledgeBase)
Collection.SOURCES = Collection._define("sources", Source)
Collection.CHUNKS = Collection._define("chunks", Chunk)
Collection.POLICIES = Collection._define("policies", PolicyRecord)
Collection.AUDIT = Collection._define("audit", AuditEvent)
Collection.API_KEYS = Collection._define("api_keys", ApiKey)
Collection.CONNECTOR_STATE = Collection._define("connector_state", ConnectorState)
Collection.PENDING_MERGES = Collection._define("pending_merges", PendingMerge)


@dataclass(frozen=True)
class CollectionSpec(Generic[M]):
    """How a collection's records are stored and filtered."""

    name: Collection[M]
    model: type[M]
    filter_fields: tuple[str, ...]
    text_field: str | None = None  # set for searchable collections
    time_fields: tuple[str, ...] = ()  # filter fields holding datetimes
    kind: str = ""  # what one record is, as NotFoundError.kind: "profile", "api_key"
    noun: str = ""  # what messages call one record: "profile", "API key"

    def __post_init__(self) -> None:
        if self.model is not self.name.model:
            raise TypeError(f"{self.name} holds {self.name.model.__name__}, not {self.model}")

    @property
    def searchable(self) -> bool:
        return self.text_field is not None


COLLECTIONS: dict[Collection, CollectionSpec] = {
    spec.name: spec
    for spec in (
        CollectionSpec(
            Collection.PROFILES,
            Profile,
            ("merged_into", "created_at"),
            None,
            ("created_at",),
            kind="profile",
            noun="profile",
        ),
        CollectionSpec(
            Collection.IDENTIFIERS,
            IdentifierLink,
            ("kind", "value", "profile_id"),
            kind="identifier",
            noun="identifier",
        ),
        CollectionSpec(
            Collection.TRAITS, Trait, ("profile_id", "key", "source"), kind="trait", noun="trait"
        ),
        CollectionSpec(
            Collection.CONVERSATIONS,
            Conversation,
            ("profile_id", "channel", "status", "started_at"),
            None,
            ("started_at",),
            kind="conversation",
            noun="conversation",
        ),
        CollectionSpec(
            Collection.MESSAGES,
            Message,
            ("conversation_id", "profile_id", "channel", "role", "ts", "seq"),
            "text",
            ("ts",),
            kind="message",
            noun="message",
        ),
        CollectionSpec(
            Collection.MERGES, MergeRecord, ("survivor_id",), kind="merge", noun="merge record"
        ),
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
            kind="observation",
            noun="observation",
        ),
        CollectionSpec(
            Collection.SUMMARIES,
            Summary,
            ("profile_id", "conversation_id", "channel", "outcome", "ts", "created_at"),
            "text",
            ("ts", "created_at"),
            kind="summary",
            noun="summary",
        ),
        CollectionSpec(
            Collection.EXTRACTIONS,
            ExtractionRecord,
            ("profile_id", "conversation_id", "status", "extractor", "updated_at"),
            None,
            ("updated_at",),
            kind="extraction",
            noun="extraction",
        ),
        CollectionSpec(
            Collection.TRAIT_SCHEMA,
            TraitDefinition,
            ("type", "declared_by"),
            kind="trait_definition",
            noun="trait definition",
        ),
        CollectionSpec(
            Collection.KNOWLEDGE_BASES,
            KnowledgeBase,
            ("name",),
            kind="knowledge_base",
            noun="knowledge base",
        ),
        CollectionSpec(
            Collection.SOURCES,
            Source,
            ("kb_id", "type", "status", "uri"),
            kind="source",
            noun="source",
        ),
        CollectionSpec(
            Collection.CHUNKS,
            Chunk,
            ("kb_id", "source_id", "page_uri", "since", "gen"),
            "text",
            kind="chunk",
            noun="chunk",
        ),
        CollectionSpec(
            Collection.POLICIES, PolicyRecord, ("updated_by",), kind="policy", noun="policy"
        ),
        CollectionSpec(
            Collection.AUDIT,
            AuditEvent,
            ("ts", "actor", "action", "target"),
            None,
            ("ts",),
            kind="audit_event",
            noun="audit event",
        ),
        CollectionSpec(
            Collection.API_KEYS,
            ApiKey,
            ("name", "role", "created_at"),
            None,
            ("created_at",),
            kind="api_key",
            noun="API key",
        ),
        CollectionSpec(
            Collection.CONNECTOR_STATE,
            ConnectorState,
            ("connector", "kind", "profile_id", "updated_at"),
            None,
            ("updated_at",),
            kind="connector_state",
            noun="connector state",
        ),
        CollectionSpec(
            Collection.PENDING_MERGES,
            PendingMerge,
            ("profile_a", "profile_b", "status", "created_at"),
            None,
            ("created_at",),
            kind="pending_merge",
            noun="pending merge",
        ),
    )
}
assert list(COLLECTIONS) == list(Collection), "one spec per collection, in declaration order"


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
class Hit(Generic[M]):
    """One search result. ``score`` is higher-is-better; its scale depends on the mode."""

    record: M
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
        collection: Collection[R],
        records: Sequence[R],
        vectors: Vectors | None = None,
    ) -> None:
        """Insert or replace records by id. Searchable collections need ``vectors``
        to be vector-searchable; a replaced record without new vectors loses its old ones."""

    def get(self, tenant: str, collection: Collection[R], ids: Sequence[str]) -> list[R]:
        """The records with these ids that exist, in the order of ``ids``."""

    def find(
        self,
        tenant: str,
        collection: Collection[R],
        where: Where = ALL,
        *,
        order_by: str | None = None,
        descending: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[R]:
        """Records matching ``where``, ordered by a filter field (then id)."""

    def count(self, tenant: str, collection: Collection, where: Where = ALL) -> int:
        """How many records match ``where``."""

    def delete(self, tenant: str, collection: Collection, where: Where) -> int:
        """Delete every matching record from every index; returns how many."""

    # -- search -------------------------------------------------------------
    def search(
        self,
        tenant: str,
        collection: Collection[R],
        *,
        mode: SearchMode,
        text: str | None = None,
        vector: Vectors | None = None,
        where: Where = ALL,
        limit: int = 10,
        alpha: float = 0.5,
    ) -> list[Hit[R]]:
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
        self, tenant: str, collection: Collection[R], batch_size: int = 500
    ) -> Iterator[tuple[list[R], Vectors | None]]:
        """Every record of the tenant's collection, once each, in an order the backend
        chooses (by id on SQLite), in pages of at most ``batch_size``; each item holds
        consecutive records sharing one model's vectors (``None``: records without a
        vector). Pages are read one at a time: writes made during an export may or
        may not be included. Raises ``NotFoundError`` for an unknown tenant."""


class MessageRow(NamedTuple):
    """What recall's ranking reads of a message (:mod:`memory_core.relevance`): read
    from a backend's columns without parsing and validating the whole record.
    ``text`` is None where it was not read (vector searches, neighbour lookups)."""

    id: str
    conversation_id: str
    seq: int
    ts: datetime
    text: str | None = None


@runtime_checkable
class SupportsMessageRows(Protocol):
    """Optional capability: message searches and lookups that return
    :class:`MessageRow` rather than whole records, for recall's ranking (which reads
    a few fields of ~150 candidates and returns a handful; those are then read whole
    with :meth:`Backend.get`). Rows, scores and their order are exactly those of
    :meth:`Backend.search` and :meth:`Backend.find` for the same arguments."""

    def search_rows(
        self,
        tenant: str,
        *,
        mode: SearchMode,
        text: str | None = None,
        vector: Vectors | None = None,
        where: Where = ALL,
        limit: int = 10,
    ) -> list[tuple[MessageRow, float]]:
        """:meth:`Backend.search` of the tenant's messages (keyword or vector mode):
        ``(row, score)`` best first; rows of a keyword search carry their text."""
        ...

    def message_rows(
        self, tenant: str, where: Where, positions: Sequence[tuple[str, int]]
    ) -> list[MessageRow]:
        """The tenant's messages matching ``where`` at these ``(conversation_id, seq)``
        positions (one lookup), in no particular order."""
        ...


@runtime_checkable
class SupportsSnapshot(Protocol):
    """Optional capability: several reads of one thread in one snapshot (recall
    reads the profile, traits and each source's searches in one)."""

    def snapshot(self) -> AbstractContextManager[None]:
        """A context in which this thread's reads see one consistent state; a write
        inside may end it (later reads then see their own, newer state)."""
        ...


def require(
    backend: Backend,
    tenant: str,
    collection: Collection[R],
    id: str,
    *,
    what: str | None = None,
    kind: str | None = None,
) -> R:
    """The record ``id`` of ``collection``, or ``NotFoundError``.

    The error reads ``"<what> '<id>' does not exist in tenant '<tenant>'"``, ``what``
    defaulting to the collection's noun (``"profile"``, ``"API key"``), and carries
    ``kind`` (default: the collection's, ``"profile"``, ``"api_key"``). An unknown
    tenant raises the backend's own ``NotFoundError`` (kind ``"tenant"``).
    """
    found = backend.get(tenant, collection, [id])
    if not found:
        spec = collection.spec
        raise NotFoundError(
            f"{what or spec.noun} {id!r} does not exist in tenant {tenant!r}",
            kind=kind or spec.kind,
        )
    return found[0]


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
