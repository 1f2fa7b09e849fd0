"""Reading from Weaviate for the Weaviate backend: keyset paging, the search
queries, and turning objects back into records and vectors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any, Generic, cast

import numpy as np
import numpy.typing as npt
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort
from weaviate.collections import Collection as WeaviateCollection
from weaviate.collections.classes.filters import _Filters
from weaviate.collections.classes.internal import Object

from memory_core.backends.base import Hit, R, Vectors, Where
from memory_core.backends.weaviate_schema import (
    BODY,
    RID_ORD,
    VECTOR_MODEL,
    Field,
    Layout,
    vector_name,
)

__all__ = [
    "EVERYTHING",
    "Search",
    "export_pages",
    "record",
    "records",
    "scan",
]

PAGE = 1000  # objects per read page (well below any QUERY_MAXIMUM_RESULTS)
EVERYTHING = Filter.by_property(RID_ORD).is_none(False)  # every object has an id
Obj = Object[Any, Any]
Floats = npt.NDArray[np.float32]


def scan(
    target: WeaviateCollection[Any, Any],
    layout: Layout[R],
    flt: _Filters | None,
    where: Where,
    field: Field,
    descending: bool,
    want: int | None,
) -> Iterator[R]:
    """The records matching ``flt`` (= ``where``) ordered by ``field`` then id, at
    least the first ``want`` of them (all when None).

    Up to :data:`PAGE` matches come from one sorted query (Weaviate orders nulls
    first ascending, last descending, as SQLite does). Beyond that, the next pages
    follow with keyset filters -- but Weaviate sorts text by reading every match,
    so each page costs all the matches after it: when that adds up to more than
    the whole collection (``matches**2 / 2 PAGE > total``), the collection is
    read once through the cursor API instead and filtered and sorted here, with
    the same semantics (:meth:`Layout.predicate`, :meth:`Layout.sort_key`).
    """
    size = want if want is not None and want <= PAGE else PAGE + 1
    if size == 0:
        return
    ascending = not descending
    sort = Sort.by_property(RID_ORD, ascending=ascending)
    if field.name != "id":
        sort = Sort.by_property(field.key, ascending=ascending).by_property(
            RID_ORD, ascending=ascending
        )
    # Weaviate 1.39 cuts the matches of a lone range filter on a text property to
    # ``limit`` (in value order) *before* sorting them; inside an AND it does not.
    conditions = [flt, EVERYTHING] if flt is not None else []
    result = target.query.fetch_objects(
        filters=conjunction(conditions), sort=sort, limit=size, return_properties=[BODY]
    )
    if len(result.objects) < size or size == want:
        yield from (record(layout, obj) for obj in result.objects)
        return
    matched, total = count(target, flt), count(target, None)
    if matched * matched < 2 * PAGE * total:
        yield from keyset(target, layout, flt, field, descending)
        return
    test = layout.predicate(where)
    found = [r for r in records(layout, target) if test(r)]
    found.sort(key=layout.sort_key(field), reverse=descending)
    yield from found


def count(target: WeaviateCollection[Any, Any], flt: _Filters | None) -> int:
    result = target.aggregate.over_all(total_count=True, filters=flt)
    return int(result.total_count or 0)


def keyset(
    target: WeaviateCollection[Any, Any],
    layout: Layout[R],
    flt: _Filters | None,
    field: Field,
    descending: bool,
) -> Iterator[R]:
    """All matches in ``(field, id)`` order, :data:`PAGE` at a time, each page
    filtered to what follows the last one (nulls paged apart: they have no order)."""
    keyed = field.name != "id"
    segments: list[tuple[_Filters | None, bool]] = [(None, keyed)]
    if keyed and field.nullable:
        nulls = (Filter.by_property(field.key).is_none(True), False)
        values = (Filter.by_property(field.key).is_none(False), True)
        segments = [values, nulls] if descending else [nulls, values]
    ascending = not descending
    for segment, by_field in segments:
        sort = Sort.by_property(RID_ORD, ascending=ascending)
        if by_field:
            sort = Sort.by_property(field.key, ascending=ascending).by_property(
                RID_ORD, ascending=ascending
            )
        cursor: tuple[Any, str] | None = None
        while True:
            conditions = [c for c in (flt, segment) if c is not None]
            if cursor is not None:
                conditions.append(after(field.key if by_field else None, cursor, descending))
            conditions.append(EVERYTHING)  # never a lone (range) condition, see scan()
            result = target.query.fetch_objects(
                filters=conjunction(conditions),
                sort=sort,
                limit=PAGE,
                return_properties=list(dict.fromkeys([BODY, RID_ORD, field.key])),
            )
            yield from (record(layout, obj) for obj in result.objects)
            if len(result.objects) < PAGE:
                break
            last = result.objects[-1].properties
            cursor = (last.get(field.key) if by_field else None, str(last[RID_ORD]))


def after(key: str | None, cursor: tuple[Any, str], descending: bool) -> _Filters:
    """What follows ``cursor`` (sort value, id key) in ``(key, id)`` order."""
    value, rid = cursor
    by_id = Filter.by_property(RID_ORD)
    next_id = by_id.less_than(rid) if descending else by_id.greater_than(rid)
    if key is None:
        return next_id
    by_key = Filter.by_property(key)
    beyond = by_key.less_than(value) if descending else by_key.greater_than(value)
    return Filter.any_of([beyond, Filter.all_of([by_key.equal(value), next_id])])


def records(layout: Layout[R], target: WeaviateCollection[Any, Any]) -> Iterator[R]:
    """Every record of the tenant's collection, in object-id order (the cursor API)."""
    for obj in target.iterator(return_properties=[BODY], cache_size=PAGE):
        yield record(layout, obj)


