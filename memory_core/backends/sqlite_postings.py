"""In-memory term postings for keyword search on the SQLite backend.

FTS5 answers a keyword query by walking every matching row's doclist entry and,
for BM25's term counts, re-tokenising each matching row (``highlight()``): a
search over a whole tenant's knowledge chunks (a 5-9 word query's common words
match tens of thousands of rows) or over one profile's messages in a large
tenant (12.8 ms of CPU at 1M messages) pays for it on every query. Here the rows'
term counts are kept in memory instead, per ``(tenant, collection)``, as numpy
arrays, for the collections of :data:`INDEXED` (knowledge chunks, messages):

- **Documents**: the tenant's row ids (sorted) and text lengths (FTS5's own
  token counts, from ``<table>_docsize``), read once.
- **Postings**, per query term, loaded the first time the term is searched from
  FTS5's own index of the term's instances (an ``fts5vocab`` table; the term is
  stemmed by FTS5's tokenizer first): the positions of the tenant's rows holding
  it and its count in each. Terms are kept in
  least-recently-used order up to a bound on the total number of postings
  (:data:`MAX_POSTINGS`, 8 bytes each).
- **Scoring**: Okapi BM25 with the ranker's statistics and parameters (the same
  ``N``, average length, IDF, ``k1`` and ``b`` as every other keyword search),
  summed per row with ``numpy.bincount`` and the best rows picked with
  ``argpartition``: the cost follows the query's postings, with no SQL per row.
  A search narrowed to a small part of the tenant (a profile's messages, a small
  knowledge base) scores only that part's rows: each term's postings are looked
  up at the part's row positions (``searchsorted``), so its cost follows the part,
  not the tenant.
- **Kept fresh incrementally**: the backend reports each committed write's rows
  (:class:`~memory_core.backends.sqlite_vectors.MatrixOp`). Rows written since
  the postings were read are *fresh*: their cached postings no longer count and
  they are scored through FTS5, restricted to them (and, for a narrowed search,
  to those of its profiles or knowledge bases); deleted and rewritten rows
  are masked and their entries taken out of every cached term. When
  the fresh and deleted rows outgrow 1/16 of the documents (at least 4,096), or a
  write this process did not make moved the collection's version, the tenant's
  postings are dropped and read again lazily.

A search whose read snapshot is not the postings' version (an open write, or a
read that began before the last commit) does not use them: the caller falls back
to FTS5.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from memory_core.backends.sqlite_keyword import text_length
from memory_core.backends.sqlite_migrations import TOKENIZER, Statements, fts_scope
from memory_core.backends.sqlite_vectors import GROUP_FIELDS, MatrixOp

__all__ = ["INDEXED", "INDEXED_TABLES", "MAX_POSTINGS", "TermPostings"]

#: The collections searched through postings, each with the fields a search of it
#: may be narrowed by and still be served here (``Where(any_of={field: [...]})``, a
#: profile also as ``eq``); other filters go to FTS5. Observations and summaries
#: are few per profile and searched through FTS5.
INDEXED: dict[str, tuple[str, ...]] = {
    "chunks": ("kb_id", "source_id"),
    "messages": ("profile_id",),
}
INDEXED_TABLES = frozenset(INDEXED)
#: Postings kept in memory across tenants and terms (8 bytes each: at most about 128
#: MB; the postings of every word of a million messages take about 100 MB).
MAX_POSTINGS = 16_000_000
_MIN_CHURN = 4096

_Ids = npt.NDArray[np.int64]


@dataclass
class _Term:
    positions: npt.NDArray[np.int32]  # into _Tenant.rids, ascending
    counts: npt.NDArray[np.float32]  # the term's instances in each row


@dataclass
class _Tenant:
    version: int
    rids: _Ids  # sorted
    lengths: npt.NDArray[np.float64]
    live: npt.NDArray[np.bool_]  # rows whose cached postings still count
    groups: dict[str, npt.NDArray[np.int32]]  # per field of INDEXED: a code per row
    codes: dict[str, dict[str, int]]  # per field: value -> code
    fresh: dict[int, str] = field(default_factory=dict)  # written since (rid -> group)
    # per field: row positions sorted by code, and the codes in that order
    by_group: dict[str, tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]] = field(
        default_factory=dict
    )
    churn: int = 0
    terms: OrderedDict[str, _Term] = field(default_factory=OrderedDict)


#: ``(rid, score)`` of the fresh rows, best first: FTS5 restricted to ``within``.
FreshRanker = Callable[[list[int]], list[tuple[int, float]]]


class TermPostings:
    """Per-tenant term postings of one backend's indexed collections (thread-safe)."""

    def __init__(self, max_postings: int = MAX_POSTINGS) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[tuple[str, str], _Tenant] = {}
        self._max = max_postings
        self._held = 0  # postings held across every tenant's terms

    # -- freshness -----------------------------------------------------------------
    def apply(self, ops: Iterable[MatrixOp]) -> None:
        """Rows written or deleted by a committed write (see the module doc)."""
        with self._lock:
            for op in ops:
                key = (op.tenant, op.table)
                state = self._tenants.get(key)
                if state is None:
                    continue
                if op.dropped:
                    self._drop(key)
                    continue
                self._scrub(state, [*op.removed, *op.added])
                for rid in op.removed:
                    state.fresh.pop(rid, None)
                groups = op.groups if len(op.groups) == len(op.added) else [""] * len(op.added)
                state.fresh.update(zip(op.added, groups, strict=True))
                state.churn += len(op.removed) + len(op.added)
                state.version = op.version
                if state.churn > max(_MIN_CHURN, len(state.rids) // 16):
                    self._drop(key)

    def forget(self, tenant: str) -> None:
        """Drop a tenant's postings (the tenant went)."""
        with self._lock:
            for key in [k for k in self._tenants if k[0] == tenant]:
                self._drop(key)

    def _scrub(self, state: _Tenant, rids: list[int]) -> None:
        """Rows deleted or rewritten: masked, and their entries taken out of every
        cached term (what a deleted row held is not kept, even as term counts)."""
        if not rids or not len(state.rids):
            return
        wanted = np.asarray(rids, dtype=np.int64)
        at = np.searchsorted(state.rids, wanted)
        inside = at < len(state.rids)
        at = at[inside][state.rids[at[inside]] == wanted[inside]]
        if not len(at):
            return
        state.live[at] = False
        for term in state.terms.values():
            keep = state.live[term.positions]
            if not keep.all():
                self._held -= int((~keep).sum())
                term.positions, term.counts = term.positions[keep], term.counts[keep]

    def _drop(self, key: tuple[str, str]) -> None:
        state = self._tenants.pop(key, None)
        if state is not None:
            self._held -= sum(len(t.positions) for t in state.terms.values())

    # -- search --------------------------------------------------------------------
    def rank(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        version: int,
        terms: list[str],
        idf: Callable[[list[str]], dict[int, float]],
        stats: tuple[float, float, float],
        fresh_ranker: FreshRanker,
        limit: int | None,
        narrow: tuple[str, list[str]] | None = None,
        ties: bool = False,
        know_df: Callable[[str, int], None] | None = None,
    ) -> list[tuple[int, float]] | None:
        """The best ``limit`` rows of the tenant for ``terms`` as ``(rid, score)``,
        best first (ties: lower rid first; rows tied with the last one kept are all
        kept with ``ties``), then every fresh row that
        matches (the caller filters them and keeps ``limit``); or None when this
        snapshot (at ``version``) is not the postings' (the caller uses FTS5).
        ``limit`` None: every matching row. ``idf``: the terms' IDFs by index (the
        ranker's); ``stats``: ``(avgdl, k1, b)``; ``narrow``: only rows whose field
        (of :data:`INDEXED`) is one of these values; ``ties``: keep every row tied
        with the last one kept (the caller breaks ties its own way; a profile's
        few rows), else ties at the cut go by rid (a tenant's duplicate chunks can
        tie by the hundred). ``know_df``: told each newly read term's document
        frequency in the tenant when the postings count it exactly (no row written
        since they were read), so the ranker need not count it through FTS5."""
        key = (tenant, sql.table)
        with self._lock:  # held throughout: a commit's rows are applied between searches
            state = self._tenants.get(key)
            if state is not None and state.version != version:
                if state.version > version:
                    return None  # a newer commit is applied: this read is older
                self._drop(key)  # another process wrote: read everything again
                state = None
            if state is None:
                state = self._documents(conn, sql, tenant, version)
                self._tenants[key] = state
            new = list(dict.fromkeys(t for t in terms if t not in state.terms))
            tokens = _tokens(conn, new) if new else {}
            postings = [self._term(conn, sql, tenant, state, term, tokens) for term in terms]
            if know_df is not None and tokens and not state.fresh:
                for term, entry in zip(terms, postings, strict=True):
                    if tokens.get(term) is not None and term in new:  # read whole just now
                        know_df(term, len(entry.positions))
            weights = idf(terms)
            part = None if narrow is None else self._part(state, *narrow)
            small = part is not None and len(part) * 8 < len(state.rids)
            if small:
                scores, rids = self._scores(state, postings, weights, stats, part), state.rids[part]
            else:
                scores, rids = self._scores(state, postings, weights, stats, None), state.rids
                if part is not None:
                    inside = np.zeros(len(scores), dtype=np.bool_)
                    inside[part] = True
                    scores[~inside] = 0.0
            best = _top(rids, scores, limit, ties=ties)
            fresh = list(state.fresh)
            if fresh and narrow is not None and narrow[0] == GROUP_FIELDS.get(sql.table):
                wanted = set(narrow[1])  # the fresh rows of the narrowed groups only
                fresh = [rid for rid in fresh if state.fresh[rid] in wanted]
            if fresh:
                best += fresh_ranker(sorted(fresh))
                best.sort(key=lambda pair: (-pair[1], pair[0]))
            return best

    @staticmethod
    def _scores(
        state: _Tenant,
        postings: list[_Term],
        weights: dict[int, float],
        stats: tuple[float, float, float],
        part: npt.NDArray[np.int32] | None,
    ) -> npt.NDArray[np.float64]:
        """BM25 of every row (``part`` None) or of the rows at ``part`` (sorted
        positions), in that order; rows no longer live score 0."""
        avgdl, k1, b = stats
        lengths = state.lengths if part is None else state.lengths[part]
        norm = k1 * (1.0 - b + b * lengths / avgdl) if avgdl > 0 else np.full_like(lengths, k1)
        scores = np.zeros(len(lengths), dtype=np.float64)
        for i, term in enumerate(postings):
            if len(term.positions) == 0:
                continue
            if part is None:
                at, tf = term.positions, term.counts.astype(np.float64)  # float32 held
                gain = weights[i] * tf * (k1 + 1.0) / (tf + norm[at])
                scores += np.bincount(at, weights=gain, minlength=len(scores))
                continue
            found = np.searchsorted(term.positions, part)  # the part's rows in the postings
            found[found == len(term.positions)] = 0
            hit = term.positions[found] == part
            tf = term.counts[found[hit]].astype(np.float64)
            scores[hit] += weights[i] * tf * (k1 + 1.0) / (tf + norm[hit])
        scores[~(state.live if part is None else state.live[part])] = 0.0
        return scores

    @staticmethod
    def _part(state: _Tenant, name: str, values: list[str]) -> npt.NDArray[np.int32]:
        """The sorted positions of the rows whose ``name`` is one of ``values``."""
        index = state.by_group.get(name)
        if index is None:  # built once per field and tenant state: rows sorted by code
            # int32 as the postings' positions: searchsorted would convert them otherwise
            order = np.argsort(state.groups[name], kind="stable").astype(np.int32)
            index = state.by_group[name] = (order, state.groups[name][order])
        order, codes = index
        known = state.codes[name]
        pieces = []
        for code in sorted({known[v] for v in values if v in known}):
            at = np.int32(code)  # a Python int would make searchsorted convert ``codes``
            lo, hi = np.searchsorted(codes, at, "left"), np.searchsorted(codes, at, "right")
            pieces.append(order[lo:hi])
        if not pieces:
            return np.zeros(0, dtype=np.int32)
        return np.sort(np.concatenate(pieces)) if len(pieces) > 1 else pieces[0]

    def _documents(
        self, conn: sqlite3.Connection, sql: Statements, tenant: str, version: int
    ) -> _Tenant:
        names = INDEXED[sql.table]
        columns = ", ".join(f'm."{c}"' for c in names)
        rows = conn.execute(
            f"SELECT m.rid, d.sz, {columns} FROM {sql.table} AS m JOIN {sql.fts}_docsize AS d "
            "ON d.id = m.rid WHERE m.tenant = ? ORDER BY m.rid",
            (tenant,),
        ).fetchall()
        rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        lengths = np.fromiter((text_length(r[1]) for r in rows), dtype=np.float64, count=len(rows))
        groups: dict[str, npt.NDArray[np.int32]] = {}
        codes: dict[str, dict[str, int]] = {}
        for i, name in enumerate(names, start=2):
            known = codes[name] = {}
            groups[name] = np.fromiter(
                (known.setdefault(str(r[i]), len(known)) for r in rows),
                dtype=np.int32,
                count=len(rows),
            )
        return _Tenant(version, rids, lengths, np.ones(len(rows), dtype=np.bool_), groups, codes)

    def _term(
        self,
        conn: sqlite3.Connection,
        sql: Statements,
        tenant: str,
        state: _Tenant,
        term: str,
        tokens: dict[str, str | None] | None,
    ) -> _Term:
        cached = state.terms.get(term)
        if cached is not None:
            state.terms.move_to_end(term)
            return cached
        found: _Ids | None = None
        counts: npt.NDArray[np.float32] | None = None
        try:
            token = tokens.get(term) if tokens is not None else None
            if token is not None:  # FTS5's own index of the term's instances (all tenants')
                vocab = f"temp.{sql.fts}_instances"
                conn.execute(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {vocab} "
                    f"USING fts5vocab(main, {sql.fts}, instance)"
                )
                # One row per instance, in row order; one string rather than a Python
                # tuple per row (3-4x faster for a word in most of a million rows).
                (listed,) = conn.execute(
                    f"SELECT group_concat(doc) FROM {vocab} WHERE term = ? AND col = 'text'",
                    (token,),
                ).fetchone()
                docs = np.fromstring(listed or "", dtype=np.int64, sep=",")
                found, tally = np.unique(docs, return_counts=True)
                counts = tally.astype(np.float32)
        except sqlite3.OperationalError:  # no scratch table here (a read-only connection)
            found = None
        if found is None or counts is None:  # FTS5's phrase match, its instances counted per row
            rows = conn.execute(
                f"SELECT rowid, length(h) - length(replace(h, char(1), '')) FROM "
                f"(SELECT rowid, highlight({sql.fts}, 1, char(1), '') AS h FROM {sql.fts} "
                f"WHERE {sql.fts} MATCH ?)",
                (f'{fts_scope(tenant, None)} AND text : "{term}"',),
            ).fetchall()
            found = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            counts = np.fromiter((r[1] for r in rows), dtype=np.float32, count=len(rows))
            if len(found) > 1 and not (found[1:] > found[:-1]).all():  # scoring needs order
                order = np.argsort(found, kind="stable")
                found, counts = found[order], counts[order]
        at = np.searchsorted(state.rids, found)
        known = at < len(state.rids)
        known[known] = state.rids[at[known]] == found[known]  # rows written since: fresh
        at, counts = at[known], counts[known]
        live = state.live[at]  # rows rewritten since: scored as fresh rows
        entry = _Term(at[live].astype(np.int32), counts[live])
        state.terms[term] = entry
        self._held += len(entry.positions)
        self._evict()
        return entry

    def _evict(self) -> None:
        """Least recently used terms go until the postings held fit the bound (the
        term just read stays, whatever its size)."""
        while self._held > self._max:
            oldest: tuple[tuple[str, str], str] | None = None
            for key, state in self._tenants.items():
                if len(state.terms) > 1:
                    oldest = (key, next(iter(state.terms)))
                    break
            if oldest is None:
                return
            key, term = oldest
            gone = self._tenants[key].terms.pop(term)
            self._held -= len(gone.positions)


def _tokens(conn: sqlite3.Connection, terms: list[str]) -> dict[str, str | None] | None:
    """Each term as the collections' tokenizer indexes it (stemmed by FTS5's porter
    tokenizer itself, through a scratch table in the connection's in-memory temp
    schema, emptied at once), None for a term that is not exactly one token; or
    None when the connection cannot write its temp schema (read-only)."""
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.convmem_tokens "
            f"USING fts5(t, tokenize = {TOKENIZER})"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.convmem_token_vocab "
            "USING fts5vocab(temp, convmem_tokens, instance)"
        )
        values = ", ".join("(?, ?)" for _ in terms)
        conn.execute(
            f"INSERT INTO temp.convmem_tokens (rowid, t) VALUES {values}",
            [v for i, term in enumerate(terms, start=1) for v in (i, term)],
        )
    except sqlite3.OperationalError:
        return None
    try:
        found: dict[int, list[str]] = {}
        for token, doc in conn.execute("SELECT term, doc FROM temp.convmem_token_vocab"):
            found.setdefault(doc, []).append(token)
    finally:
        conn.execute("DELETE FROM temp.convmem_tokens")
    out: dict[str, str | None] = {}
    for i, term in enumerate(terms, start=1):
        made = found.get(i, [])
        out[term] = made[0] if len(made) == 1 else None
    return out


def _top(
    rids: _Ids, scores: npt.NDArray[np.float64], limit: int | None, *, ties: bool = False
) -> list[tuple[int, float]]:
    """The ``limit`` best rows with a positive score (None: all), best first (ties:
    lower rid); with ``ties``, also every row tied with the last of them."""
    matched = np.flatnonzero(scores > 0.0)
    if limit is not None and len(matched) > limit:
        # Keep every row tied with the last one kept, so ties break by rid as elsewhere.
        kth = np.partition(scores[matched], len(matched) - limit)[len(matched) - limit]
        matched = matched[scores[matched] >= kth]
    pairs = [(int(rids[i]), float(scores[i])) for i in matched]
    pairs.sort(key=lambda pair: (-pair[1], pair[0]))
    if limit is None or len(pairs) <= limit:
        return pairs
    if not ties:
        return pairs[:limit]
    last = pairs[limit - 1][1] if limit > 0 else float("inf")
    return [pair for pair in pairs if pair[1] >= last]
