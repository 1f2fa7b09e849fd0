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

Search (issue 17): keyword ranking is BM25 with configurable ``k1``/``b``
computed from FTS5's matches, term counts and row lengths with per-tenant
statistics (:mod:`~memory_core.backends.sqlite_keyword`), over term postings held
in memory for tenant-wide searches of knowledge chunks
(:mod:`~memory_core.backends.sqlite_postings`); vector search reads a
memory-mapped float32 matrix per ``(tenant, collection, model id)`` with
per-profile row ranges, kept fresh incrementally by every write and checked
against the ``collection_versions`` row that every write bumps (from any
connection or process, in the same transaction)
(:mod:`~memory_core.backends.sqlite_vectors`). A search reads a collection's
emptiness once per version, ranks row ids, and reads and parses only the records
it returns.

Erasure: rows are zeroed as they are deleted (``secure_delete``), but FTS5 keeps
deleted terms in old index segments and the WAL keeps old pages until they are
merged and checkpointed. Every transaction that deletes rows or replaces indexed
text therefore records a purge job (table ``purge_jobs``) as part of itself;
:meth:`SQLiteBackend.purge_deleted` does the work and removes a job only once the
WAL checkpoint after it succeeded, and opening a store finishes jobs a crash or a
long read transaction left pending.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from memory_core.backends.base import (
    ALL,
    COLLECTIONS,
    Collection,
    CollectionSpec,
    Hit,
    MessageRow,
    R,
    SearchMode,
    Vectors,
    Where,
    check_records,
    check_search,
    query_vector,
    unit_vectors,
)
from memory_core.backends.sqlite_keyword import KeywordRanker
from memory_core.backends.sqlite_migrations import (
    IN_CHUNK,
    STATEMENTS,
    Filter,
    check_columns,
    compile_where,
    fts_match,
    fts_scope,
    migrate,
)
from memory_core.backends.sqlite_postings import INDEXED, INDEXED_TABLES, TermPostings
from memory_core.backends.sqlite_vectors import GROUP_FIELDS, MatrixOp, VectorMatrices
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
_T = TypeVar("_T")
_Query = tuple[str, _Floats]  # model id, unit query vector


@dataclass(frozen=True)
class _Scope(Generic[R]):
    """What one search reads: a snapshot, a collection, a tenant and a filter."""

    conn: sqlite3.Connection
    spec: CollectionSpec[R]
    tenant: str
    flt: Filter
    where: Where
    version: int  # the collection's version in this snapshot
    cache: bool  # whether what is read may be cached (False inside a write transaction)
    # Columns read with the ids of ranked rows (those of a MessageRow), kept by rid in
    # ``rows``, so the rows returned need no second read; "": ids only.
    columns: str = ""
    rows: dict[int, Sequence[Any]] = field(default_factory=dict)


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


_Ranked = tuple[int, str, float]  # rid, record id, score


def _groups(where: Where, field: str) -> list[str] | None:
    """The groups (values of ``field``) ``where`` selects whole, when it is nothing
    but ``field`` equal to, or one of, some values; else None."""
    if where.gte or where.lt or where.fields() != {field}:
        return None
    if field in where.eq:
        value = where.eq[field]
        return [value] if isinstance(value, str) and not where.any_of else None
    values = where.any_of[field]
    return (
        [v for v in values if isinstance(v, str)]
        if all(isinstance(v, str) for v in values)
        else None
    )


def _best(rids: _Ids, scores: _Floats, limit: int) -> tuple[_Ids, _Floats]:
    """The ``limit`` best-scored of ``rids`` (unordered)."""
    if len(scores) > limit:
        top = np.argpartition(-scores, limit - 1)[:limit]
        return rids[top], scores[top]
    return rids, scores