def export_pages(
    layout: Layout[R], target: WeaviateCollection[Any, Any], size: int
) -> Iterator[tuple[list[R], Vectors | None]]:
    """Every record with its vector, in object-id order, in runs of at most ``size``
    records sharing one embedding model."""
    returned = [BODY, VECTOR_MODEL] if layout.spec.searchable else [BODY]
    # A generator: iter() of weaviate's iterator object rewinds it, and islice calls iter().
    objects = (
        obj
        for obj in target.iterator(
            include_vector=layout.spec.searchable, return_properties=returned, cache_size=size
        )
    )
    while page := list(islice(objects, size)):
        yield from vector_groups(layout, page)


class Search(Generic[R]):
    """One search's target, filter and limit, and the Weaviate queries that run it."""

    def __init__(
        self,
        target: WeaviateCollection[Any, Any],
        layout: Layout[R],
        flt: _Filters | None,
        limit: int,
    ) -> None:
        self.target, self.layout, self.flt, self.limit = target, layout, flt, limit
        assert layout.terms_prop is not None
        self.terms_prop = layout.terms_prop

    def _hits(self, objects: Sequence[Obj], score: Any) -> list[Hit[R]]:
        hits = [Hit(record=record(self.layout, o), score=float(score(o))) for o in objects]
        hits.sort(key=lambda hit: (-hit.score, hit.record.id))
        return hits

    def keyword(self, terms: list[str]) -> list[Hit[R]]:
        result = self.target.query.bm25(
            " ".join(terms),
            query_properties=[self.terms_prop],
            filters=self.flt,
            limit=self.limit,
            return_metadata=MetadataQuery(score=True),
            return_properties=[BODY],
        )
        return self._hits(result.objects, lambda o: o.metadata.score or 0.0)

    def near_vector(self, query: Floats, name: str) -> list[Hit[R]]:
        result = self.target.query.near_vector(
            query.tolist(),
            target_vector=name,
            filters=self.flt,
            limit=self.limit,
            return_metadata=MetadataQuery(distance=True),
            return_properties=[BODY],
        )
        return self._hits(result.objects, lambda o: 1.0 - (o.metadata.distance or 0.0))

    def near_text(self, text: str, name: str) -> list[Hit[R]]:
        result = self.target.query.near_text(
            text,
            target_vector=name,
            filters=self.flt,
            limit=self.limit,
            return_metadata=MetadataQuery(distance=True),
            return_properties=[BODY],
        )
        return self._hits(result.objects, lambda o: 1.0 - (o.metadata.distance or 0.0))

    def hybrid(
        self, terms: list[str], query: Floats | None, name: str, alpha: float
    ) -> list[Hit[R]]:
        result = self.target.query.hybrid(
            " ".join(terms),
            vector=None if query is None else query.tolist(),
            alpha=alpha,
            fusion_type=HybridFusion.RELATIVE_SCORE,
            query_properties=[self.terms_prop],
            target_vector=name,
            filters=self.flt,
            limit=self.limit,
            return_metadata=MetadataQuery(score=True),
            return_properties=[BODY],
        )
        return self._hits(result.objects, lambda o: o.metadata.score or 0.0)


def record(layout: Layout[R], obj: Obj) -> R:
    return layout.spec.model.model_validate_json(obj.properties[BODY])


def conjunction(parts: list[_Filters]) -> _Filters | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)


def vector_groups(layout: Layout[R], page: list[Obj]) -> Iterator[tuple[list[R], Vectors | None]]:
    """``page`` as runs of consecutive records sharing an embedding model."""
    run: list[R] = []
    rows: list[list[float]] = []
    model: str | None = None
    for obj in page:
        this = obj.properties.get(VECTOR_MODEL) if layout.spec.searchable else None
        vector = obj.vector.get(vector_name(this)) if isinstance(this, str) else None
        if vector is None:
            this = None
        if run and this != model:
            yield run, vectors_of(model, rows)
            run, rows = [], []
        model = this
        run.append(record(layout, obj))
        if vector is not None:
            rows.append(cast(list[float], vector))
    if run:
        yield run, vectors_of(model, rows)


def vectors_of(model: str | None, rows: list[list[float]]) -> Vectors | None:
    return None if model is None else Vectors(model, np.asarray(rows, dtype=np.float32))
