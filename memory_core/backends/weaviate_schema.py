"""How the Weaviate backend lays records out: collection names, properties,
stored values, filters and the schema check.

One Weaviate collection per :class:`~memory_core.backends.base.Collection`
(``<prefix><Name>``, e.g. ``ConvmemMessages``), multi-tenancy on. Each object's
UUID is a uuid5 of ``(collection, record id)``; its properties are:

- ``rid``: the record id (our ids are arbitrary strings, Weaviate ids are UUIDs);
- ``body``: the record as JSON, not indexed -- what reads return;
- one typed property per filter field (text, date, int, number, bool);
- for ``rid`` and every text filter field ``f``, ``f_ord``: the value's UTF-8
  bytes in lower-case hex. Weaviate sorts text case-insensitively and trims
  field-tokenized text, while the protocol orders and compares strings by
  their bytes (as SQLite does); hex keeps both order and equality exact, so
  filters on text fields, sorting and keyset paging all use the ``_ord`` twin;
- searchable collections: the text field (stored, not indexed), ``<text>_terms``
  -- the text's terms as the embedded backend's FTS5 tokenizer makes them
  (folded and Porter-stemmed, see :mod:`memory_core.backends.weaviate_text`),
  indexed with ``whitespace`` tokenization, the only BM25-searchable property --
  and ``vector_model``; vectors live in one named vector per embedding model
  (:func:`vector_name`), added to the collection the first time a model is
  written, so vectors of different models -- even of different dimensions --
  are never compared.

The collection description carries :data:`SCHEMA_VERSION`; :func:`check_collection`
raises :class:`~memory_core.errors.SchemaMismatchError` when an existing
collection was written by another version or has other properties.
"""

from __future__ import annotations

import hashlib
import math
import re
import types
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, Union, get_args, get_origin

from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    StopwordsPreset,
    Tokenization,
)
from weaviate.classes.query import Filter
from weaviate.collections.classes.config import CollectionConfig
from weaviate.collections.classes.filters import _Filters

from memory_core.backends.base import (
    COLLECTIONS,
    Collection,
    CollectionSpec,
    FilterValue,
    M,
    Where,
)
from memory_core.backends.sqlite_migrations import stored_value
from memory_core.errors import SchemaMismatchError, ValidationError
from memory_core.models import Record, as_utc

__all__ = [
    "DEFAULT_PREFIX",
    "SCHEMA_VERSION",
    "Compiled",
    "Layout",
    "check_collection",
    "check_prefix",
    "layouts",
    "ord_key",
    "valid_tenant",
    "vector_name",
]

SCHEMA_VERSION = 1
DEFAULT_PREFIX = "Convmem"
_MARKER = "conversation-memory schema v"
_MARKER_RE = re.compile(re.escape(_MARKER) + r"(\d+)")
_PREFIX = re.compile(r"^[A-Z][A-Za-z0-9]{0,40}$")
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Weaviate's tenant name rule
_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4c55-9d0a-3c1f2b7e9a41")  # object ids (never change)

RID, RID_ORD, BODY, VECTOR_MODEL = "rid", "rid_ord", "body", "vector_model"


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValidationError(
            f"Invalid Weaviate collection prefix {prefix!r}: use a capital letter followed "
            "by up to 40 letters or digits, e.g. 'Convmem'"
        )
    return prefix


def valid_tenant(tenant: object) -> bool:
    """Whether Weaviate accepts ``tenant`` as a tenant name (1-64 of ``[A-Za-z0-9_-]``)."""
    return isinstance(tenant, str) and bool(_TENANT.match(tenant))


def ord_key(value: str) -> str:
    """A string whose order and equality under Weaviate match ``value``'s UTF-8 bytes."""
    return value.encode("utf-8", "surrogatepass").hex()


def vector_name(model_id: str) -> str:
    """The named vector holding the vectors of embedding model ``model_id``."""
    slug = re.sub(r"[^0-9A-Za-z]+", "_", model_id).strip("_").lower()[:48]
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:10]
    return f"m_{slug}_{digest}" if slug else f"m_{digest}"


class Kind(Enum):
    TEXT = DataType.TEXT
    DATE = DataType.DATE
    INT = DataType.INT
    NUMBER = DataType.NUMBER
    BOOL = DataType.BOOL