def _merged(parts: list[tuple[_Ids, _Floats]]) -> tuple[_Ids, _Floats]:
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _fused(
    keyword: list[_Ranked], vector: list[_Ranked], alpha: float, limit: int
) -> list[_Ranked]:
    """Relative score fusion of two ranked lists of rows (the rule of
    :func:`~memory_core.backends.fusion.relative_score_fusion`, on rows rather than
    records, so that only the fused best are read and parsed)."""
    fused: dict[int, list[Any]] = {}
    for weight, ranked in ((1.0 - alpha, keyword), (alpha, vector)):
        if not ranked:
            continue
        low = min(row[2] for row in ranked)
        span = max(row[2] for row in ranked) - low
        for rid, rec_id, score in ranked:
            part = weight * ((score - low) / span if span > 0 else 1.0)
            fused.setdefault(rid, [rec_id, 0.0])[1] += part
    best = sorted(fused.items(), key=lambda item: (-item[1][1], item[1][0]))[:limit]
    return [(rid, rec_id, score) for rid, (rec_id, score) in best]


def _ids(s: _Scope[Any], rids: list[int]) -> dict[int, str]:
    """rid -> record id of the tenant's rows among ``rids`` (their ``s.columns`` kept
    in ``s.rows``)."""
    found: dict[int, str] = {}
    for start in range(0, len(rids), IN_CHUNK):
        chunk = rids[start : start + IN_CHUNK]
        rows = s.conn.execute(
            f"SELECT {s.columns or 'm.rid, m.id'} FROM {s.spec.name.value} AS m "
            f"WHERE m.rid IN ({', '.join('?' * len(chunk))}) AND +m.tenant = ?",
            (*chunk, s.tenant),
        ).fetchall()
        found.update((row[0], row[1]) for row in rows)
        if s.columns:
            s.rows.update((row[0], row) for row in rows)
    return found


def _narrowing(where: Where, table: str) -> tuple[str, list[str]] | None | Literal[False]:
    """What term postings can serve of a search's filter on ``table``: None (the
    whole tenant), ``(field, values)`` (one of the table's grouping fields, see
    :data:`~memory_core.backends.sqlite_postings.INDEXED`; ``eq`` as one value), or
    False."""
    if where.gte or where.lt or len(where.eq) + len(where.any_of) > 1:
        return False
    if not where.eq and not where.any_of:
        return None
    values: list[object]
    if where.eq:
        ((name, value),) = where.eq.items()
        values = [value]
    else:
        ((name, listed),) = where.any_of.items()
        values = list(listed)
    if name not in INDEXED.get(table, ()) or not all(isinstance(v, str) for v in values):
        return False
    return name, [str(v) for v in values]


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


# What a MessageRow is read from: ids, position, ts as epoch seconds (and as stored,
# ISO, where a float64 may not hold its microseconds: beyond 2^33 s, the year 2242).
_ROW_COLUMNS = (
    'm.rid, m.id, m."conversation_id", m."seq", m."ts", '
    "CASE WHEN abs(m.\"ts\") >= 8589934592.0 THEN m.body ->> '$.ts' END"
)
# ... and the text (the body itself where SQLite's JSON would cut it at an escaped NUL).
_TEXT_COLUMNS = ", m.body ->> '$.text', CASE WHEN instr(m.body, '\\u0000') THEN m.body END"


def _message_row(row: Sequence[Any]) -> MessageRow:
    """A :class:`MessageRow` from the columns of :data:`_ROW_COLUMNS` (and, when read,
    :data:`_TEXT_COLUMNS`). Epoch seconds within 2^33 of 1970 come back as the exact
    microsecond (a float64's error there is under half a microsecond)."""
    text = None
    if len(row) > 6:
        text = row[6] if row[7] is None else json.loads(row[7])["text"]
    return MessageRow(
        id=row[1],
        conversation_id=row[2],
        seq=row[3],
        ts=datetime.fromtimestamp(row[4], UTC) if row[5] is None else _utc_iso(row[5]),
        text=text,
    )


