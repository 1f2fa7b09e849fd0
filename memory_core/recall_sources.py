"""What recall draws from: one source object per item type.

Recall (:class:`memory_core.services.recall.Recaller`) resolves the profile and
the query once into a :class:`~memory_core.recall.RecallQuery`, then asks each
source in :attr:`Context.recall_sources <memory_core.context.Context.recall_sources>`
for its ranked candidates; a source whose limit is 0 is not asked. Adding an
item type is adding a source, nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from memory_core.backends.base import Backend, Collection, MessageRow, Where
from memory_core.extraction.recalling import recall_observations, recall_summaries
from memory_core.extraction.traits import effective_traits, trait_id
from memory_core.models import Message, as_utc
from memory_core.recall import ItemType, Provenance, RecallItem, RecallOptions, RecallQuery
from memory_core.relevance import DEPTH, ranked, rescore_messages, scaled

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = [
    "KnowledgeSource",
    "MessageSource",
    "ObservationSource",
    "RecallSource",
    "SummarySource",
    "TraitSource",
    "default_sources",
    "message_filter",
]


class RecallSource(Protocol):
    """Contributes ranked candidates of one item type to a recall."""

    type: ItemType

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        """At most ``q.options.limit(self.type)`` items, best first, scores in [0, 1]."""
        ...


class TraitSource:
    """The profile's traits, one item per key: the effective value (the highest-ranked
    source, then the newest; see :func:`~memory_core.extraction.traits.effective_traits`),
    with other sources' differing values as a compact note rather than as facts of
    their own. Score = the winning value's confidence."""

    type = ItemType.TRAIT

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        opts = q.options
        found = self._ctx.backend.find(
            q.tenant, Collection.TRAITS, Where(eq={"profile_id": q.profile_id}), order_by="key"
        )
        items: list[RecallItem] = []
        for view in effective_traits(found):
            if view.confidence < opts.floor(self._ctx.min_score()):
                continue
            if len(items) >= opts.limit(ItemType.TRAIT):
                break
            text = f"{view.key}: {view.value}"
            if view.conflicts:
                others = "; ".join(f"{c.value} from {c.source}" for c in view.conflicts[:3])
                text += f" (conflicting: {others})"
            items.append(
                RecallItem(
                    type=ItemType.TRAIT,
                    id=trait_id(q.profile_id, view.key, view.source),
                    text=text,
                    score=view.confidence,
                    provenance=Provenance(
                        message_ids=view.evidence, ts=view.updated_at, source=view.source
                    ),
                )
            )
        return items


class ObservationSource:
    """Observations about the profile, ranked by the query (see extraction.recalling)."""

    type = ItemType.OBSERVATION

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        return recall_observations(self._ctx.backend, q, self._ctx.settings)


class SummarySource:
    """Summaries of the profile's conversations, ranked by the query."""

    type = ItemType.SUMMARY

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        return recall_summaries(self._ctx.backend, q, self._ctx.settings)


def message_filter(profile_id: str, opts: RecallOptions) -> Where:
    """The filter of a profile's messages under the recall options."""
    where = Where(eq={"profile_id": profile_id})
    if opts.channels is not None:
        where = where.and_(Where(any_of={"channel": sorted(c.value for c in opts.channels)}))
    if opts.roles is not None:
        where = where.and_(Where(any_of={"role": sorted(r.value for r in opts.roles)}))
    if opts.since is not None:
        where = where.and_(Where(gte={"ts": as_utc(opts.since)}))
    if opts.until is not None:
        where = where.and_(Where(lt={"ts": as_utc(opts.until)}))
    return where


class MessageSource:
    """The profile's messages ranked against the query (or the most recent ones);
    the turns that formed an inferred query are left out.

    With a query, the keyword and vector views are fused and re-scored with the
    shape of conversations (neighbouring turns, sessions, dates the query names;
    see :mod:`memory_core.relevance`); scores are on the fixed scale documented in
    docs/recall.md and ``min_score`` applies to them."""

    type = ItemType.MESSAGE

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        backend = self._ctx.backend
        opts, exclude = q.options, q.exclude_ids
        limit = opts.limit(ItemType.MESSAGE)
        where = message_filter(q.profile_id, opts)
        floor = 0.0
        if q.text is None:
            recent = backend.find(
                q.tenant, Collection.MESSAGES, where, order_by="ts", descending=True, limit=limit
            )
            n = max(len(recent), 1)
            scored = [(m, 1.0 - i / n) for i, m in enumerate(recent)]
        else:
            ctx, settings, text = self._ctx, self._ctx.settings, q.text
            dual = ctx.dual_embedder  # the two-embedder mode: both models' query vector
            pool = ranked(
                backend,
                q.tenant,
                Collection.MESSAGES,
                mode=opts.mode,
                text=text,
                vector=lambda: ctx.message_query_vectors(text, q.vector),
                where=where,
                alpha=opts.alpha,
                settings=settings,
                depth=max(DEPTH, limit + len(exclude)),
                views=None if dual is None else lambda query: dual.views(query.array),
            )
            pool = rescore_messages(backend, q.tenant, q.profile_id, pool, q.text, where, settings)
            scored = scaled(pool)
            floor = opts.floor(self._ctx.min_score())
        chosen: list[tuple[Any, float]] = []
        for record, score in scored:
            if score < floor or record.id in exclude:
                continue
            if len(chosen) >= limit:
                break
            chosen.append((record, score))
        items: list[RecallItem] = []
        for record, score in _whole(backend, q.tenant, chosen):
            items.append(
                RecallItem(
                    type=ItemType.MESSAGE,
                    id=record.id,
                    text=record.text,
                    score=score,
                    provenance=Provenance(
                        message_ids=(record.id,),
                        conversation_id=record.conversation_id,
                        channel=record.channel,
                        role=record.role,
                        ts=record.ts,
                    ),
                )
            )
        return items


def _whole(
    backend: Backend, tenant: str, chosen: list[tuple[Any, float]]
) -> list[tuple[Message, float]]:
    """``chosen`` with each :class:`~memory_core.backends.base.MessageRow` (what ranking
    read) replaced by its whole message, read in one call; a message deleted since
    it was ranked is left out."""
    rows = [record.id for record, _ in chosen if isinstance(record, MessageRow)]
    whole = {m.id: m for m in backend.get(tenant, Collection.MESSAGES, rows)} if rows else {}
    out: list[tuple[Message, float]] = []
    for record, score in chosen:
        message = whole.get(record.id) if isinstance(record, MessageRow) else record
        if message is not None:
            out.append((message, score))
    return out


class KnowledgeSource:
    """Knowledge-base chunks relevant to the query (only when asked for)."""

    type = ItemType.KNOWLEDGE

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def candidates(self, q: RecallQuery) -> list[RecallItem]:
        from memory_core.knowledge.recalling import recall_knowledge

        return recall_knowledge(self._ctx, q)


def default_sources(ctx: Context) -> tuple[RecallSource, ...]:
    """Traits, observations, summaries, messages, knowledge: the order items are listed in."""
    return (
        TraitSource(ctx),
        ObservationSource(ctx),
        SummarySource(ctx),
        MessageSource(ctx),
        KnowledgeSource(ctx),
    )