def _kind(spec: CollectionSpec, name: str) -> tuple[Kind, bool]:
    """The stored kind of filter field ``name`` and whether it may be null."""
    annotation = spec.model.model_fields[name].annotation
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"{spec.model.__name__}.{name}: filter fields need one type")
        annotation = args[0]
    if not isinstance(annotation, type):
        raise TypeError(f"{spec.model.__name__}.{name}: cannot store {annotation!r}")
    if name in spec.time_fields or issubclass(annotation, datetime):
        return Kind.DATE, nullable
    if issubclass(annotation, bool):
        return Kind.BOOL, nullable
    if issubclass(annotation, int):
        return Kind.INT, nullable
    if issubclass(annotation, float):
        return Kind.NUMBER, nullable
    if issubclass(annotation, str):  # str and StrEnum
        return Kind.TEXT, nullable
    raise TypeError(f"{spec.model.__name__}.{name}: cannot store {annotation.__name__}")


class _Nothing:
    """A filter value no stored value can equal (e.g. ``seq == 1.5``)."""


_NOTHING = _Nothing()


@dataclass(frozen=True)
class Field:
    """One filter field (or ``id``) as stored."""

    name: str  # as named in a Where
    prop: str  # the typed property
    kind: Kind
    nullable: bool

    @property
    def key(self) -> str:
        """The property compared and sorted on (the ``_ord`` twin for text)."""
        return f"{self.prop}_ord" if self.kind is Kind.TEXT else self.prop

    def encode(self, value: object) -> Any:
        """A record's value as stored in ``prop``."""
        if value is None:
            return None
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, datetime):
            return as_utc(value)
        if self.kind is Kind.INT and isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ValidationError(f"{self.name!r} = {value!r} does not fit Weaviate's 64-bit int")
        return value

    def operand(self, raw: FilterValue, *, bound: str | None = None) -> Any:
        """``raw`` as compared with ``key`` (ValidationError if it cannot be compared).

        ``bound`` is ``"gte"`` or ``"lt"`` for range bounds (which round integers up).
        """
        if self.kind is Kind.DATE:
            stored_value(raw, self.name, time=True)  # validates: datetime or epoch seconds
            if raw is None or isinstance(raw, datetime):
                return None if raw is None else as_utc(raw)
            return datetime.fromtimestamp(float(raw), UTC)
        value = stored_value(raw, self.name, time=False)
        if value is None:
            return None
        if self.kind is Kind.TEXT:
            return ord_key(str(value))  # as SQLite's TEXT affinity renders numbers
        if isinstance(value, str):
            raise ValidationError(
                f"{self.name!r} holds numbers: compare it with a number, not {raw!r}"
            )
        assert isinstance(value, int | float)
        if self.kind is Kind.INT:
            if float(value).is_integer():
                return int(value)
            return _NOTHING if bound is None else math.ceil(value)
        if self.kind is Kind.BOOL:
            return bool(value)
        return float(value)


@dataclass(frozen=True)
class Compiled:
    """A translated :class:`Where`: a Weaviate filter (None = everything) or nothing at all."""

    filter: _Filters | None
    empty: bool  # an empty any_of: matches nothing


def _all(parts: list[_Filters]) -> _Filters | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)


def _any(parts: list[_Filters]) -> _Filters:
    return parts[0] if len(parts) == 1 else Filter.any_of(parts)


