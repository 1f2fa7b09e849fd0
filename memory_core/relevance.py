"""Relevance: how recall ranks records against a query and what an item's score means.

Recall asks the backend for two raw views of a query (:func:`ranked`): BM25 over the
text (a keyword search) and cosine similarity of the stored vectors (a vector
search). Two numbers come out for each record:

* a **ranking key**, the fused score the order is decided by:
  ``(1 - alpha) * keyword + alpha * dense``, where ``keyword`` is the record's BM25
  and ``dense`` its cosine, each min-max normalised over that view's hits for the
  query (best hit 1, the deepest hit read 0): the two views then weigh in on the
  same footing, whatever the spread of each one's raw scores for this query (BM25
  grows with the number of query words; cosines of short texts bunch up); messages
  then get the re-scoring signals of :func:`rescore_messages` (neighbouring turns,
  session, dates the query names);
* an **evidence score** on a fixed scale: the cosine on a fixed scale
  (:func:`dense_evidence`) and the share of query words the text contains
  (:func:`keyword_evidence`; BM25 itself depends on corpus statistics) combined as
  ``1 - (1 - dense) * (1 - keyword)`` (either view is evidence; both, more), so a
  query nothing answers scores low whatever its best hit is.

The item's score is ``best evidence * key / key(first item)``: the first item
scores the best evidence of any candidate (how well the query matched anything),
the others in proportion to their ranking key, raised to their own evidence and to
the score of any item ranked after them (scores never rise down the list). So
scores keep the ranking's order, are comparable across queries, and
``RecallOptions.min_score`` drops weak matches (docs/recall.md says what values mean).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from memory_core.backends.base import (
    Backend,
    Collection,
    Hit,
    SearchMode,
    SupportsMessageRows,
    Vectors,
    Where,
)
from memory_core.embedding.dual import DenseView
from memory_core.models import Record

if TYPE_CHECKING:
    from memory_core.config import Settings

__all__ = [
    "Scored",
    "dense_evidence",
    "keyword_evidence",
    "ranked",
    "rescore_messages",
    "scaled",
]

R = TypeVar("R", bound=Record)

#: How many hits of each view a ranking reads: deep enough that the fusion and the
#: re-scoring see every plausible candidate, shallow enough to stay a few ms.
DEPTH = 100


@dataclass
class Scored(Generic[R]):
    """A record with its ranking key and its evidence score (see the module doc)."""

    record: R
    key: float
    evidence: float


def dense_evidence(
    cosine: float, settings: Settings, scale: tuple[float, float] | None = None
) -> float:
    """Cosine similarity on a fixed [0, 1] scale: 0 at or below
    ``recall_cosine_zero`` (what unrelated texts reach), 1 at or above
    ``recall_cosine_one`` (paraphrases), linear in between. ``scale``: another
    (zero, one), e.g. one of the two-embedder mode's views (``DenseView.scale``)."""
    zero, one = scale or (settings.recall_cosine_zero, settings.recall_cosine_one)
    return min(1.0, max(0.0, (cosine - zero) / (one - zero)))


def keyword_evidence(terms: frozenset[str], text: str) -> float:
    """The share of the query's words (stopwords aside, as a keyword search reads
    them) that ``text`` contains, suffixes folded (``lives`` matches ``live``,
    ``deliver`` matches ``delivery``).

    Unlike BM25 it needs no corpus statistics, so it means the same in a store of
    ten messages and of ten million: 0 when no query word occurs, 1 when all do."""
    if not terms:
        return 0.0
    words = _stems(text)
    missing = [term for term in terms - words if len(term) >= _PREFIX]
    found = len(terms & words)
    if missing:  # a word and its longer forms (deliver, delivery)
        ordered = sorted(words)
        for term in missing:
            at = bisect_left(ordered, term)  # the words term begins, if any, start here
            if (at < len(ordered) and ordered[at].startswith(term)) or any(
                term[:k] in words for k in range(_PREFIX, len(term))
            ):
                found += 1
    return found / len(terms)


_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")
_PREFIX = 5  # the shortest stem a longer word may extend


