"""Recall of observations and summaries: what the ``ObservationSource`` and
``SummarySource`` of :mod:`memory_core.recall_sources` return.

Observations: the profile's active ones by default; every version with
``include_superseded``; those valid at ``as_of`` otherwise (history included).
Summaries: the profile's, of conversations started before ``as_of`` if given.
With ``since``/``until``, both are filtered by when they were true: observations
whose validity (``valid_from`` to ``valid_to``) overlaps the window, superseded
versions included; summaries of conversations started within it.
Both are ranked by the query like messages (keyword and vector views fused, scores
on the fixed scale of :mod:`memory_core.relevance`), or newest first without one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from memory_core.backends.base import Backend, Collection, Where
from memory_core.models import Observation, ObservationStatus, Summary, as_utc
from memory_core.recall import ItemType, Provenance, RecallItem, RecallQuery
from memory_core.relevance import ranked, scaled

if TYPE_CHECKING:
    from memory_core.config import Settings

__all__ = ["recall_observations", "recall_summaries"]


def recall_observations(backend: Backend, q: RecallQuery, settings: Settings) -> list[RecallItem]:
    opts = q.options
    window = opts.since is not None or opts.until is not None
    limit = opts.limit(ItemType.OBSERVATION)
    where = Where(eq={"profile_id": q.profile_id})
    if opts.as_of is not None:
        until = as_utc(opts.as_of) + timedelta(microseconds=1)
        where = where.and_(Where(lt={"valid_from": until}))
    elif not opts.include_superseded and not window:
        where = where.and_(Where(eq={"status": ObservationStatus.ACTIVE.value}))
    else:
        statuses = [ObservationStatus.ACTIVE.value, ObservationStatus.SUPERSEDED.value]
        where = where.and_(Where(any_of={"status": statuses}))
    if opts.until is not None:
        where = where.and_(Where(lt={"valid_from": as_utc(opts.until)}))
    depth = limit if opts.as_of is None and not window else limit * 4 + 20
    items: list[RecallItem] = []
    found = _ranked(backend, q, Collection.OBSERVATIONS, where, depth, "valid_from", settings)
    for record, score in found:
        if not isinstance(record, Observation) or score < _floor(q, settings):
            continue
        if opts.as_of is not None and not record.valid_at(opts.as_of):
            continue
        if not _overlaps(record.valid_from, record.valid_to, opts.since, opts.until):
            continue
        text = record.text
        if record.status is not ObservationStatus.ACTIVE and record.valid_to is not None:
            text = f"[until {record.valid_to:%Y-%m-%d}] {text}"
        items.append(
            RecallItem(
                type=ItemType.OBSERVATION,
                id=record.id,
                text=text,
                score=score,
                provenance=Provenance(
                    message_ids=record.evidence,
                    conversation_id=record.conversation_id,
                    channel=record.channel,
                    ts=record.valid_from,
                    source=record.extractor,
                ),
            )
        )
        if len(items) >= limit:
            break
    return items


def recall_summaries(backend: Backend, q: RecallQuery, settings: Settings) -> list[RecallItem]:
    opts = q.options
    limit = opts.limit(ItemType.SUMMARY)
    where = Where(eq={"profile_id": q.profile_id})
    if opts.as_of is not None:
        where = where.and_(Where(lt={"ts": as_utc(opts.as_of)}))
    if opts.since is not None:
        where = where.and_(Where(gte={"ts": as_utc(opts.since)}))
    if opts.until is not None:
        until = as_utc(opts.until)
        if opts.as_of is not None:
            until = min(until, as_utc(opts.as_of))
        where = where.and_(Where(lt={"ts": until}))
    items: list[RecallItem] = []
    for record, score in _ranked(backend, q, Collection.SUMMARIES, where, limit, "ts", settings):
        if not isinstance(record, Summary) or score < _floor(q, settings):
            continue
        items.append(
            RecallItem(
                type=ItemType.SUMMARY,
                id=record.id,
                text=record.text,
                score=score,
                provenance=Provenance(
                    message_ids=record.evidence,
                    conversation_id=record.conversation_id,
                    channel=record.channel,
                    ts=record.ts,
                    source=record.extractor,
                ),
            )
        )
    return items


def _floor(q: RecallQuery, settings: Settings) -> float:
    """``min_score`` applies to items ranked by a query (recency scores are no relevance)."""
    return q.options.floor(settings.recall_min_score or 0.0) if q.text is not None else 0.0


def _overlaps(
    start: datetime, end: datetime | None, since: datetime | None, until: datetime | None
) -> bool:
    """Whether validity from ``start`` until ``end`` (None: still valid) meets the
    window from ``since`` (inclusive) to ``until`` (exclusive; None: open)."""
    if until is not None and as_utc(start) >= as_utc(until):
        return False
    return since is None or end is None or as_utc(end) > as_utc(since)


def _ranked(
    backend: Backend,
    q: RecallQuery,
    collection: Collection,
    where: Where,
    limit: int,
    newest: str,
    settings: Settings,
) -> list[tuple[Any, float]]:
    """Records ranked against the query (or, with none, newest first), scored in [0, 1]."""
    opts = q.options
    if limit <= 0:
        return []
    if q.text is None:
        recent = backend.find(
            q.tenant, collection, where, order_by=newest, descending=True, limit=limit
        )
        n = max(len(recent), 1)
        return [(r, 1.0 - i / n) for i, r in enumerate(recent)]
    pool = ranked(
        backend,
        q.tenant,
        collection,
        mode=opts.mode,
        text=q.text,
        vector=lambda: q.vector,
        where=where,
        alpha=opts.alpha,
        settings=settings,
        depth=max(limit, 50),
    )
    return scaled(pool)[:limit]