def _message_rows(
    s: _Scope[Any], ranked: list[_Ranked], text: bool
) -> list[tuple[MessageRow, float]]:
    """``ranked`` message rows as :class:`MessageRow` (with their text when ``text``),
    in order; no record is parsed."""
    found = s.rows
    rids = [rid for rid, _, _ in ranked if rid not in found]
    columns = _ROW_COLUMNS + (_TEXT_COLUMNS if text else "")
    for start in range(0, len(rids), IN_CHUNK):
        chunk = rids[start : start + IN_CHUNK]
        rows = s.conn.execute(
            f"SELECT {columns} FROM messages AS m "
            f"WHERE +m.tenant = ? AND m.rid IN ({', '.join('?' * len(chunk))})",
            (s.tenant, *chunk),
        )
        found.update((row[0], row) for row in rows)
    return [(_message_row(found[rid]), score) for rid, _, score in ranked if rid in found]


def _utc_iso(value: str) -> datetime:
    """A stored ISO 8601 time (``...Z`` or an offset) as a UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC)


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
        self.ops: list[MatrixOp] = []  # vector rows the open transaction wrote
        self.snapshot: set[str] | None = None  # in snapshot(): the tenants checked in it


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
        purge_timeout: float = 5.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        bm25_message_b: float = 0.3,
    ) -> None:
        """``purge_timeout``: seconds a purge waits for other connections' read
        transactions to end before it leaves its job pending (see :meth:`purge_deleted`).
        ``bm25_k1``, ``bm25_b``: the BM25 parameters of keyword ranking;
        ``bm25_message_b``: the length normalisation of messages (see
        :mod:`memory_core.backends.sqlite_keyword`)."""
        self.path = Path(path)
        self._busy_ms = int(busy_timeout * 1000)
        self._purge_timeout = max(0.0, float(purge_timeout))
        self._closed = False
        self._local = threading.local()
        self._conns: dict[int, sqlite3.Connection] = {}
        self._conns_lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._cache_lock = threading.Lock()
        self._empty: dict[tuple[str, str], tuple[int, bool]] = {}  # -> (version, empty)
        self._ranker = KeywordRanker(bm25_k1, bm25_b, bm25_message_b)
        self._matrices = VectorMatrices(Path(f"{self.path}.vectors"))
        self._postings = TermPostings()
        try:
            with self._errors(), self._write() as conn:
                migrate(conn, str(self.path))
                check_columns(conn, str(self.path))
                pending = conn.execute("SELECT 1 FROM purge_jobs LIMIT 1").fetchone()
                versions = conn.execute(
                    "SELECT tenant, collection, version FROM collection_versions"
                )
                self._matrices.sweep({(t, c): int(v) for t, c, v in versions})
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
            noted = len(holder.ops)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                    del holder.ops[noted:]  # undone with the savepoint
                raise
            else:
                conn.execute(f"RELEASE {savepoint}")
            finally:
                holder.depth -= 1
            return
        if holder.snapshot is not None and conn.in_transaction:
            conn.execute("COMMIT")  # a write inside snapshot() ends the snapshot
            holder.snapshot = None
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            holder.depth = 1
            holder.ops = []
            try:
                yield conn
                # Readers wait on the matrices' lock until this commit is applied there.
                with self._matrices.lock:
                    conn.execute("COMMIT")
                    ops, holder.ops = holder.ops, []
                    self._matrices.apply(ops)
                    self._postings.apply(ops)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                holder.ops = []
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
    def snapshot(self) -> Iterator[None]:
        """The reads of this thread inside, in one read transaction: one consistent
        view, and one ``BEGIN``/``COMMIT`` and tenant check instead of one per call
        (recall makes about ten calls). A write on this thread inside ends the
        snapshot (later reads run each in its own snapshot again); inside an open
        transaction (a batch, another snapshot) it joins that."""
        holder = self._holder()
        conn = holder.conn
        if conn.in_transaction:
            yield
            return
        with self._errors():
            conn.execute("BEGIN")
        holder.snapshot = set()
        try:
            yield
        finally:
            ours = holder.snapshot is not None
            holder.snapshot = None
            if ours and conn.in_transaction:
                with self._errors():
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
        self._matrices.close()
        for conn in conns:
            conn.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._writing():
            yield

    # -- tenants ---------------------------------------------------------------
    def _require_tenant(self, conn: sqlite3.Connection, tenant: str) -> None:
        checked = self._holder().snapshot
        if checked is not None and tenant in checked:
            return
        if conn.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant,)).fetchone() is None:
            raise NotFoundError(
                f"Tenant {tenant!r} does not exist; create the tenant first with "
                f"ensure_tenant({tenant!r}).",
                kind="tenant",
            )
        if checked is not None:
            checked.add(tenant)

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
                    version = self._bump(conn, tenant, spec)
                    self._holder().ops.append(
                        MatrixOp(tenant, spec.name.value, version, dropped=True)
                    )
                deleted = conn.execute(f"DELETE FROM {sql.table} WHERE tenant = ?", (tenant,))
                counts[collection.value] = deleted.rowcount
            self._note_purge(conn, "")
        self._ranker.forget(tenant)
        self._postings.forget(tenant)
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
    def _bump(conn: sqlite3.Connection, tenant: str, spec: CollectionSpec) -> int:
        """Count a write of the tenant's collection; its new version."""
        row = conn.execute(
            "INSERT INTO collection_versions (tenant, collection, version) VALUES (?, ?, 1) "
            "ON CONFLICT (tenant, collection) DO UPDATE SET version = version + 1 "
            "RETURNING version",
            (tenant, spec.name.value),
        ).fetchone()
        return int(row[0])

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
            version = self._bump(conn, tenant, spec)
            op = MatrixOp(tenant, sql.table, version, model_id=model_id)
            group = GROUP_FIELDS[sql.table]
            ids = [records[i].id for i in keep]
            for start in range(0, len(ids), IN_CHUNK):
                chunk = ids[start : start + IN_CHUNK]
                found = conn.execute(
                    f'SELECT id, rid, "{group}" FROM {sql.table} WHERE tenant = ? '
                    f"AND id IN ({', '.join('?' * len(chunk))})",
                    (tenant, *chunk),
                ).fetchall()
                at = {rec_id: (rid, value) for rec_id, rid, value in found}
                for rec_id in chunk:
                    op.added.append(at[rec_id][0])
                    op.groups.append(at[rec_id][1] or "")
            if blobs is not None:
                op.vectors = np.frombuffer(b"".join(blobs[i] for i in keep), dtype=_F32).reshape(
                    len(keep), -1
                )
            self._holder().ops.append(op)

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
        if column == "id" and flt.sql:
            # "+": a filtered read uses its filter's index and sorts what matches,
            # never a walk of the whole tenant in id order (the planner's pick without
            # statistics: seconds at 100k rows for a few matching ones).
            order = f"+id {direction}"
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
            gone: list[int] = []
            if spec.searchable:
                gone = [
                    row[0]
                    for row in conn.execute(
                        f"SELECT rid FROM {sql.table} WHERE tenant = ?{flt.sql}", params
                    )
                ]
                conn.execute(
                    f"DELETE FROM {sql.fts} WHERE rowid IN "
                    f"(SELECT rid FROM {sql.table} WHERE tenant = ?{flt.sql})",
                    params,
                )
            deleted = conn.execute(f"DELETE FROM {sql.table} WHERE tenant = ?{flt.sql}", params)
            if deleted.rowcount:
                self._note_purge(conn, sql.fts if spec.searchable else "")
                if spec.searchable:
                    version = self._bump(conn, tenant, spec)
                    self._holder().ops.append(
                        MatrixOp(tenant, sql.table, version, removed=gone)
                    )  # zeroed in the vector files at commit
                    self._ranker.forget(tenant)  # statistics of what is gone
            return int(deleted.rowcount)

    def purge_deleted(self) -> bool:
        """Make deleted text unrecoverable from the database files; True when it is.

        Rows are zeroed as they are deleted (``secure_delete``), but FTS5 keeps
        deleted terms in its index segments until they are merged, and the WAL
        keeps old pages until it is checkpointed. Every transaction that deletes
        rows or replaces indexed text records a job in ``purge_jobs``; this merges
        (``optimize``) each full-text index a job names (vector files are scrubbed
        at each deletion's commit already), then checkpoints and truncates the WAL,
        checking the result and retrying while other connections' read transactions
        hold old pages (for up to ``purge_timeout`` seconds). Only then are the jobs it ran removed.

        False: the purge is pending -- called inside an open transaction (its jobs
        commit with it) or a reader outlasted the wait. The jobs stay in the store:
        the next purge (the next deletion, ``gc``) or the next open finishes them.
        """
        if self._holder().depth > 0:  # inside a batch the caller's transaction still runs
            return False
        return self._purge()

    def _purge(self) -> bool:
        """:meth:`purge_deleted` (opening a store calls this, not the overridable method)."""
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
        return self._search(
            _spec(collection), tenant, mode, text, vector, where, limit, alpha, self._hits
        )

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
        """:meth:`search` of messages as :class:`MessageRow` (see
        :class:`~memory_core.backends.base.SupportsMessageRows`): the same rows, scores
        and order, with only the columns recall ranks by read and no record parsed."""
        spec = Collection.MESSAGES.spec
        with_text = mode is SearchMode.KEYWORD  # what keyword evidence reads

        def read(scope: _Scope[Any], ranked: list[_Ranked]) -> list[tuple[MessageRow, float]]:
            return _message_rows(scope, ranked, with_text)

        columns = _ROW_COLUMNS + (_TEXT_COLUMNS if with_text else "")
        return self._search(spec, tenant, mode, text, vector, where, limit, 0.5, read, columns)

    def message_rows(
        self, tenant: str, where: Where, positions: Sequence[tuple[str, int]]
    ) -> list[MessageRow]:
        """The tenant's messages matching ``where`` at ``(conversation_id, seq)``
        ``positions``: one statement over the ``(tenant, conversation_id, seq)`` index."""
        flt = compile_where(Collection.MESSAGES.spec, where, prefix="m.")
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty or not positions:
                return []
            rows = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM json_each(?) AS j CROSS JOIN messages AS m "
                "ON m.tenant = ? AND m.conversation_id = j.value ->> 0 "
                f"AND m.seq = j.value ->> 1 WHERE 1{flt.sql}",
                (json.dumps([[c, s] for c, s in positions]), tenant, *flt.params),
            ).fetchall()
        return [_message_row(row) for row in rows]

    def _search(
        self,
        spec: CollectionSpec[R],
        tenant: str,
        mode: SearchMode,
        text: str | None,
        vector: Vectors | None,
        where: Where,
        limit: int,
        alpha: float,
        read: Callable[[_Scope[R], list[_Ranked]], list[_T]],
        columns: str = "",
    ) -> list[_T]:
        """A search whose ranked rows ``read`` turns into results (``columns``: see
        :class:`_Scope`)."""
        mode = check_search(spec, mode, text, limit, alpha)
        flt = compile_where(spec, where, prefix="m.")
        query = None if mode is SearchMode.KEYWORD else query_vector(vector)
        with self._read() as conn:
            self._require_tenant(conn, tenant)
            if flt.empty or limit == 0:
                return []
            version = self._version(conn, tenant, spec)
            if self._is_empty(conn, tenant, spec, version):  # nothing to rank: no search
                return []
            cache = self._holder().depth == 0
            scope = _Scope(conn, spec, tenant, flt, where, version, cache, columns)
            if mode is SearchMode.KEYWORD:
                return read(scope, self._keyword(scope, str(text), limit))
            assert query is not None
            if mode is SearchMode.VECTOR:
                return read(scope, self._vector(scope, query, limit))
            depth = max(limit * 4, 50)
            keyword = self._keyword(scope, str(text), depth)
            nearest = self._vector(scope, query, depth)
            return read(scope, _fused(keyword, nearest, alpha, limit))

    def _is_empty(
        self, conn: sqlite3.Connection, tenant: str, spec: CollectionSpec, version: int
    ) -> bool:
        """Whether the tenant has no rows in ``spec``'s collection. Known per
        collection version (every write bumps it, deletions too), so a recall's
        searches of collections a tenant never wrote to cost one lookup."""
        key = (tenant, spec.name.value)
        with self._cache_lock:
            known = self._empty.get(key)
        if known is not None and known[0] == version:
            return known[1]
        empty = (
            conn.execute(
                f"SELECT 1 FROM {spec.name.value} WHERE tenant = ? LIMIT 1", (tenant,)
            ).fetchone()
            is None
        )
        if self._holder().depth == 0:  # never remember what an open write may undo
            with self._cache_lock:
                self._empty[key] = (version, empty)
        return empty

    def _keyword(self, s: _Scope[R], text: str, limit: int) -> list[_Ranked]:
        """The best ``limit`` rows for ``text`` that match the filter: ``(rid, id, score)``,
        best first (ties by id)."""
        terms = fts_query_terms(text)
        if not terms:
            return []
        sql = STATEMENTS[s.spec.name]
        flt = s.flt
        scope = fts_scope(s.tenant, flt.profiles, flt.scopes)
        ranker = self._ranker
        if sql.table in INDEXED_TABLES and s.cache:
            # BM25 over term postings held in memory (the cost follows the query's
            # postings within the searched part: the whole tenant, some knowledge
            # bases or sources, a profile's messages; not FTS5's walk of every
            # matching row). A filter postings do not serve on its own (a profile's
            # messages of some channels or dates) is applied to every match of the
            # profile afterwards.
            narrow = _narrowing(s.where, sql.table)
            every = False  # every match of the profile, filtered afterwards
            if narrow is False and flt.profiles is not None:
                narrow, every = ("profile_id", list(flt.profiles)), True
            if narrow is not False:
                ranked_all = self._postings.rank(
                    s.conn,
                    sql,
                    s.tenant,
                    s.version,
                    terms,
                    idf=lambda words: ranker.idf(s.conn, sql, s.tenant, words, s.version, s.cache),
                    stats=ranker.stats(s.conn, sql, s.tenant, s.version, s.cache),
                    fresh_ranker=lambda rids: ranker.rank(
                        s.conn,
                        sql,
                        s.tenant,
                        scope,
                        terms,
                        version=s.version,
                        cache=s.cache,
                        within=rids,
                    ),  # fmt: skip
                    limit=None if every else limit,
                    narrow=narrow,
                    ties=flt.profiles is not None,  # a profile's ties broken by id below
                    know_df=lambda word, df: ranker.know_df(
                        s.conn, sql, s.tenant, word, df, s.version, s.cache
                    ),
                )
                if ranked_all is not None:
                    return self._filtered(s, ranked_all, limit)
        if flt.profiles:
            # A profile's rows: rank every one holding a term (cost follows the profile).
            ranked = ranker.rank(
                s.conn, sql, s.tenant, scope, terms, version=s.version, cache=s.cache
            )
            return self._filtered(s, ranked, limit)
        # Wider scopes: FTS5's own ranking picks the candidates (conditions outside
        # the index may drop some, hence the overfetch), re-scored with k1 and b.
        match = fts_match(s.tenant, flt.profiles, terms, flt.scopes)
        best = max(limit * 4, 100) if flt.sql else max(limit, 100)
        rids = [
            row[0]
            for row in s.conn.execute(
                f"SELECT rowid FROM {sql.fts} WHERE {sql.fts} MATCH ? "
                f"ORDER BY bm25({sql.fts}, 0.0, 1.0) LIMIT ?",
                (match, best),
            )
        ]
        if len(rids) == best and flt.sql:
            survivors = self._filtered(s, [(rid, 0.0) for rid in rids], limit)
            if len(survivors) < limit:  # too many dropped: every match within the filter
                rids = [
                    row[0]
                    for row in s.conn.execute(
                        f"SELECT m.rid FROM {sql.fts} CROSS JOIN {sql.table} AS m "
                        f"ON m.rid = {sql.fts}.rowid WHERE {sql.fts} MATCH ? "
                        f"AND m.tenant = ?{flt.sql} ORDER BY bm25({sql.fts}, 0.0, 1.0) LIMIT ?",
                        (match, s.tenant, *flt.params, best),
                    )
                ]
        ranked = ranker.rank(
            s.conn, sql, s.tenant, scope, terms, version=s.version, cache=s.cache, within=rids
        )
        return self._filtered(s, ranked, limit)

    @staticmethod
    def _filtered(s: _Scope[R], ranked: list[tuple[int, float]], limit: int) -> list[_Ranked]:
        """The best ``limit`` of ``ranked`` rows that are the tenant's and match the
        filter, with their ids (ids only: records are read for what is returned)."""
        ids: dict[int, str] = {}
        table = s.spec.name.value
        # The rids drive the join (CROSS JOIN fixes the order): each row is looked up
        # by rowid. With ``rid IN (...) AND tenant = ?`` SQLite's planner walks the
        # tenant's whole (tenant, id) index instead (2 ms at 20k rows, 45x slower).
        rows = s.conn.execute(
            f"SELECT {s.columns or 'm.rid, m.id'} FROM json_each(?) AS j "
            f"CROSS JOIN {table} AS m ON m.rid = j.value WHERE m.tenant = ?{s.flt.sql}",
            (json.dumps([rid for rid, _ in ranked]), s.tenant, *s.flt.params),
        ).fetchall()
        ids.update((row[0], row[1]) for row in rows)
        if s.columns:
            s.rows.update((row[0], row) for row in rows)
        kept = [(rid, ids[rid], score) for rid, score in ranked if rid in ids]
        kept.sort(key=lambda row: (-row[2], row[1]))
        return kept[:limit]

    def _hits(self, s: _Scope[R], ranked: list[_Ranked]) -> list[Hit[R]]:
        """``ranked`` rows as hits, in order: only these records are read and parsed."""
        bodies = _bodies(s.conn, s.spec, s.tenant, "rid", [rid for rid, _, _ in ranked])
        model = s.spec.model
        return [
            Hit(record=model.model_validate_json(bodies[rid]), score=score)
            for rid, _, score in ranked
            if rid in bodies
        ]

    def _vector(self, s: _Scope[R], query: _Query, limit: int) -> list[_Ranked]:
        """The ``limit`` nearest rows that match the filter: ``(rid, id, score)``."""
        model_id, q = query
        table, flt = s.spec.name.value, s.flt
        matrices = self._matrices
        with matrices.lock:
            matrix = matrices.get(s.conn, s.tenant, table, model_id, s.version) if s.cache else None
            if matrix is not None:
                groups = _groups(s.where, GROUP_FIELDS[table])
                if groups is not None or not flt.sql:  # whole groups, or the whole tenant
                    best: list[tuple[_Ids, _Floats]] = []
                    for rids, vectors in matrices.rows(matrix, groups):
                        best.append(_best(rids, _scores(vectors, query), limit))
                    return self._top(s, *_merged(best), limit)
                matching = s.conn.execute(
                    f"SELECT m.rid FROM {table} AS m WHERE m.tenant = ?{flt.sql}",
                    (s.tenant, *flt.params),
                ).fetchall()
                wanted = np.fromiter((row[0] for row in matching), np.int64, len(matching))
                rids, vectors = matrices.select(matrix, wanted)
                return self._top(s, rids, _scores(vectors, query), limit)
        # This snapshot is not the matrix's (an open write transaction, or a read that
        # began before the last commit): read the vectors from SQLite.
        rows = s.conn.execute(
            f"SELECT m.rid, m.vector FROM {table} AS m "
            f"WHERE m.tenant = ? AND m.vector_model = ?{flt.sql}",
            (s.tenant, model_id, *flt.params),
        ).fetchall()
        rids, matrix_rows = _matrix(rows)
        return self._top(s, rids, _scores(matrix_rows, query), limit)

    @staticmethod
    def _top(s: _Scope[R], rids: _Ids, scores: _Floats, limit: int) -> list[_Ranked]:
        """The ``limit`` best of ``rids`` by ``scores`` with their ids, best first."""
        if len(scores) > limit:
            best = np.argpartition(-scores, limit - 1)[:limit]
            rids, scores = rids[best], scores[best]
        score_of = {int(rid): float(score) for rid, score in zip(rids, scores, strict=True)}
        ids = _ids(s, list(score_of))
        ranked = [(rid, ids[rid], score) for rid, score in score_of.items() if rid in ids]
        ranked.sort(key=lambda row: (-row[2], row[1]))
        return ranked
