"""Keyword ranking for the SQLite backend: BM25 with configurable ``k1`` and ``b``.

SQLite FTS5 finds the matching rows, but its ``bm25()`` fixes ``k1 = 1.2`` and
``b = 0.75`` and computes each term's document frequency by reading the term's
whole doclist on every query -- across the whole table, every tenant -- so its
cost grows with the store, not with the customer searched. Here FTS5 is only
asked for what it answers cheaply, and BM25 is computed in Python:

- **Term counts per row** (``tf``): one ``MATCH`` per query term, narrowed by
  the scope token (a profile's, or a knowledge base's), counting the term's
  instances with ``highlight()``. FTS5 walks the narrow scope's doclist and
  seeks into the term's, so the cost follows the profile's matching rows.
- **Row lengths** (``dl``): the text column's token count, read from FTS5's own
  ``<table>_docsize`` rows (SQLite varints), so tokenisation is FTS5's exactly.
- **Tenant statistics** (``N``, average length, ``df`` per term): per tenant,
  never across tenants, cached in the process and reused while the collection
  changed by fewer writes than 1/256 of its rows (the statistics barely move);
  small collections are recounted after every write, and deletions drop the
  tenant's cached statistics.

A search without a narrow scope (tenant-wide, or many profiles) takes FTS5's
own top rows first (``bm25()`` ordering) and re-scores those.

Messages have a length normalisation of their own (``message_b``, default 0.3):
a conversational turn is short and its length says little about how much of it
is about a matched word, so full normalisation (0.75, kept for knowledge chunks
and the rest) over-penalises the turns that say a little more.

The score is Okapi BM25 with FTS5's IDF,
``idf = max(1e-6, ln((N - df + 0.5) / (df + 0.5)))``, and
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` per query term.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

from memory_core.backends.sqlite_migrations import IN_CHUNK, Statements, fts_scope
from memory_core.errors import ValidationError

__all__ = ["KeywordRanker", "bm25_score", "check_bm25", "text_length"]

_STATS_ENTRIES = 4096  # cached (tenant, table, term) document frequencies per backend
_DRIFT = 256  # statistics are reused until the collection saw N / _DRIFT writes
MESSAGES_TABLE = "messages"  # ranked with ``message_b``


def check_bm25(k1: float, b: float) -> tuple[float, float]:
    """``(k1, b)`` checked: ``k1 >= 0`` and ``0 <= b <= 1``."""
    if isinstance(k1, bool) or not isinstance(k1, int | float) or not 0.0 <= k1 < math.inf:
        raise ValidationError(f"bm25 k1 must be a finite number >= 0, got {k1!r}")
    if isinstance(b, bool) or not isinstance(b, int | float) or not 0.0 <= b <= 1.0:
        raise ValidationError(f"bm25 b must be within [0, 1], got {b!r}")
    return float(k1), float(b)


def text_length(size: bytes) -> int:
    """The text column's token count from an FTS5 ``docsize`` blob ``[scope, text]``
    (two SQLite varints: big-endian groups of 7 bits, high bit = more follow)."""
    values: list[int] = []
    value = 0
    for byte in size:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            values.append(value)
            value = 0
    return values[1] if len(values) > 1 else 0


def bm25_score(
    tfs: dict[int, int], dl: int, idf: dict[int, float], avgdl: float, k1: float, b: float
) -> float:
    """BM25 of one row: ``tfs`` maps query-term index to its count in the row."""
    norm = k1 * (1.0 - b + b * dl / avgdl) if avgdl > 0 else k1
    return sum(idf[t] * tf * (k1 + 1.0) / (tf + norm) for t, tf in tfs.items() if tf > 0)


@dataclass(frozen=True)
class _Stat:
    version: int
    docs: int  # the collection's rows in the tenant when counted
    value: float


class KeywordRanker:
    """BM25 over one backend's FTS5 tables, with per-tenant statistics cached.
    ``message_b``: the length normalisation of the messages table (``b`` of the others)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, message_b: float = 0.3) -> None:
        self.k1, self.b = check_bm25(k1, b)
        self.message_b = check_bm25(k1, message_b)[1]
        self._lock = threading.Lock()
        self._stats: OrderedDict[tuple[str, str, str], _Stat] = OrderedDict()

    def forget(self, tenant: str | None = None) -> None:
        """Drop cached statistics (of one tenant, or all): after deletions."""
        with self._lock:
            if tenant is None:
                self._stats.clear()
                return
            for key in [key for key in self._stats if key[0] == tenant]:
                del self._stats[key]

    # -- statistics ----------------------------------------------------------------
    def _cached(self, key: tuple[str, str, str], version: int) -> _Stat | None:
        with self._lock:
            stat = self._stats.get(key)
            if stat is None:
                return None
            if not 0 <= version - stat.version <= stat.docs // _DRIFT:
                del self._stats[key]
                return None
            self._stats.move_to_end(key)
            return stat

    def _keep(self, key: tuple[str, str, str], stat: _Stat, *, cache: bool) -> None:
        if not cache:
            return
        with self._lock:
            self._stats[key] = stat
            self._stats.move_to_end(key)
            while len(self._stats) > _STATS_ENTRIES:
                self._stats.popitem(last=False)

    def _totals(
        self, conn: sqlite3.Connection, sql: Statements, tenant: str, version: int, cache: bool
    ) -> tuple[int, float]:
        """The tenant's row count and average text length in ``sql``'s collection."""
        docs_key, len_key = (tenant, sql.table, "\x00docs"), (tenant, sql.table, "\x00avgdl")
        docs, avgdl = self._cached(docs_key, version), self._cached(len_key, version)
        if docs is not None and avgdl is not None:
            return int(docs.value), avgdl.value
        n = 0
        total = 0
        for (size,) in conn.execute(
            f"SELECT d.sz FROM {sql.table} AS m JOIN {sql.fts}_docsize AS d ON d.id = m.rid "
            "WHERE m.tenant = ?",
            (tenant,),
        ):
            n += 1
            total += text_length(size)
        mean = total / n if n else 0.0
        self._keep(docs_key, _Stat(version, n, float(n)), cache=cache)
        self._keep(len_key, _Stat(version, n, mean), cache=cache)
        return n, mean

    def _idf(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        terms: list[str],
        docs: int,
        version: int,
        cache: bool,
    ) -> dict[int, float]:
        tenant_scope = fts_scope(tenant, None, None)
        out: dict[int, float] = {}
        for i, term in enumerate(terms):
            key = (tenant, sql.table, term)
            stat = self._cached(key, version)
            if stat is None:
                row = conn.execute(
                    f"SELECT count(*) FROM {sql.fts} WHERE {sql.fts} MATCH ?",
                    (f'{tenant_scope} AND text : "{term}"',),
                ).fetchone()
                stat = _Stat(version, docs, float(row[0]))
                self._keep(key, stat, cache=cache)
            df = min(stat.value, docs)  # statistics of two moments may disagree a little
            out[i] = max(1e-6, math.log((docs - df + 0.5) / (df + 0.5)))
        return out

    def know_df(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        term: str,
        df: int,
        version: int,
        cache: bool,
    ) -> None:
        """Remember ``term``'s document frequency in the tenant's collection at
        ``version``, counted elsewhere (term postings read whole), unless one is
        cached: :meth:`idf` then needs no count of its own."""
        key = (tenant, sql.table, term)
        if self._cached(key, version) is None:
            docs, _ = self._totals(conn, sql, tenant, version, cache)
            self._keep(key, _Stat(version, docs, float(df)), cache=cache)

    def stats(
        self, conn: sqlite3.Connection, sql: Statements, tenant: str, version: int, cache: bool
    ) -> tuple[float, float, float]:
        """``(average length, k1, b)`` of ``sql``'s collection in the tenant, as
        :meth:`rank` scores it."""
        _, avgdl = self._totals(conn, sql, tenant, version, cache)
        b = self.message_b if sql.table == MESSAGES_TABLE else self.b
        return avgdl, self.k1, b

    def idf(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        terms: list[str],
        version: int,
        cache: bool,
    ) -> dict[int, float]:
        """Each term's IDF in the tenant's collection, by index in ``terms``."""
        docs, _ = self._totals(conn, sql, tenant, version, cache)
        return self._idf(conn, sql, tenant, terms, docs, version, cache)

    # -- ranking -------------------------------------------------------------------
    def rank(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        scope: str,
        terms: list[str],
        *,
        version: int,
        cache: bool,
        within: list[int] | None = None,
    ) -> list[tuple[int, float]]:
        """``(rid, score)`` of every row in ``scope`` (an FTS scope expression, see
        :func:`~memory_core.backends.sqlite_migrations.fts_scope`) holding any of
        ``terms``, best first (ties: lower rid first). ``within``: only these rows.
        ``cache``: whether statistics may be cached (not inside a write transaction,
        which may still roll back)."""
        if not terms:
            return []
        rows: list[tuple[int, int, int, bytes]] = []
        restrict = ""
        chunks: list[list[int]] = [[]]
        if within is not None:
            if not within:
                return []
            chunks = [within[s : s + IN_CHUNK] for s in range(0, len(within), IN_CHUNK)]
        for chunk in chunks:
            if within is not None:
                restrict = f" AND rowid IN ({', '.join('?' * len(chunk))})"
            parts = []
            params: list[object] = []
            for i, term in enumerate(terms):
                parts.append(
                    f"SELECT {i} AS t, rowid AS rid, highlight({sql.fts}, 1, char(1), '') AS h "
                    f"FROM {sql.fts} WHERE {sql.fts} MATCH ?{restrict}"
                )
                params += [f'{scope} AND text : "{term}"', *chunk]
            rows += conn.execute(
                "SELECT c.t, c.rid, length(c.h) - length(replace(c.h, char(1), '')), d.sz "
                f"FROM ({' UNION ALL '.join(parts)}) AS c "
                f"JOIN {sql.fts}_docsize AS d ON d.id = c.rid",
                params,
            ).fetchall()
        if not rows:
            return []
        docs, avgdl = self._totals(conn, sql, tenant, version, cache)
        seen = sorted({t for t, _, _, _ in rows})
        found = self._idf(conn, sql, tenant, [terms[t] for t in seen], docs, version, cache)
        idf = {t: found[i] for i, t in enumerate(seen)}
        tfs: dict[int, dict[int, int]] = {}
        lengths: dict[int, int] = {}
        for t, rid, tf, size in rows:
            tfs.setdefault(rid, {})[t] = tf
            if rid not in lengths:
                lengths[rid] = text_length(size)
        b = self.message_b if sql.table == MESSAGES_TABLE else self.b
        scored = [
            (rid, bm25_score(counts, lengths[rid], idf, avgdl, self.k1, b))
            for rid, counts in tfs.items()
        ]
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        return scored
