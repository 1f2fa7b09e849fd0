"""The embedded backend: one SQLite file, FTS5 for BM25, exact vector search with numpy.

Storage layout and migrations are described in
:mod:`memory_core.backends.sqlite_migrations`. In short: one table per
collection keyed by ``(tenant, id)`` holding the record's JSON ``body`` plus one
column per filter field; messages also hold a float32 unit vector with its model
id and are indexed in the FTS5 table ``messages_fts``, whose ``scope`` column
carries a tenant token and a profile token so keyword queries are narrowed
inside the FTS index itself (``scope`` has weight 0 in ``bm25``).

Concurrency: each thread gets its own connection (WAL mode, so readers see a
consistent snapshot and never block on the writer). Writes from this process
are serialised by one re-entrant lock and run in ``BEGIN IMMEDIATE``
transactions; other processes are held off by SQLite's own locking and
``busy_timeout``. ``batch()`` opens a transaction on the calling thread that
nested calls join (as savepoints, so a failed inner call undoes only itself).

Vector search reads the candidate rows' vectors straight from SQLite when the
filter narrows to a few thousand rows (a profile's messages); larger candidate
sets use an in-process float32 matrix per ``(tenant, collection, model id)``,
valid while the ``collection_versions`` row that every write bumps (from any
connection or process, in the same transaction) still has the version the
matrix was built at.

Erasure: rows are zeroed as they are deleted (``secure_delete``), but FTS5 keeps
deleted terms in old index segments and the WAL keeps old pages until they are
merged and checkpointed. Every transaction that deletes rows or replaces indexed
text therefore records a purge job (table ``purge_jobs``) as part of itself;
:meth:`SQLiteBackend.purge_deleted` does the work and removes a job only once the
WAL checkpoint after it succeeded, and opening a store finishes jobs a crash or a
long read transaction left pending.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic

import numpy as np
import numpy.typing as npt

from memory_core.backends.base import (
    ALL,
    COLLECTIONS,
    Collection,
    CollectionSpec,
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
from memory_core.backends.sqlite_migrations import (
    IN_CHUNK,
    STATEMENTS,
    Filter,
    check_columns,
    compile_where,
    fts_match,
    migrate,
)
from memory_core.errors import NotFoundError, StorageError, ValidationError

__all__ = ["SQLiteBackend", "fts_query_terms"]

_F32 = np.dtype("<f4")  # stored vector layout, independent of the host's byte order
_DIRECT_VECTOR_ROWS = 4096  # up to this many candidates, read vectors from SQLite directly
_FTS_TABLES = frozenset(sql.fts for sql in STATEMENTS.values() if sql.spec.searchable)
_MAX_QUERY_TERMS = 64
_TOKEN = re.compile(r"[^\W_]+")
# Very common English words, dropped from keyword queries so that questions such
# as "What did Caroline do ..." are ranked by their content words.
_STOPWORDS = frozenset(
    _TOKEN.findall(
        """
    a about after all also am an and any are as at be been being but by can could d did
    do does doing for from had has have having he her hers him his how i if in into is
    it its just ll m me my no nor not of on or our ours re s she should so some such t
    than that the their theirs them then there these they this those to too until ve
    very was we were what when where which while who whom whose why will with would you
    your yours
    """
    )
)


def fts_query_terms(text: str) -> list[str]:
    """The word tokens of ``text`` a keyword query searches for.

    Lower-cased, de-duplicated, stopwords dropped (unless nothing else is left);
    never contains FTS5 syntax, so any user text is safe to search for.
    """
    tokens = list(dict.fromkeys(token.casefold() for token in _TOKEN.findall(text)))
    kept = [token for token in tokens if token not in _STOPWORDS]
    return (kept or tokens)[:_MAX_QUERY_TERMS]


def _spec(collection: Collection[R]) -> CollectionSpec[R]:
    """The spec of ``collection`` (also accepts a collection's name, as callers may pass)."""
    try:
        return Collection(collection).spec
    except ValueError:
        known = ", ".join(c.value for c in Collection)
        raise ValidationError(f"Unknown collection {collection!r}; known: {known}") from None


_Ids = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float32]
_Query = tuple[str, _Floats]  # model id, unit query vector