@lru_cache(maxsize=1 << 16)  # a vocabulary's words recur: fold each once
def _stem(word: str) -> str:
    """A light suffix fold (``moved``, ``moves``, ``moving``, ``move`` -> ``mov``)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _stems(text: str) -> frozenset[str]:
    return frozenset(map(_stem, _WORD.findall(text.casefold())))


def query_terms(text: str) -> frozenset[str]:
    """The words a keyword search looks for in ``text`` (the backend's rule), folded."""
    from memory_core.backends.sqlite import fts_query_terms

    return frozenset(_stem(t) for t in fts_query_terms(text))


def _minmax(hits: Sequence[Hit[Any]], *, every_match: bool = False) -> dict[str, float]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    low = min(scores)
    if every_match:
        low = min(low, 0.0)
    span = max(scores) - low
    return {h.record.id: (h.score - low) / span if span > 0 else 1.0 for h in hits}


def ranked(
    backend: Backend,
    tenant: str,
    collection: Collection[R],
    *,
    mode: SearchMode,
    text: str,
    vector: Callable[[], Vectors | None],
    where: Where,
    alpha: float,
    settings: Settings,
    depth: int = DEPTH,
    views: Callable[[Vectors], Sequence[DenseView]] | None = None,
) -> list[Scored[R]]:
    """The records matching ``where`` ranked against the query, best first.

    The keyword search runs before ``vector()`` is asked for the query's
    embedding, so an embedding computed in the background overlaps it.
    ``views``: the query vector as several dense views (the two-embedder mode's
    models, :meth:`~memory_core.embedding.DualEmbedder.views`): each nominates its
    own candidates, all are scored by every view together (:func:`_dense_hits`).

    A view's raw scores are min-max normalised over its hits; when a keyword search
    returns fewer hits than it may (it listed every record that matches), the
    zero of its scale is a non-match (BM25 0), not its weakest match: every hit
    matched some query word, and the weakest of three matches is not worth less
    than a record that matches nothing."""
    keyword: list[Hit[R]] = []
    if mode is not SearchMode.VECTOR:
        keyword = _search(
            backend, tenant, collection, mode=SearchMode.KEYWORD, text=text, where=where,
            limit=depth,
        )  # fmt: skip
    terms = query_terms(text)
    # The keyword hits' evidence before the embedding is waited for (it overlaps it).
    evidence = {
        h.record.id: keyword_evidence(terms, getattr(h.record, "text", "")) for h in keyword
    }
    query = vector() if mode is not SearchMode.KEYWORD else None
    dense_views: Sequence[DenseView] = []
    if query is not None:
        dense_views = [DenseView(query.array, 1.0, None)] if views is None else views(query)
    if mode is SearchMode.KEYWORD or query is None:
        alpha = 0.0
    elif mode is SearchMode.VECTOR:
        alpha = 1.0
    relative = _minmax(keyword, every_match=len(keyword) < depth)
    out: dict[str, Scored[R]] = {}
    for hit in keyword:
        rid = hit.record.id
        out[rid] = Scored(hit.record, (1.0 - alpha) * relative[rid], evidence[rid])
    nearest = _dense_hits(backend, tenant, collection, query, dense_views, where, depth, settings)
    closeness = _minmax(nearest)
    for hit in nearest:
        rid = hit.record.id
        entry = out.setdefault(rid, Scored(hit.record, 0.0, 0.0))
        entry.key += alpha * closeness[rid]
        dense = min(1.0, max(0.0, hit.score))
        entry.evidence = 1.0 - (1.0 - entry.evidence) * (1.0 - dense)
    return sorted(out.values(), key=lambda s: (-s.key, _id(s.record)))


def _dense_hits(
    backend: Backend,
    tenant: str,
    collection: Collection[R],
    query: Vectors | None,
    views: Sequence[DenseView],
    where: Where,
    depth: int,
    settings: Settings,
) -> list[Hit[R]]:
    """The dense view's hits, each scored on the fixed scale (:func:`dense_evidence`,
    not clipped: the key's min-max needs the spread).

    Several views (the two-embedder mode) are searched one by one, and each model
    nominates its own ``depth`` best: a record only one model finds still joins the
    pool. Every candidate is then scored by all views together, the sum of each
    view's share of its scale, so a model that is sure of a match (e5 on a
    question asked in another language) outweighs one that is not. A candidate a
    view did not return ranks below that view's last hit: it is given that hit's
    value (an upper bound; a view that lists every record misses none)."""
    if query is None or not views:
        return []
    found: list[dict[str, float]] = []
    records: dict[str, R] = {}
    for view in views:
        hits = _search(
            backend, tenant, collection, mode=SearchMode.VECTOR,
            vector=Vectors(query.model_id, view.vector), where=where, limit=depth,
        )  # fmt: skip
        zero, one = view.scale or (settings.recall_cosine_zero, settings.recall_cosine_one)
        found.append({h.record.id: (h.score - zero) / (one - zero) for h in hits})
        for h in hits:
            records.setdefault(h.record.id, h.record)
    weakest = [min(values.values(), default=0.0) for values in found]
    return [
        Hit(
            record=record,
            score=sum(
                view.share * values.get(rid, low)
                for view, values, low in zip(views, found, weakest, strict=True)
            ),
        )
        for rid, record in records.items()
    ]


def _search(
    backend: Backend,
    tenant: str,
    collection: Collection[R],
    *,
    mode: SearchMode,
    text: str | None = None,
    vector: Vectors | None = None,
    where: Where,
    limit: int,
) -> list[Hit[R]]:
    """``backend.search``; messages, on a backend that serves them as rows
    (:class:`~memory_core.backends.base.SupportsMessageRows`), come as
    :class:`~memory_core.backends.base.MessageRow` (what ranking reads, no record
    parsed: the caller reads whole records for what it returns)."""
    if collection is Collection.MESSAGES and isinstance(backend, SupportsMessageRows):
        rows = backend.search_rows(
            tenant, mode=mode, text=text, vector=vector, where=where, limit=limit
        )
        return [Hit(record=cast(Any, row), score=score) for row, score in rows]
    return backend.search(
        tenant, collection, mode=mode, text=text, vector=vector, where=where, limit=limit
    )


def _id(record: Any) -> str:
    return str(record.id)


def scaled(items: Iterable[Scored[R]]) -> list[tuple[R, float]]:
    """Records best first with their item score: the first one scores the best
    evidence among them (how well the query matched anything at all), the others
    in proportion to their ranking key, but never below their own evidence nor
    below any item ranked after them (so scores fall along the ranking)."""
    ordered = sorted(items, key=lambda s: (-s.key, _id(s.record)))
    if not ordered:
        return []
    best = min(1.0, max(s.evidence for s in ordered))
    top = best / ordered[0].key if ordered[0].key > 0 else 0.0
    out: list[tuple[R, float]] = []
    floor = 0.0
    for s in reversed(ordered):
        floor = max(floor, min(1.0, s.evidence), min(best, s.key * top))
        out.append((s.record, floor))
    out.reverse()
    return out


# -- messages: re-scoring with the shape of a conversation ----------------------------


def rescore_messages(
    backend: Backend,
    tenant: str,
    profile_id: str,
    pool: list[Scored[Any]],
    query: str,
    where: Where,
    settings: Settings,
    now: datetime | None = None,
) -> list[Scored[Any]]:
    """Messages re-scored with three signals of how conversations hold evidence
    (weights are settings, 0 turns a signal off):

    * neighbours (``recall_neighbour_weight``): a turn gains this share of its best
      adjacent turn's score in the same conversation, half that share of the best
      turn two away, and so on up to ``recall_neighbour_reach`` turns (answers sit in
      runs of turns: a question and its reply, a reply to "how is it working?" two
      turns after the topic was named, a story told over several turns); the
      neighbours of the best candidates join the pool;
    * session (``recall_session_weight``): a turn gains this share of the best score
      in its conversation, neighbours' shares included (its best run of turns:
      questions are about episodes);
    * dates (``recall_date_weight``): a turn held on a day, in a month or a year the
      query names gains this much (a query that names its time carries its own
      filter; a month or day named without a year matches it in any year).
    Only the ranking keys change: an item's evidence stays its own match, so the
    score scale (:func:`scaled`) is not inflated by the signals."""
    nw, sw, dw = (
        settings.recall_neighbour_weight,
        settings.recall_session_weight,
        settings.recall_date_weight,
    )
    if not pool:
        return pool
    base = {s.record.id: s for s in pool}
    by_pos = {(s.record.conversation_id, s.record.seq): s for s in pool}
    reach = settings.recall_neighbour_reach
    if nw > 0:
        _add_neighbours(backend, tenant, profile_id, pool, by_pos, base, where, reach)
    smoothed: dict[str, float] = {}  # a turn's key with its neighbours' shares
    for s in base.values():
        r = s.record
        key = s.key
        if nw > 0:
            for distance in range(1, reach + 1):
                around = (by_pos.get((r.conversation_id, r.seq + d)) for d in (-distance, distance))
                best = max((a.key for a in around if a is not None), default=0.0)
                key += nw * 0.5 ** (distance - 1) * best
        smoothed[r.id] = key
    best_key: dict[str, float] = {}  # per conversation: its best run of turns
    for s in base.values():
        conv = s.record.conversation_id
        best_key[conv] = max(best_key.get(conv, 0.0), smoothed[s.record.id])
    dates = _named_periods(query, now) if dw > 0 else []
    out: list[Scored[Any]] = []
    for s in base.values():
        r = s.record
        key = smoothed[r.id]
        if sw > 0:
            key += sw * best_key[r.conversation_id]
        if dates and any(_within(r.ts, period) for period in dates):
            key += dw
        out.append(Scored(r, key, s.evidence))
    return sorted(out, key=lambda s: (-s.key, _id(s.record)))


#: The best candidates whose neighbouring turns join the pool.
NEIGHBOUR_SEEDS = 50


def _add_neighbours(
    backend: Backend,
    tenant: str,
    profile_id: str,
    pool: list[Scored[Any]],
    by_pos: dict[tuple[str, int], Scored[Any]],
    base: dict[str, Scored[Any]],
    where: Where,
    reach: int,
) -> None:
    """Read the turns up to ``reach`` away from the best candidates that are not
    candidates yet (one query) and add them to the pool with no score of their own."""
    wanted: set[tuple[str, int]] = set()
    offsets = [d for distance in range(1, reach + 1) for d in (-distance, distance)]
    for s in pool[:NEIGHBOUR_SEEDS]:
        for d in offsets:
            pos = (s.record.conversation_id, s.record.seq + d)
            if pos not in by_pos and pos[1] >= 0:
                wanted.add(pos)
    if not wanted:
        return
    found: list[Any] = []
    if isinstance(backend, SupportsMessageRows):  # one lookup, rows only
        mine = where.and_(Where(eq={"profile_id": profile_id}))
        found = backend.message_rows(tenant, mine, sorted(wanted))
        found.sort(key=lambda m: (m.conversation_id, m.id))  # as the lookups below
    else:
        per_conversation: dict[str, list[int]] = {}
        for conv, seq in sorted(wanted):
            per_conversation.setdefault(conv, []).append(seq)
        for conv, seqs in per_conversation.items():
            found += backend.find(
                tenant,
                Collection.MESSAGES,
                where.and_(
                    Where(
                        eq={"profile_id": profile_id, "conversation_id": conv},
                        any_of={"seq": seqs},
                    )
                ),
            )
    for m in found:
        pos = (m.conversation_id, m.seq)
        if pos in wanted and m.id not in base:
            entry: Scored[Any] = Scored(m, 0.0, 0.0)
            base[m.id] = entry
            by_pos[pos] = entry


#: A period a query names: its first day, its precision, and whether the query
#: named the year (a month or day named alone matches it in any year).
_Period = tuple[date, str, bool]
_YEAR_WRITTEN = re.compile(r"\d{4}")


def _named_periods(query: str, now: datetime | None) -> list[_Period]:
    """The days, months and years the query names (relative ones resolved against
    ``now``). A month or day named without a year ("in June", "on May 3rd") pins no
    year: a customer's history spans years, and the query's own time is no clue to
    which one it means, so it matches that month or day of any year."""
    from memory_core.extraction.dates import MONTHS, find_dates

    ref = now or datetime.now(UTC)
    return [
        (
            m.start,
            m.precision,
            bool(_YEAR_WRITTEN.search(m.phrase))
            or MONTHS.keys().isdisjoint(_WORD.findall(m.phrase.casefold())),  # "last month"
        )
        for m in find_dates(query, ref, future=False)
        if m.precision in ("day", "month", "year")
    ]


def _within(ts: datetime, period: _Period) -> bool:
    start, precision, year_named = period
    if year_named and ts.year != start.year:
        return False
    if precision == "year":
        return True
    if precision == "month":
        return ts.month == start.month
    return (ts.month, ts.day) == (start.month, start.day)
