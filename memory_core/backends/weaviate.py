"""The Weaviate backend: the backend protocol on a Weaviate cluster (``weaviate-client`` v4).

Install with ``pip install 'conversation-memory[weaviate]'`` and point the
engine at a server with ``CONVMEM_BACKEND=weaviate://host:8080`` (see
:mod:`memory_core.backends.weaviate_connect` for the URL forms and
:mod:`memory_core.backends.weaviate_schema` for how records are stored).

How the protocol maps onto Weaviate:

- **Tenants** are Weaviate tenants: every collection has multi-tenancy on
  (automatic tenant creation off, so an unknown tenant is a ``NotFoundError``
  rather than a silently created partition); ``ensure_tenant`` adds the tenant
  to every collection, ``drop_tenant`` removes it from every collection (which
  deletes its shards), ``list_tenants`` reads the profiles collection, the last
  one ``ensure_tenant`` writes and the first one ``drop_tenant`` clears.
- **Vectors** are supplied by the client and stored in one named vector per
  embedding model, so a search only ever compares vectors of its model.
  Optionally a Weaviate vectorizer module can embed messages server-side
  (``vectorizer=``); searches given no query vector then use it.
- **Search**: BM25 over the text field; ``near_vector`` with cosine distance
  (score = 1 - distance, the cosine similarity); native ``hybrid`` with
  relative-score fusion and ``alpha``, the rule :mod:`memory_core.backends.fusion`
  implements for the embedded backend.
- **Writes** go through gRPC batch inserts; objects Weaviate rejects raise a
  ``StorageError`` naming them. Weaviate has no transactions: ``batch()`` groups
  nothing, and a failure part-way through a large ``upsert`` leaves the earlier
  chunks written (the error says so; repeating the call is safe).
- **Reads**: ``find`` sorts up to 1,000 matches on the server and reads larger
  result sets through the cursor API, and ``export`` uses the cursor API, so
  neither is bound by the server's ``QUERY_MAXIMUM_RESULTS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from types import TracebackType
from typing import Any

import weaviate
from weaviate.classes.config import Configure, ConsistencyLevel, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter
from weaviate.classes.tenants import Tenant
from weaviate.collections import Collection as WeaviateCollection
from weaviate.collections.classes.config_vectors import _VectorConfigCreate
from weaviate.exceptions import UnexpectedStatusCodeError, WeaviateBaseError

from memory_core.backends.base import (
    ALL,
    COLLECTIONS,
    Collection,
    Hit,
    R,
    SearchMode,
    Vectors,
    Where,
    check_records,
    check_search,
    query_vector,
    unit_vectors,
)
from memory_core.backends.fusion import relative_score_fusion
from memory_core.backends.sqlite_keyword import check_bm25
from memory_core.backends.weaviate_connect import parse_weaviate_url
from memory_core.backends.weaviate_query import (
    EVERYTHING,
    Search,
    export_pages,
    scan,
)
from memory_core.backends.weaviate_query import record as to_record
from memory_core.backends.weaviate_schema import (
    BODY,
    DEFAULT_PREFIX,
    Layout,
    check_collection,
    layouts,
    valid_tenant,
    vector_name,
)
from memory_core.backends.weaviate_text import analyze, query_terms
from memory_core.errors import (
    ConfigError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from memory_core.models import Record

__all__ = ["WeaviateBackend"]

_REGISTRY = Collection.PROFILES  # list_tenants reads its tenants (see the module docstring)
_ID_CHUNK = 1000  # ids per get() query


class WeaviateBackend:
    """The Weaviate :class:`~memory_core.backends.base.Backend`.

    ``client`` is a connected ``weaviate.WeaviateClient`` (closed by :meth:`close`
    unless ``owns_client=False``); :meth:`from_url` connects one. Collections are
    named ``<prefix><Name>`` and created on first use. ``vector_index`` is the
    index configuration of each model's named vector (default: HNSW, cosine; keep
    the cosine distance, scores are cosine similarities); ``vectorizer`` a named
    ``Configure.Vectors.*`` config with a vectorizer module, added to the
    searchable collections when they are created and used by searches given no
    query vector. ``batch_size`` is the number of objects per gRPC batch.
    ``replication_factor`` > 1 keeps that many copies of every tenant's shard in a
    cluster (set when the collections are created, with asynchronous replication
    repairing a replica that was down); ``consistency`` (``ONE``, ``QUORUM``,
    ``ALL``) is how many replicas answer each read and acknowledge each write.
    ``bm25_k1``, ``bm25_b``: keyword ranking's BM25 parameters, set in each
    collection's ``invertedIndexConfig`` when it is created (``bm25_message_b``:
    the messages collection's ``b``, short turns being over-penalised by full
    length normalisation).
    """

    name = "weaviate"

    def __init__(
        self,
        client: weaviate.WeaviateClient,
        *,
        prefix: str = DEFAULT_PREFIX,
        location: str | None = None,
        owns_client: bool = True,
        batch_size: int = 500,
        vector_index: Any = None,
        vectorizer: _VectorConfigCreate | None = None,
        replication_factor: int = 1,
        consistency: str | None = None,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        bm25_message_b: float = 0.3,
    ) -> None:
        self._client = client
        self._replication = max(1, int(replication_factor))
        self._consistency = None if consistency is None else ConsistencyLevel(consistency)
        self._owns_client = owns_client
        self._closed = False
        self.location = location or "the configured Weaviate server"
        self._batch_size = max(1, batch_size)
        self._vector_index = vector_index
        self._vectorizer = vectorizer
        self._lock = threading.Lock()
        self._vector_names: dict[Collection, set[str]] = {}  # named vectors per collection
        try:
            if vectorizer is not None and not vectorizer.name:
                raise ValidationError("The vectorizer config needs a name, e.g. name='server'")
            self._layouts = layouts(
                prefix, check_bm25(bm25_k1, bm25_b), check_bm25(bm25_k1, bm25_message_b)[1]
            )
            self._collections = {
                c: client.collections.use(layout.name, skip_argument_validation=True)
                for c, layout in self._layouts.items()
            }
            with self._errors():
                self._setup()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        api_key: str | None = None,
        grpc_port: int | None = None,
        prefix: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
        **options: Any,
    ) -> WeaviateBackend:
        """Connect to ``weaviate://host:port`` (or ``weaviates://`` for TLS), with an
        API key for Weaviate Cloud or a self-hosted server with authentication."""
        target = parse_weaviate_url(url, grpc_port=grpc_port)
        auth = Auth.api_key(api_key) if api_key else None
        config = AdditionalConfig(
            timeout=Timeout(init=10, query=timeout, insert=max(timeout, 120.0))
        )
        try:
            if target.is_cloud:
                if auth is None:
                    raise ConfigError(
                        f"Weaviate Cloud ({target.host}) needs an API key: set weaviate_api_key "
                        "(CONVMEM_WEAVIATE_API_KEY)"
                    )
                client = weaviate.connect_to_weaviate_cloud(
                    target.http_url,
                    auth_credentials=auth,
                    headers=headers,
                    additional_config=config,
                    skip_init_checks=True,
                )
            else:
                client = weaviate.connect_to_custom(
                    http_host=target.host,
                    http_port=target.port,
                    http_secure=target.secure,
                    grpc_host=target.grpc_host,
                    grpc_port=target.grpc_port,
                    grpc_secure=target.secure,
                    headers=headers,
                    additional_config=config,
                    auth_credentials=auth,
                    skip_init_checks=True,  # no version lookup on pypi.org
                )
        except WeaviateBaseError as exc:
            raise StorageError(
                f"Could not connect to Weaviate at {target}: {exc}. Check that the server "
                "is running and reachable, and the API key if it needs one."
            ) from exc
        options.setdefault("replication_factor", target.replication)
        options.setdefault("consistency", target.consistency)
        return cls(
            client,
            prefix=prefix or target.prefix or DEFAULT_PREFIX,
            location=str(target),
            **options,
        )

    def __repr__(self) -> str:
        return f"WeaviateBackend({self.location!r})"

    def __enter__(self) -> WeaviateBackend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------
    def _setup(self) -> None:
        configs = self._client.collections.list_all(simple=False)
        created: list[Collection] = []
        for collection, layout in self._layouts.items():
            config = configs.get(layout.name)
            if config is None:
                self._create(collection, layout)
                created.append(collection)
                config = self._client.collections.export_config(layout.name)
            check_collection(layout, config, self.location)
            if layout.spec.searchable:
                self._vector_names[collection] = set(config.vector_config or {})
        if created and _REGISTRY not in created:
            # A release added collections to an existing store: they get its tenants.
            tenants = [Tenant(name=t) for t in self._collections[_REGISTRY].tenants.get()]
            for collection in created:
                if tenants:
                    self._collections[collection].tenants.create(tenants)

    def _create(self, collection: Collection, layout: Layout) -> None:
        vectors = [
            # A collection always has a vector; this one is never written or indexed.
            Configure.Vectors.self_provided(
                name="default", vector_index_config=Configure.VectorIndex.none()
            )
        ]
        if layout.spec.searchable and self._vectorizer is not None:
            vectors.append(self._vectorizer)
        try:
            self._client.collections.create(
                layout.name,
                description=layout.description,
                multi_tenancy_config=Configure.multi_tenancy(
                    enabled=True, auto_tenant_creation=False, auto_tenant_activation=True
                ),
                inverted_index_config=layout.inverted_index(),
                properties=layout.properties(),
                vector_config=vectors,
                replication_config=(
                    # async replication (repairing a replica that was down) is on by
                    # default for a factor > 1 since Weaviate 1.38
                    Configure.replication(factor=self._replication)
                    if self._replication > 1
                    else None
                ),
            )
        except UnexpectedStatusCodeError as exc:
            if "already exists" not in str(exc):  # else: another process was first
                raise

    def _known_vector(self, layout: Layout, model_id: str) -> str | None:
        name = vector_name(model_id)
        with self._lock:
            return name if name in self._vector_names.get(layout.spec.name, ()) else None

    def _vector(self, layout: Layout, model_id: str, *, create: bool) -> str | None:
        """The named vector of ``model_id``, added to the schema if ``create``; None if absent."""
        name = self._known_vector(layout, model_id)
        if name is not None:
            return name
        name = vector_name(model_id)
        config = self._client.collections.export_config(layout.name)
        if name not in (config.vector_config or {}) and create:
            index = self._vector_index or Configure.VectorIndex.hnsw(
                distance_metric=VectorDistances.COSINE
            )
            self._collections[layout.spec.name].config.add_vector(
                vector_config=Configure.Vectors.self_provided(name=name, vector_index_config=index)
            )
            config = self._client.collections.export_config(layout.name)
        with self._lock:
            names = self._vector_names[layout.spec.name] = set(config.vector_config or {})
            return name if name in names else None

    # -- plumbing ------------------------------------------------------------------
    @contextmanager
    def _errors(self, tenant: str | None = None) -> Iterator[None]:
        try:
            yield
        except WeaviateBaseError as exc:
            raise self._translate(exc, tenant) from exc

    def _translate(self, exc: WeaviateBaseError, tenant: str | None) -> Exception:
        text = str(exc)
        lower = text.lower()
        if tenant is not None and "tenant not found" in lower:
            return _missing(tenant)
        if "vector dimensions do not match" in lower or "vector lengths don't match" in lower:
            return ValidationError(
                "The vectors do not have the dimensions of the vectors stored for this "
                f"model; a different model needs a different model_id. (Weaviate: {text})"
            )
        hint = ""
        if "connect" in lower or "unavailable" in lower or "deadline" in lower:
            hint = " Check that the server is running and reachable."
        return StorageError(f"Weaviate at {self.location} failed: {text}.{hint}")

    def _open(self) -> None:
        if self._closed:
            raise StorageError(f"{self!r} is closed; open a new backend to use the store.")

    def _layout(self, collection: Collection[R]) -> Layout[R]:
        """The layout of ``collection`` (also accepts a collection's name, as callers may pass)."""
        self._open()
        try:
            return self._layouts[Collection(collection)]
        except ValueError:
            known = ", ".join(c.value for c in Collection)
            raise ValidationError(f"Unknown collection {collection!r}; known: {known}") from None

    def _tenant(self, layout: Layout, tenant: str) -> WeaviateCollection[Any, Any]:
        """The collection as seen by ``tenant`` (whose existence the next call checks)."""
        if not valid_tenant(tenant):
            raise _missing(tenant)  # Weaviate cannot hold such a tenant
        handle = self._collections[layout.spec.name].with_tenant(tenant)
        if self._consistency is not None:
            handle = handle.with_consistency_level(self._consistency)
        return handle

    def _require_tenant(self, layout: Layout, tenant: str) -> None:
        """For calls that would not otherwise reach the tenant (nothing to read or write)."""
        if not valid_tenant(tenant):
            raise _missing(tenant)
        with self._errors(tenant):
            exists = self._collections[layout.spec.name].tenants.exists(tenant)
        if not exists:
            raise _missing(tenant)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            self._client.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        # Weaviate has no transactions: calls inside apply one by one (NON_ATOMIC_BATCH).
        self._open()
        yield

    # -- tenants ---------------------------------------------------------------------
    def ensure_tenant(self, tenant: str) -> None:
        self._open()
        if not isinstance(tenant, str) or not tenant.strip():
            raise ValidationError(f"A tenant name must be a non-empty string, got {tenant!r}")
        if not valid_tenant(tenant):
            raise ValidationError(
                f"Invalid tenant name {tenant!r} for Weaviate: use 1-64 letters, digits, '_' or '-'"
            )
        order = [c for c in self._layouts if c is not _REGISTRY] + [_REGISTRY]
        with self._errors():
            for collection in order:  # idempotent: creating an existing tenant is a no-op
                self._collections[collection].tenants.create([Tenant(name=tenant)])

    def list_tenants(self) -> list[str]:
        self._open()
        with self._errors():
            return sorted(self._collections[_REGISTRY].tenants.get())

    def drop_tenant(self, tenant: str) -> dict[str, int]:
        self._open()
        counts = {collection.value: 0 for collection in COLLECTIONS}
        if not valid_tenant(tenant):
            return counts
        order = [_REGISTRY] + [c for c in self._layouts if c is not _REGISTRY]
        with self._errors():
            present = [c for c in order if self._collections[c].tenants.exists(tenant)]
            for collection in present:
                result = self._tenant(self._layouts[collection], tenant).aggregate.over_all(
                    total_count=True
                )
                counts[collection.value] = int(result.total_count or 0)
            for collection in present:
                self._collections[collection].tenants.remove([tenant])
        return counts

    # -- records -----------------------------------------------------------------------
    def upsert(
        self,
        tenant: str,
        collection: Collection[R],
        records: Sequence[R],
        vectors: Vectors | None = None,
    ) -> None:
        layout = self._layout(collection)
        spec = layout.spec
        records = list(records)
        check_records(spec, tenant, records)
        unit = None if vectors is None else unit_vectors(spec, vectors, len(records))
        keep = sorted({record.id: i for i, record in enumerate(records)}.values())  # last wins
        target = self._tenant(layout, tenant)
        if not keep:
            self._require_tenant(layout, tenant)
            return
        model_id = None if vectors is None else vectors.model_id
        name = None
        if model_id is not None:
            name = self._known_vector(layout, model_id)
            if name is None:  # a new model: check the tenant before the schema grows
                self._require_tenant(layout, tenant)
                with self._errors(tenant):
                    name = self._vector(layout, model_id, create=True)
        terms = analyze([layout.text(records[i]) for i in keep]) if spec.searchable else []
        objects = [
            DataObject(
                properties=layout.encode(records[i], model_id, terms[n] if terms else ""),
                uuid=layout.uuid(records[i].id),
                vector=None if unit is None or name is None else {name: unit[i].tolist()},
            )
            for n, i in enumerate(keep)
        ]
        done, rejected, reasons = 0, [], []
        for start in range(0, len(objects), self._batch_size):
            chunk = objects[start : start + self._batch_size]
            try:
                with self._errors(tenant):
                    result = target.data.insert_many(chunk)
            except StorageError as exc:
                if done:
                    raise StorageError(
                        f"{exc} {done} of the call's {len(objects)} records were written before "
                        "the failure and stay written (Weaviate has no transactions); repeat "
                        "the call once the cause is fixed."
                    ) from exc
                raise
            for index, error in sorted(result.errors.items()):
                rejected.append(records[keep[done + index]])
                reasons.append(error.message)
            done += len(chunk)
        if rejected:
            raise _rejected(layout, tenant, rejected, reasons, len(objects) - len(rejected))

    def get(self, tenant: str, collection: Collection[R], ids: Sequence[str]) -> list[R]:
        layout = self._layout(collection)
        if isinstance(ids, str):
            raise ValidationError("get() takes a list of ids, not a single string")
        wanted = list(dict.fromkeys(ids))
        target = self._tenant(layout, tenant)
        if not wanted:
            self._require_tenant(layout, tenant)
            return []
        found: dict[str, R] = {}
        with self._errors(tenant):
            self._fetch(layout, target, wanted, found)
            if self._consistency is not None and len(found) < len(wanted):
                self._fetch_lagging(layout, target, [i for i in wanted if i not in found], found)
        return [found[i] for i in wanted if i in found]

    def _fetch(
        self, layout: Layout[R], target: Any, ids: Sequence[str], found: dict[str, R]
    ) -> None:
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            result = target.query.fetch_objects(
                filters=Filter.by_id().contains_any([layout.uuid(i) for i in chunk]),
                limit=len(chunk),
                return_properties=[BODY],
            )
            for obj in result.objects:
                record = to_record(layout, obj)
                found[record.id] = record

    def _fetch_lagging(
        self, layout: Layout[R], target: Any, missing: list[str], found: dict[str, R]
    ) -> None:
        """On a replicated cluster a filtered read is served by one replica, which may
        not have applied a write the others acknowledged yet. Ids that exist at the
        configured consistency level (a replicated existence check) are read again
        until that replica has them (a few seconds at most; then they are left out)."""
        exists = [i for i in missing[:_ID_CHUNK] if target.data.exists(layout.uuid(i))]
        delay = 0.02
        while exists and delay < 3.0:
            time.sleep(delay)
            self._fetch(layout, target, exists, found)
            exists = [i for i in exists if i not in found]
            delay *= 2

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
        layout = self._layout(collection)
        compiled = layout.compile(where)
        name = order_by or "id"
        if name not in layout.fields:
            raise ValidationError(
                f"Cannot order {layout.spec.name.value!r} by {order_by!r}; "
                f"order by one of: id, {', '.join(layout.spec.filter_fields)}"
            )
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValidationError(f"limit must be None or >= 0, got {limit!r}")
        if offset < 0:
            raise ValidationError(f"offset must be >= 0, got {offset!r}")
        target = self._tenant(layout, tenant)
        if compiled.empty or limit == 0:
            self._require_tenant(layout, tenant)
            return []
        want = None if limit is None else offset + limit
        field = layout.fields[name]
        with self._errors(tenant):
            found = scan(target, layout, compiled.filter, where, field, descending, want)
            return list(islice(found, offset, want))

    def count(self, tenant: str, collection: Collection, where: Where = ALL) -> int:
        layout = self._layout(collection)
        compiled = layout.compile(where)
        target = self._tenant(layout, tenant)
        if compiled.empty:
            self._require_tenant(layout, tenant)
            return 0
        with self._errors(tenant):
            result = target.aggregate.over_all(total_count=True, filters=compiled.filter)
        return int(result.total_count or 0)

    def delete(self, tenant: str, collection: Collection, where: Where) -> int:
        layout = self._layout(collection)
        compiled = layout.compile(where)
        target = self._tenant(layout, tenant)
        if compiled.empty:
            self._require_tenant(layout, tenant)
            return 0
        # Counted by object id: with replicas, a repeated call may meet an object again
        # on a replica that has not applied the first deletion yet.
        deleted: set[str] = set()
        with self._errors(tenant):
            while True:  # one call deletes at most QUERY_MAXIMUM_RESULTS objects
                result = target.data.delete_many(where=compiled.filter or EVERYTHING, verbose=True)
                deleted.update(str(o.uuid) for o in result.objects or () if o.successful)
                if result.failed:
                    raise StorageError(
                        f"Weaviate at {self.location} failed to delete {result.failed} of "
                        f"{result.matches} matching {layout.spec.name.value} records in tenant "
                        f"{tenant!r} ({len(deleted)} deleted); repeat the call to finish."
                    )
                if result.successful == 0:
                    return len(deleted)

    def export(
        self, tenant: str, collection: Collection[R], batch_size: int = 500
    ) -> Iterator[tuple[list[R], Vectors | None]]:
        """Every record of the tenant's collection, page by page, with its vector
        (see :class:`~memory_core.backends.base.SupportsExport`), in object-id order
        through Weaviate's cursor API."""
        layout = self._layout(collection)
        target = self._tenant(layout, tenant)
        self._require_tenant(layout, tenant)
        with self._errors(tenant):
            yield from export_pages(layout, target, max(1, batch_size))

    # -- search ----------------------------------------------------------------------------
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
        layout = self._layout(collection)
        mode = check_search(layout.spec, mode, text, limit, alpha)
        compiled = layout.compile(where)
        query = None
        if mode is not SearchMode.KEYWORD and (vector is not None or self._vectorizer is None):
            query = query_vector(vector)
        elif mode is SearchMode.VECTOR and not isinstance(text, str):
            raise ValidationError("vector search needs a query vector (or text, with a vectorizer)")
        target = self._tenant(layout, tenant)
        terms = query_terms(text) if isinstance(text, str) else []
        if compiled.empty or limit == 0 or (mode is SearchMode.KEYWORD and not terms):
            self._require_tenant(layout, tenant)
            return []
        run = Search(target, layout, compiled.filter, limit)
        with self._errors(tenant):
            if mode is SearchMode.KEYWORD:
                return run.keyword(terms)
            if query is None:  # the server-side vectorizer embeds the query
                assert self._vectorizer is not None and self._vectorizer.name is not None
                server = self._vectorizer.name
                if mode is SearchMode.VECTOR:
                    return run.near_text(str(text), server)
                return run.hybrid(terms, None, server, alpha)
            name = self._vector(layout, query[0], create=False)
            if name is None:  # nothing was ever stored with this model
                self._require_tenant(layout, tenant)
                if mode is SearchMode.VECTOR or not terms:
                    return []
                return relative_score_fusion(run.keyword(terms), [], alpha, limit)
            if mode is SearchMode.VECTOR:
                return run.near_vector(query[1], name)
            if not terms:
                return relative_score_fusion([], run.near_vector(query[1], name), alpha, limit)
            return run.hybrid(terms, query[1], name, alpha)


# -- helpers ------------------------------------------------------------------------------


def _missing(tenant: str) -> NotFoundError:
    return NotFoundError(
        f"Tenant {tenant!r} does not exist; create the tenant first with "
        f"ensure_tenant({tenant!r}).",
        kind="tenant",
    )


def _rejected(
    layout: Layout, tenant: str, records: Sequence[Record], messages: list[str], written: int
) -> StorageError:
    shown = "; ".join(f"{r.id!r}: {m}" for r, m in zip(records[:10], messages[:10], strict=True))
    more = f" (and {len(records) - 10} more)" if len(records) > 10 else ""
    return StorageError(
        f"Weaviate rejected {len(records)} {layout.spec.name.value} record(s) in tenant "
        f"{tenant!r}: {shown}{more}. The other {written} record(s) of the call were written "
        "(Weaviate has no transactions); fix the cause and repeat the call."
    )