class Layout(Generic[M]):
    """The Weaviate collection of one record collection."""

    def __init__(
        self, spec: CollectionSpec[M], prefix: str, bm25: tuple[float, float] = (1.2, 0.75)
    ) -> None:
        self.spec = spec
        self.bm25 = bm25  # k1, b
        self.name = f"{prefix}{''.join(p.capitalize() for p in spec.name.value.split('_'))}"
        fields = {"id": Field("id", RID, Kind.TEXT, False)}
        for name in spec.filter_fields:
            kind, nullable = _kind(spec, name)
            fields[name] = Field(name, name, kind, nullable)
        self.fields = fields
        reserved = {RID, RID_ORD, BODY, VECTOR_MODEL, spec.text_field, self.terms_prop}
        clash = {f.key for f in fields.values() if f.name != "id"} & reserved
        if clash:  # a new filter field named like an internal property
            raise TypeError(f"{spec.name.value}: filter fields clash with {sorted(clash)}")

    @property
    def terms_prop(self) -> str | None:
        """The BM25-indexed property of a searchable collection (None otherwise)."""
        return None if self.spec.text_field is None else f"{self.spec.text_field}_terms"

    def uuid(self, record_id: str) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{self.spec.name.value}\x00{record_id}")

    @property
    def description(self) -> str:
        return (
            f"{_MARKER}{SCHEMA_VERSION}: {self.spec.name.value} records "
            f"({self.spec.model.__name__}); written by conversation-memory, do not edit"
        )

    def properties(self) -> list[Property]:
        def keyword(name: str) -> Property:  # exact-match text: filterable, never BM25
            return Property(
                name=name,
                data_type=DataType.TEXT,
                tokenization=Tokenization.FIELD,
                index_filterable=True,
                index_searchable=False,
            )

        props = [keyword(RID), keyword(RID_ORD)]
        for field in self.fields.values():
            if field.name == "id":
                continue
            if field.kind is Kind.TEXT:
                props += [keyword(field.prop), keyword(field.key)]
            else:
                props.append(
                    Property(
                        name=field.prop,
                        data_type=field.kind.value,
                        index_filterable=True,
                        index_range_filters=field.kind is not Kind.BOOL,
                    )
                )
        if self.spec.text_field is not None and self.terms_prop is not None:
            props.append(
                Property(
                    name=self.spec.text_field,
                    data_type=DataType.TEXT,
                    index_filterable=False,
                    index_searchable=False,
                )
            )
            props.append(
                Property(
                    name=self.terms_prop,
                    data_type=DataType.TEXT,
                    tokenization=Tokenization.WHITESPACE,  # terms come analysed
                    index_filterable=False,
                    index_searchable=True,
                )
            )
            props.append(keyword(VECTOR_MODEL))
        props.append(
            Property(
                name=BODY, data_type=DataType.TEXT, index_filterable=False, index_searchable=False
            )
        )
        return props

    def inverted_index(self) -> Any:
        # Stopwords are dropped from queries by fts_query_terms, as on SQLite.
        return Configure.inverted_index(
            index_null_state=True,
            stopwords_preset=StopwordsPreset.NONE,
            bm25_k1=self.bm25[0],
            bm25_b=self.bm25[1],
        )

    def encode(self, record: Record, model_id: str | None, terms: str = "") -> dict[str, Any]:
        """The properties of ``record``'s object (``terms``: its analysed text)."""
        props: dict[str, Any] = {RID: record.id, RID_ORD: ord_key(record.id)}
        for field in self.fields.values():
            if field.name == "id":
                continue
            value = field.encode(getattr(record, field.name))
            props[field.prop] = value
            if field.kind is Kind.TEXT:
                props[field.key] = None if value is None else ord_key(str(value))
        if self.spec.text_field is not None and self.terms_prop is not None:
            props[self.spec.text_field] = self.text(record)
            props[self.terms_prop] = terms
            props[VECTOR_MODEL] = model_id
        props[BODY] = record.model_dump_json()
        return props

    def text(self, record: Record) -> str:
        """The searchable text of ``record`` ("" for other collections)."""
        if self.spec.text_field is None:
            return ""
        return str(getattr(record, self.spec.text_field) or "")

    def field(self, name: str) -> Field:
        try:
            return self.fields[name]
        except KeyError:
            raise self._unknown({name}) from None

    def _unknown(self, names: set[str]) -> ValidationError:
        allowed = ", ".join((*self.spec.filter_fields, "id"))
        return ValidationError(
            f"Unknown filter field(s) {', '.join(sorted(names))} for collection "
            f"{self.spec.name.value!r}; allowed: {allowed}"
        )

    def compile(self, where: Where) -> Compiled:
        """``where`` as a Weaviate filter, with the SQLite backend's semantics."""
        unknown = where.fields() - set(self.fields)
        if unknown:
            raise self._unknown(unknown)
        parts: list[_Filters] = []
        empty = False
        for name, raw in where.eq.items():
            field = self.fields[name]
            value = field.operand(raw)
            if value is None:
                parts.append(Filter.by_property(field.key).is_none(True))
            elif value is _NOTHING:
                empty = True
            else:
                parts.append(Filter.by_property(field.key).equal(value))
        for name, raws in where.any_of.items():
            field = self.fields[name]
            if isinstance(raws, str | bytes):
                raise ValidationError(f"any_of[{name!r}] must be a list of values, not a string")
            values = [field.operand(raw) for raw in raws]
            present = list(dict.fromkeys(v for v in values if v is not None and v is not _NOTHING))
            alternatives: list[_Filters] = []
            if present:
                alternatives.append(Filter.by_property(field.key).contains_any(present))
            if any(v is None for v in values):
                alternatives.append(Filter.by_property(field.key).is_none(True))
            if alternatives:
                parts.append(_any(alternatives))
            else:
                empty = True
        for op, bounds in (("gte", where.gte), ("lt", where.lt)):
            for name, raw in bounds.items():
                field = self.fields[name]
                value = field.operand(raw, bound=op)
                if value is None:
                    raise ValidationError(f"The range bound on {name!r} must not be None")
                prop = Filter.by_property(field.key)
                parts.append(prop.greater_or_equal(value) if op == "gte" else prop.less_than(value))
        return Compiled(_all(parts), empty)

    # -- the same semantics, evaluated on records (for results read in bulk) ---------
    def value(self, field: Field, record: Record) -> Any:
        """``record``'s value of ``field`` as compared: the ``_ord`` key for text."""
        value = field.encode(record.id if field.name == "id" else getattr(record, field.name))
        if value is None or field.kind is not Kind.TEXT:
            return value
        return ord_key(str(value))

    def predicate(self, where: Where) -> Callable[[Record], bool]:
        """``where`` as a test of records, agreeing with :meth:`compile`."""
        tests: list[tuple[Field, Callable[[Any], bool]]] = []
        for name, raw in where.eq.items():
            field = self.fields[name]
            wanted = field.operand(raw)
            if wanted is _NOTHING:
                return _never
            tests.append((field, _equals(wanted)))
        for name, raws in where.any_of.items():
            field = self.fields[name]
            operands = [field.operand(raw) for raw in raws]
            allowed = {o for o in operands if o is not None and o is not _NOTHING}
            tests.append((field, _among(allowed, null=any(o is None for o in operands))))
        for name, raw in where.gte.items():
            field = self.fields[name]
            tests.append((field, _at_least(field.operand(raw, bound="gte"))))
        for name, raw in where.lt.items():
            field = self.fields[name]
            tests.append((field, _below(field.operand(raw, bound="lt"))))

        def matches(record: Record) -> bool:
            return all(test(self.value(field, record)) for field, test in tests)

        return matches

    def sort_key(self, field: Field) -> Callable[[Record], tuple[Any, ...]]:
        """Ascending (nulls first) order by ``field`` then id, as SQLite orders."""

        def key(record: Record) -> tuple[Any, ...]:
            value = self.value(field, record)
            return (value is not None, value, ord_key(record.id))

        return key