@dataclass(frozen=True)
class _Scope(Generic[R]):
    """What one search reads: a snapshot, a collection, a tenant and a filter."""

    conn: sqlite3.Connection
    spec: CollectionSpec[R]
    tenant: str
    flt: Filter


@dataclass(frozen=True)
class _VectorMatrix:
    """Every stored vector of one model in one tenant's collection, as of ``version``."""

    version: int
    rids: _Ids  # ascending
    matrix: _Floats  # (len(rids), d)

    @property
    def nbytes(self) -> int:
        return int(self.rids.nbytes + self.matrix.nbytes)


def _matrix(rows: list[Any]) -> tuple[_Ids, _Floats]:
    """``(rid, vector blob)`` rows as ids and a matrix (rows of another width dropped)."""
    if not rows:
        return np.empty(0, np.int64), np.empty((0, 0), np.float32)
    width = len(rows[0][1])
    blob = b"".join(row[1] for row in rows)
    if len(blob) != width * len(rows):  # defensive: only written by a buggy or racing writer
        rows = [row for row in rows if len(row[1]) == width]
        blob = b"".join(row[1] for row in rows)
    rids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return rids, np.frombuffer(blob, dtype=_F32).reshape(len(rows), width // 4)


def _scores(matrix: _Floats, query: _Query) -> _Floats:
    """Cosine similarity of each (unit) row with the (unit) query."""
    model_id, q = query
    if not len(matrix):
        return np.empty(0, np.float32)
    if matrix.shape[1] != q.shape[0]:
        raise ValidationError(
            f"The query vector has {q.shape[0]} dimensions but stored vectors of model "
            f"{model_id!r} have {matrix.shape[1]}"
        )
    return matrix @ q


def _bodies(
    conn: sqlite3.Connection, spec: CollectionSpec, tenant: str, column: str, keys: list[Any]
) -> dict[Any, str]:
    """``column`` value -> JSON body of the tenant's rows whose ``column`` is in ``keys``."""
    found: dict[Any, str] = {}
    tenant_term = "+tenant" if column == "rid" else "tenant"  # + : look rids up by rowid
    for start in range(0, len(keys), IN_CHUNK):
        chunk = keys[start : start + IN_CHUNK]
        rows = conn.execute(
            f"SELECT {column}, body FROM {spec.name.value} "
            f"WHERE {tenant_term} = ? AND {column} IN ({', '.join('?' * len(chunk))})",
            (tenant, *chunk),
        )
        found.update((row[0], row[1]) for row in rows)
    return found


def _exported(model: str | None, blobs: list[bytes]) -> Vectors | None:
    """Stored vector blobs of one model as :class:`Vectors` (None: no vectors)."""
    if model is None:
        return None
    matrix = np.frombuffer(b"".join(blobs), dtype=_F32).reshape(len(blobs), -1)
    return Vectors(model, matrix.astype(np.float32))


class _Conn:
    """One thread's connection and how deep it is in write transactions."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.depth = 0


def _release(
    conns: dict[int, sqlite3.Connection], lock: threading.RLock, conn: sqlite3.Connection
) -> None:
    with lock:
        conns.pop(id(conn), None)
    conn.close()


class SQLiteBackend:
    """The embedded :class:`~memory_core.backends.base.Backend`: one SQLite file at ``path``."""

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        vector_cache_bytes: int = 1 << 30,
        purge_timeout: float = 5.0,
    ) -> None:
        """``purge_timeout``: seconds a purge waits for other connections' read
        transactions to end before it leaves its job pending (see :meth:`purge_deleted`)."""
        self.path = Path(path)
        self._busy_ms = int(busy_timeout * 1000)
        self._purge_timeout = max(0.0, float(purge_timeout))
        self._closed = False
        self._local = threading.local()
        self._conns: dict[int, sqlite3.Connection] = {}
        self._conns_lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, str, str], _VectorMatrix] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_budget = vector_cache_bytes
        try:
            with self._errors(), self._write() as conn:
                migrate(conn, str(self.path))
                check_columns(conn, str(self.path))
                pending = conn.execute("SELECT 1 FROM purge_jobs LIMIT 1").fetchone()
            if pending is not None:  # left by a crash or a reader: finish it now
                self._purge()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteBackend({str(self.path)!r})"

    def __enter__(self) -> SQLiteBackend:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- connections and transactions -----------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"Could not switch {self.path} to WAL mode (got {mode!r}).")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA secure_delete = ON")  # deleted text is zeroed, not left
        except BaseException:
            conn.close()
            raise
        return conn

    def _holder(self) -> _Conn:
        if self._closed:
            raise StorageError(f"{self!r} is closed; open a new backend to use the store.")
        holder: _Conn | None = getattr(self._local, "holder", None)
        if holder is None:
            conn = self._connect()
            holder = _Conn(conn)
            with self._conns_lock:
                if self._closed:  # close() ran while this thread was connecting
                    conn.close()
                    raise StorageError(f"{self!r} is closed; open a new backend to use the store.")
                self._conns[id(conn)] = conn
            # Closed when the thread ends (its thread-local dies) or on close().
            weakref.finalize(holder, _release, self._conns, self._conns_lock, conn)
            self._local.holder = holder
        return holder

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            hint = ""
            if "locked" in str(exc) or "busy" in str(exc):
                hint = " Another process held the write lock too long; retry the call."
            elif "unable to open" in str(exc):
                hint = " Check that its directory exists and is writable."
            raise StorageError(f"SQLite store {self.path} failed: {exc}.{hint}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on this thread's connection; joins an open one as a savepoint."""
        holder = self._holder()
        conn = holder.conn
        if holder.depth > 0:
            savepoint = f"cm_{holder.depth}"
            conn.execute(f"SAVEPOINT {savepoint}")
            holder.depth += 1
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                raise
            else:
                conn.execute(f"RELEASE {savepoint}")
            finally:
                holder.depth -= 1
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            holder.depth = 1
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                holder.depth = 0

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several statements (or the open write transaction)."""
        with self._errors():
            holder = self._holder()
            conn = holder.conn
            if conn.in_transaction:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._errors(), self._write() as conn:
            yield conn

    def close(self) -> None:
        with self._write_lock, self._conns_lock:
            self._closed = True
            conns = list(self._conns.values())
            self._conns.clear()
        with self._cache_lock:
            self._cache.clear()
        for conn in conns:
            conn.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._writing():
            yield

    # -- tenants ---------------------------------------------------------------
    @staticmethod
    def _require_tenant(conn: sqlite3.Connection, tenant: str) -> None:
        if conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone() is None:
            raise NotFoundError(
                f"Tenant {tenant!r} does not exist; create the tenant first with "
                f"ensure_tenant({tenant!r}).",
                kind="tenant",
            )

    def ensure_tenant(self, tenant: str) -> None:
        if not isinstance(tenant, str) or not tenant.strip():
            raise ValidationError(f"A tenant name must be a non-empty string, got {tenant!r}")
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO tenants (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (tenant, datetime.now(UTC).isoformat()),
            )

    def list_tenants(self) -> list[str]:
        with self._read() as conn:
            return sorted(row[0] for row in conn.execute("SELECT name FROM tenants"))

    def drop_tenant(self, tenant: str) -> dict[str, int]:
        counts = {collection.value: 0 for collection in COLLECTIONS}
        with self._writing() as conn:
            if conn.execute("DELETE FROM tenants WHERE name = ?", (tenant,)).rowcount == 0:
                return counts  # never created (or already dropped): nothing to do
            for collection, spec in COLLECTIONS.items():
                sql = STATEMENTS[collection]
                if spec.searchable:
                    conn.execute(
                        f"DELETE FROM {sql.fts} WHERE rowid IN "
                        f"(SELECT rid FROM {sql.table} WHERE tenant = ?)",
                        (tenant,),
                    )
                    self._note_purge(conn, sql.fts)
                    # The version row stays (bumped), so a re-created tenant never
                    # reuses a version number a cache may still hold.
                    self._bump(conn, tenant, spec)
                deleted = conn.execute(f"DELETE FROM {sql.table} WHERE tenant = ?", (tenant,))
                counts[collection.value] = deleted.rowcount
            self._note_purge(conn, "")
        with self._cache_lock:
            for key in [key for key in self._cache if key[0] == tenant]:
                del self._cache[key]
        return counts

    # -- records ---------------------------------------------------------------
    @staticmethod
    def _note_purge(conn: sqlite3.Connection, target: str) -> None:
        """Record a purge job in the open transaction: merge the FTS table ``target``
        (or, for "", only checkpoint the WAL). ``seq`` grows with every note."""
        conn.execute(
            "INSERT INTO purge_jobs (target, seq, created_at) VALUES (?, 1, ?) "
            "ON CONFLICT (target) DO UPDATE SET seq = seq + 1",
            (target, datetime.now(UTC).isoformat()),
        )

    @staticmethod
    def _bump(conn: sqlite3.Connection, tenant: str, spec: CollectionSpec) -> None:
        conn.execute(
            "INSERT INTO collection_versions (tenant, collection, version) VALUES (?, ?, 1) "
            "ON CONFLICT (tenant, collection) DO UPDATE SET version = version + 1",
            (tenant, spec.name.value),
        )

    @staticmethod
    def _version(conn: sqlite3.Connection, tenant: str, spec: CollectionSpec) -> int:
        row = conn.execute(
            "SELECT version FROM collection_versions WHERE tenant = ? AND collection = ?",
            (tenant, spec.name.value),
        ).fetchone()
        return 0 if row is None else int(row[0])

    def upsert(
        self,
        tenant: str,
        collection: Collection[R],
        records: Sequence[R],
        vectors: Vectors | None = None,
    ) -> None:
        spec = _spec(collection)
        sql = STATEMENTS[spec.name]
        records = list(records)
        check_records(spec, tenant, records)
        blobs = (
            None
            if vectors is None
            else [row.tobytes() for row in unit_vectors(spec, vectors, len(records))]
        )
        model_id = None if vectors is None else vectors.model_id
        keep = sorted({record.id: i for i, record in enumerate(records)}.values())  # last wins
        rows = [sql.row(tenant, records[i]) for i in keep]
        if spec.searchable:
            for row, i in zip(rows, keep, strict=True):
                row += [model_id, None if blobs is None else blobs[i]]
        with self._writing() as conn:
            self._require_tenant(conn, tenant)
            if not rows:
                return
            if not spec.searchable:
                conn.executemany(sql.upsert, rows)
                return
            if blobs is not None:
                stored = conn.execute(
                    f"SELECT length(vector) FROM {sql.table} "
                    "WHERE tenant = ? AND vector_model = ? LIMIT 1",
                    (tenant, model_id),
                ).fetchone()
                width = len(blobs[0]) if blobs else 0
                if stored is not None and stored[0] != width:
                    raise ValidationError(
                        f"Stored vectors of model {model_id!r} have {stored[0] // 4} dimensions, "
                        f"these have {width // 4}; a different model needs a different model_id"
                    )
            replaced = conn.executemany(sql.fts_delete_one, [(tenant, records[i].id) for i in keep])
            if replaced.rowcount > 0:  # old text stays in FTS segments until purge_deleted
                self._note_purge(conn, sql.fts)
            conn.executemany(sql.upsert, rows)
            conn.executemany(sql.fts_insert, [sql.fts_row(tenant, records[i]) for i in keep])
            self._bump(conn, tenant, spec)

    def get(self, tenant: str, collection: Collection[R], ids: Sequence[str]) -> list[R]:
        spec = _spec(collection)
        if isinstance(ids, str):
            raise ValidationError("get() takes a list of ids, not a single string")
        wanted = list(dict.fromkeys(ids))
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            found = _bodies(conn, spec, tenant, "id", wanted)
        return [spec.model.model_validate_json(found[i]) for i in wanted if i in found]

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
        spec = _spec(collection)
        flt = compile_where(spec, where)
        column = order_by or "id"
        if column != "id" and column not in spec.filter_fields:
            raise ValidationError(
                f"Cannot order {spec.name.value!r} by {order_by!r}; "
                f"order by one of: id, {', '.join(spec.filter_fields)}"
            )
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValidationError(f"limit must be None or >= 0, got {limit!r}")
        if offset < 0:
            raise ValidationError(f"offset must be >= 0, got {offset!r}")
        direction = "DESC" if descending else "ASC"
        order = f'"{column}" {direction}' + ("" if column == "id" else f", id {direction}")
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty:
                return []
            rows = conn.execute(
                f"SELECT body FROM {spec.name.value} WHERE tenant = ?{flt.sql} "
                f"ORDER BY {order} LIMIT ? OFFSET ?",
                (tenant, *flt.params, -1 if limit is None else limit, offset),
            ).fetchall()
        return [spec.model.model_validate_json(row[0]) for row in rows]

    def count(self, tenant: str, collection: Collection, where: Where = ALL) -> int:
        spec = _spec(collection)
        flt = compile_where(spec, where)
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty:
                return 0
            row = conn.execute(
                f"SELECT count(*) FROM {spec.name.value} WHERE tenant = ?{flt.sql}",
                (tenant, *flt.params),
            ).fetchone()
        return int(row[0])

    def delete(self, tenant: str, collection: Collection, where: Where) -> int:
        spec = _spec(collection)
        sql = STATEMENTS[spec.name]
        flt = compile_where(spec, where)
        with self._writing() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty:
                return 0
            params = (tenant, *flt.params)
            if spec.searchable:
                conn.execute(
                    f"DELETE FROM {sql.fts} WHERE rowid IN "
                    f"(SELECT rid FROM {sql.table} WHERE tenant = ?{flt.sql})",
                    params,
                )
            deleted = conn.execute(f"DELETE FROM {sql.table} WHERE tenant = ?{flt.sql}", params)
            if deleted.rowcount:
                self._note_purge(conn, sql.fts if spec.searchable else "")
                if spec.searchable:
                    self._bump(conn, tenant, spec)
            return int(deleted.rowcount)

    def purge_deleted(self) -> bool:
        """Make deleted text unrecoverable from the database files; True when it is.

        Rows are zeroed as they are deleted (``secure_delete``), but FTS5 keeps
        deleted terms in its index segments until they are merged, and the WAL
        keeps old pages until it is checkpointed. Every transaction that deletes
        rows or replaces indexed text records a job in ``purge_jobs``; this merges
        (``optimize``) each full-text index a job names, drops in-process vector
        caches, then checkpoints and truncates the WAL, checking the result and
        retrying while other connections' read transactions hold old pages (for up
        to ``purge_timeout`` seconds). Only then are the jobs it ran removed.

        False: the purge is pending -- called inside an open transaction (its jobs
        commit with it) or a reader outlasted the wait. The jobs stay in the store:
        the next purge (the next deletion, ``gc``) or the next open finishes them.
        """
        if self._holder().depth > 0:  # inside a batch the caller's transaction still runs
            return False
        return self._purge()

    def _purge(self) -> bool:
        """:meth:`purge_deleted` (opening a store calls this, not the overridable method)."""
        with self._cache_lock:
            self._cache.clear()
        with self._writing() as conn:
            jobs = conn.execute("SELECT target, seq FROM purge_jobs ORDER BY target").fetchall()
            for target, _ in jobs:
                if target in _FTS_TABLES:  # else (""): only the checkpoint
                    conn.execute(f"INSERT INTO {target} ({target}) VALUES ('optimize')")
        if not jobs:
            return True
        if not self._checkpoint(self._purge_timeout):
            return False
        with self._writing() as conn:  # jobs noted since (a higher seq) stay
            conn.executemany("DELETE FROM purge_jobs WHERE target = ? AND seq = ?", jobs)
        self._checkpoint(0.0)  # the jobs' own pages hold no deleted text: no wait
        return True

    def _checkpoint(self, wait: float) -> bool:
        """Checkpoint and truncate the WAL; True if every frame reached the database
        file. Retried (SQLite's busy handler, then short sleeps) for ``wait`` seconds."""
        conn = self._holder().conn
        deadline = time.monotonic() + wait
        with self._errors():
            try:
                while True:
                    left = max(0.0, deadline - time.monotonic())
                    conn.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
                    busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if busy == 0 and log == done:
                        return True
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")

    # -- export (optional capability: base.SupportsExport) ------------------------
    def export(
        self, tenant: str, collection: Collection[R], batch_size: int = 500
    ) -> Iterator[tuple[list[R], Vectors | None]]:
        """Every record of the tenant's collection by id, page by page, with its vector
        (see :class:`~memory_core.backends.base.SupportsExport`)."""
        spec = _spec(collection)
        columns = "id, body" + (", vector_model, vector" if spec.searchable else "")
        after, size = "", max(1, int(batch_size))
        while True:
            with self._read() as conn:  # one snapshot per page, none held across yields
                self._require_tenant(conn, tenant)
                rows = conn.execute(
                    f"SELECT {columns} FROM {spec.name.value} WHERE tenant = ? AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (tenant, after, size),
                ).fetchall()
            run: list[R] = []
            blobs: list[bytes] = []
            model: str | None = None
            for row in rows:
                this = row[2] if spec.searchable and row[3] is not None else None
                if run and this != model:
                    yield run, _exported(model, blobs)
                    run, blobs = [], []
                model = this
                run.append(spec.model.model_validate_json(row[1]))
                if this is not None:
                    blobs.append(row[3])
            if run:
                yield run, _exported(model, blobs)
            if len(rows) < size:
                return
            after = rows[-1][0]

    # -- search ----------------------------------------------------------------
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
        spec = _spec(collection)
        mode = check_search(spec, mode, text, limit, alpha)
        flt = compile_where(spec, where, prefix="m.")
        query = None if mode is SearchMode.KEYWORD else query_vector(vector)
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty or limit == 0:
                return []
            scope = _Scope(conn, spec, tenant, flt)
            if mode is SearchMode.KEYWORD:
                return self._keyword(scope, str(text), limit)
            assert query is not None
            if mode is SearchMode.VECTOR:
                return self._vector(scope, query, limit)
            depth = max(limit * 4, 50)
            keyword = self._keyword(scope, str(text), depth)
            nearest = self._vector(scope, query, depth)
        return relative_score_fusion(keyword, nearest, alpha, limit)

    @staticmethod
    def _keyword(s: _Scope[R], text: str, limit: int) -> list[Hit[R]]:
        terms = fts_query_terms(text)
        if not terms:
            return []
        sql = STATEMENTS[s.spec.name]
        match = fts_match(s.tenant, s.flt.profiles, terms, s.flt.scopes)
        outer = f"WHERE m.tenant = ?{s.flt.sql} ORDER BY rank, m.id LIMIT ?"
        params = (s.tenant, *s.flt.params, limit)
        # Rank inside the full-text index first and read only the best rows:
        # joining every match to its row costs more than ranking them (common
        # words match most of a large tenant). The scope in the MATCH already
        # narrows to the tenant (or profiles, knowledge bases); conditions
        # outside the index may drop some of the best, hence the overfetch and,
        # should too few survive, the exact query over every match.
        best = limit * 4 if s.flt.sql else limit
        rows = s.conn.execute(
            f"SELECT m.body, r.rank AS rank FROM (SELECT rowid AS rid, "
            f"bm25({sql.fts}, 0.0, 1.0) AS rank FROM {sql.fts} WHERE {sql.fts} MATCH ? "
            f"ORDER BY rank LIMIT ?) AS r CROSS JOIN {sql.table} AS m ON m.rid = r.rid {outer}",
            (match, best, *params),
        ).fetchall()
        if len(rows) < limit:
            rows = s.conn.execute(
                f"SELECT m.body, bm25({sql.fts}, 0.0, 1.0) AS rank "
                f"FROM {sql.fts} CROSS JOIN {sql.table} AS m ON m.rid = {sql.fts}.rowid "
                f"WHERE {sql.fts} MATCH ? AND {outer.removeprefix('WHERE ')}",
                (match, *params),
            ).fetchall()
        return [Hit(record=s.spec.model.model_validate_json(b), score=-r) for b, r in rows]

    def _vector(self, s: _Scope[R], query: _Query, limit: int) -> list[Hit[R]]:
        model_id, q = query
        table, flt = s.spec.name.value, s.flt
        key = (s.tenant, table, model_id)
        version = self._version(s.conn, s.tenant, s.spec)
        entry = self._cached(key, version)
        if entry is None and flt.sql:  # a narrow filter (a profile): read its rows directly
            cursor = s.conn.execute(
                f"SELECT m.rid, m.vector FROM {table} AS m "
                f"WHERE m.tenant = ? AND +m.vector_model = ?{flt.sql}",  # + : use flt's index
                (s.tenant, model_id, *flt.params),
            )
            rows = cursor.fetchmany(_DIRECT_VECTOR_ROWS + 1)
            cursor.close()
            if len(rows) <= _DIRECT_VECTOR_ROWS:
                rids, matrix = _matrix(rows)
                return self._top(s, rids, _scores(matrix, query), limit)
        if entry is None:
            rows = s.conn.execute(
                f"SELECT rid, vector FROM {table} WHERE tenant = ? AND vector_model = ? "
                "ORDER BY rid",
                (s.tenant, model_id),
            ).fetchall()
            entry = _VectorMatrix(version, *_matrix(rows))
            if self._holder().depth == 0:  # never cache what an open write may still undo
                self._store(key, entry)
        rids = entry.rids
        if not flt.sql or not len(rids):
            return self._top(s, rids, _scores(entry.matrix, query), limit)
        matching = s.conn.execute(
            f"SELECT m.rid FROM {table} AS m WHERE m.tenant = ?{flt.sql}", (s.tenant, *flt.params)
        ).fetchall()
        selected = np.array([row[0] for row in matching], dtype=np.int64)
        positions = np.searchsorted(rids, selected).clip(max=len(rids) - 1)
        positions = positions[rids[positions] == selected]
        if len(positions) * 4 < len(rids):  # few: score only those rows
            scores = _scores(entry.matrix[positions], query)
        else:
            scores = _scores(entry.matrix, query)[positions]
        return self._top(s, rids[positions], scores, limit)

    @staticmethod
    def _top(s: _Scope[R], rids: _Ids, scores: _Floats, limit: int) -> list[Hit[R]]:
        if len(scores) > limit:
            best = np.argpartition(-scores, limit - 1)[:limit]
            rids, scores = rids[best], scores[best]
        score_of = {int(rid): float(score) for rid, score in zip(rids, scores, strict=True)}
        bodies = _bodies(s.conn, s.spec, s.tenant, "rid", list(score_of))
        hits = [
            Hit(record=s.spec.model.model_validate_json(body), score=score_of[rid])
            for rid, body in bodies.items()
        ]
        hits.sort(key=lambda hit: (-hit.score, hit.record.id))
        return hits

    def _cached(self, key: tuple[str, str, str], version: int) -> _VectorMatrix | None:
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None and entry.version < version:  # stale: written since
                del self._cache[key]
            if entry is None or entry.version != version:  # (or this snapshot is older)
                return None
            self._cache.move_to_end(key)
            return entry

    def _store(self, key: tuple[str, str, str], entry: _VectorMatrix) -> None:
        if entry.nbytes > self._cache_budget:
            return
        with self._cache_lock:
            current = self._cache.get(key)
            if current is not None and current.version > entry.version:
                return
            self._cache[key] = entry
            self._cache.move_to_end(key)
            total = sum(e.nbytes for e in self._cache.values())
            while total > self._cache_budget:
                total -= self._cache.popitem(last=False)[1].nbytes
