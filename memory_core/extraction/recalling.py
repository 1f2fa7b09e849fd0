"""Recall of observations and summaries: what the ``ObservationSource`` and
``SummarySource`` of :mod:`memory_core.recall_sources` return.

Observations: the profile's active ones by default; every version with
``include_superseded``; those valid at ``as_of`` otherwise (history included).
Summaries: the profile's, of conversations started before ``as_of`` if given.
Both are ranked by the query like messages (hybrid by default), or newest first
without one, with scores in [0, 1].
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from memory_core.backends.base import Backend, Collection, SearchMode, Where
from memory_core.models import Observation, ObservationStatus, Summary, as_utc
from memory_core.recall import ItemType, Provenance, RecallItem, RecallQuery

__all__ = ["recall_observations", "recall_summaries"]


def recall_observations(backend: Backend, q: RecallQuery) -> list[RecallItem]:
    opts = q.options
    limit = opts.limit(ItemType.OBSERVATION)
    where = Where(eq={"profile_id": q.profile_id})
    if opts.as_of is not None:
        until = as_utc(opts.as_of) + timedelta(microseconds=1)
        where = where.and_(Where(lt={"valid_from": until}))
    elif not opts.include_superseded:
        where = where.and_(Where(eq={"status": ObservationStatus.ACTIVE.value}))
    else:
        statuses = [ObservationStatus.ACTIVE.value, ObservationStatus.SUPERSEDED.value]
        where = where.and_(Where(any_of={"status": statuses}))
    depth = limit if opts.as_of is None else limit * 4 + 20
    items: list[RecallItem] = []
    for record, score in _ranked(backend, q, Collection.OBSERVATIONS, where, depth, "valid_from"):
        if not isinstance(record, Observation) or score < opts.min_score:
            continue
        if opts.as_of is not None and not record.valid_at(opts.as_of):
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


def recall_summaries(backend: Backend, q: RecallQuery) -> list[RecallItem]:
    opts = q.options
    limit = opts.limit(ItemType.SUMMARY)
    where = Where(eq={"profile_id": q.profile_id})
    if opts.as_of is not None:
        where = where.and_(Where(lt={"ts": as_utc(opts.as_of)}))
    items: list[RecallItem] = []
    for record, score in _ranked(backend, q, Collection.SUMMARIES, where, limit, "ts"):
        if not isinstance(record, Summary) or score < opts.min_score:
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


def _ranked(
    backend: Backend,
    q: RecallQuery,
    collection: Collection,
    where: Where,
    limit: int,
    newest: str,
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
    hits = backend.search(
        q.tenant,
        collection,
        mode=opts.mode,
        text=q.text if opts.mode is not SearchMode.VECTOR else None,
        vector=q.vector,
        where=where,
        limit=limit,
        alpha=opts.alpha,
    )
    return [(h.record, max(0.0, min(1.0, h.score))) for h in hits]