def _never(record: Record) -> bool:
    return False


def _equals(wanted: Any) -> Callable[[Any], bool]:
    return lambda value: bool(value == wanted)  # None == None: an eq-null condition


def _among(allowed: set[Any], *, null: bool) -> Callable[[Any], bool]:
    return lambda value: null if value is None else value in allowed


def _at_least(bound: Any) -> Callable[[Any], bool]:
    return lambda value: value is not None and bool(value >= bound)


def _below(bound: Any) -> Callable[[Any], bool]:
    return lambda value: value is not None and bool(value < bound)


def layouts(
    prefix: str = DEFAULT_PREFIX,
    bm25: tuple[float, float] = (1.2, 0.75),
    message_b: float = 0.3,
) -> dict[Collection, Layout[Any]]:
    """Every collection's layout; ``bm25``: the keyword ranking's ``(k1, b)``, set when
    a collection is created (messages: ``b = message_b``)."""
    check_prefix(prefix)
    return {
        collection: Layout(
            spec, prefix, (bm25[0], message_b) if collection is Collection.MESSAGES else bm25
        )
        for collection, spec in COLLECTIONS.items()
    }


def check_collection(layout: Layout, config: CollectionConfig, location: str) -> None:
    """Raise SchemaMismatchError unless ``config`` is ``layout``'s collection as this
    version writes it (extra properties are tolerated)."""
    where = f"Weaviate collection {config.name} at {location}"
    found = _MARKER_RE.search(config.description or "")
    if found is None:
        raise SchemaMismatchError(
            f"{where} exists but was not created by conversation-memory. Use another "
            "collection prefix (?prefix=... in the backend URL), or delete that collection."
        )
    version = int(found.group(1))
    if version > SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"{where} has schema version {version}, but this version of conversation-memory "
            f"only knows versions up to {SCHEMA_VERSION}. Upgrade conversation-memory "
            "(pip install -U 'conversation-memory[weaviate]') to open it."
        )
    if version < SCHEMA_VERSION:
        raise SchemaMismatchError(
            f"{where} has the older schema version {version} (this version writes "
            f"{SCHEMA_VERSION}). Copy your tenants to a new prefix with `convmem migrate`."
        )
    if not config.multi_tenancy_config.enabled:
        raise SchemaMismatchError(f"{where} has multi-tenancy disabled; it must be enabled.")
    have = {p.name: p.data_type for p in config.properties}
    problems = []
    for prop in layout.properties():
        if prop.name not in have:
            problems.append(f"{prop.name} is missing")
        elif have[prop.name] != prop.dataType:
            problems.append(
                f"{prop.name} is {have[prop.name].value}, expected {prop.dataType.value}"
            )
    if problems:
        raise SchemaMismatchError(
            f"{where} does not match schema version {SCHEMA_VERSION}: {'; '.join(problems)}. "
            "It was changed by hand or by another program; use another collection prefix."
        )
