"""Applying an extraction to the store: reconciled observations, the summary,
extracted traits; and undoing what deleted messages supported.

Used by :class:`memory_core.services.observations.Observations`, inside its
per-conversation transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from memory_core.backends.base import Backend, Collection, Where
from memory_core.embedding.base import Embedder
from memory_core.errors import ValidationError
from memory_core.extraction.base import (
    CUSTOMER_ROLES,
    ExtractionInput,
    ProposedObservation,
    ProposedSummary,
    TraitUpdate,
)
from memory_core.extraction.reconcile import Reconciler, policy_violation
from memory_core.extraction.reports import DecisionRecord
from memory_core.extraction.store import ProfileObservations
from memory_core.extraction.traits import (
    EXTRACTED_SOURCE,
    coerce_trait_value,
    source_rank,
    trait_id,
)
from memory_core.models import (
    Channel,
    Decision,
    Message,
    Summary,
    Trait,
    TraitDefinition,
    Usage,
    utcnow,
)

__all__ = ["ExtractionWriter", "forget_messages", "summary_id", "trait_updates"]

MIN_CONFIDENCE = 0.5


def summary_id(conversation_id: str) -> str:
    return f"sum:{conversation_id}"


class ExtractionWriter:
    """Reconciles and writes the proposals of one conversation (or one agent note)."""

    def __init__(
        self,
        store: ProfileObservations,
        reconciler: Reconciler,
        extractor: str,
        messages: Sequence[Message],
        *,
        conversation_id: str | None,
        channel: Channel | None,
        source: str = EXTRACTED_SOURCE,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> None:
        self.store = store
        self.reconciler = reconciler
        self.extractor = extractor
        self.messages = list(messages)
        self.conversation_id = conversation_id
        self.channel = channel
        self.source = source
        self.min_confidence = min_confidence
        self.usage = Usage()

    def _when(self, p: ProposedObservation) -> datetime:
        times = [m.ts for m in self.messages if m.id in p.evidence]
        return max(times) if times else utcnow()

    def apply(self, p: ProposedObservation, *, checked: bool = False) -> DecisionRecord:
        """Reconcile one proposal and write the outcome. ``checked`` skips the policy
        (the caller validated it, e.g. an agent's own note)."""
        record = DecisionRecord
        if not checked:
            why = policy_violation(p, self.messages, min_confidence=self.min_confidence)
            if why:
                return record(decision=Decision.DISCARD, kind=p.kind, text=p.text, reason=why)
        known = self.store.known(p)
        if known is not None:
            return record(
                decision=Decision.DUPLICATE,
                kind=p.kind,
                text=p.text,
                observation_id=known.id,
                target_id=known.id,
                reason="already recorded from these messages",
            )
        vector = self.store.vector(p.text)
        verdict, usage = self.reconciler.decide(p, self.store.candidates(p, vector))
        self.usage += usage
        where = {
            "valid_from": self._when(p),
            "conversation_id": self.conversation_id,
            "channel": self.channel,
            "extractor": self.extractor,
            "source": self.source,
        }
        note = f"{p.note}; {verdict.reason}".strip("; ")
        target = verdict.target
        if verdict.decision is Decision.DISCARD:
            return record(
                decision=Decision.DISCARD, kind=p.kind, text=p.text, reason=verdict.reason
            )
        if verdict.decision is Decision.DUPLICATE and target is not None:
            merged = self.store.merge(
                target, p, conversation_id=self.conversation_id, extractor=self.extractor, note=note
            )
            reason = verdict.reason if merged else f"{verdict.reason}; evidence already held"
            return record(
                decision=Decision.DUPLICATE,
                kind=p.kind,
                text=p.text,
                observation_id=target.id,
                target_id=target.id,
                reason=reason,
            )
        if verdict.decision is Decision.UPDATE and target is not None:
            new = self.store.supersede(target, p, vector, note=note, **where)  # type: ignore[arg-type]
            return record(
                decision=Decision.UPDATE,
                kind=p.kind,
                text=p.text,
                observation_id=new.id,
                target_id=target.id,
                reason=verdict.reason,
            )
        new = self.store.add(p, vector, note=note, **where)  # type: ignore[arg-type]
        return record(
            decision=Decision.ADD,
            kind=p.kind,
            text=p.text,
            observation_id=new.id,
            reason=verdict.reason,
        )

    def write_summary(self, data: ExtractionInput, summary: ProposedSummary | None) -> str | None:
        """Store (or replace) the conversation's summary; None removes a stale one."""
        backend, tenant = self.store.backend, self.store.tenant
        conv = data.conversation
        sid = summary_id(conv.id)
        if summary is None:
            backend.delete(tenant, Collection.SUMMARIES, Where(eq={"id": sid}))
            return None
        ids = {m.id for m in data.messages}
        record = Summary(
            id=sid,
            tenant=tenant,
            conversation_id=conv.id,
            profile_id=self.store.profile_id,
            channel=conv.channel,
            text=summary.text,
            outcome=summary.outcome,
            evidence=tuple(e for e in summary.evidence if e in ids),
            extractor=self.extractor,
            ts=conv.started_at,
        )
        vector = self.store.vector(record.text)
        backend.upsert(tenant, Collection.SUMMARIES, [record], vector)
        return sid


def _same(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return a == b


def trait_updates(
    backend: Backend,
    tenant: str,
    profile_id: str,
    data: ExtractionInput,
    updates: Sequence[TraitUpdate],
    schema: Mapping[str, TraitDefinition],
    existing: Sequence[Trait],
) -> tuple[list[str], list[str], list[str]]:
    """Store extracted trait values (source ``extracted``) that fit the schema, cite
    customer messages and are not older than the extracted value held. A higher-ranked
    source's different value is left alone and reported as a conflict.

    Returns (keys set, keys in conflict, rejections)."""
    customer = {m.id: m for m in data.messages if m.role in CUSTOMER_ROLES}
    written: list[str] = []
    conflicts: list[str] = []
    rejected: list[str] = []
    for u in updates:
        evidence = tuple(e for e in u.evidence if e in customer)
        if not evidence:
            rejected.append(f"trait {u.key!r}: cites no customer message")
            continue
        try:
            value = coerce_trait_value(schema.get(u.key), u.key, u.value)
        except ValidationError as exc:
            rejected.append(str(exc))
            continue
        when = max(customer[e].ts for e in evidence)
        held = next((t for t in existing if t.key == u.key and t.source == EXTRACTED_SOURCE), None)
        others = [
            t
            for t in existing
            if t.key == u.key and source_rank(t.source) > 1 and not _same(t.value, value)
        ]
        if others:
            conflicts.append(u.key)
        if held is not None and held.updated_at > when:
            continue  # the conversation is older than what we hold
        if held is not None and _same(held.value, value):
            if set(evidence) <= set(held.evidence):
                continue
            evidence = tuple(dict.fromkeys((*held.evidence, *evidence)))
        trait = Trait(
            id=trait_id(profile_id, u.key, EXTRACTED_SOURCE),
            tenant=tenant,
            profile_id=profile_id,
            key=u.key,
            value=value,
            source=EXTRACTED_SOURCE,
            confidence=u.confidence,
            updated_at=when,
            evidence=evidence,
        )
        backend.upsert(tenant, Collection.TRAITS, [trait])
        written.append(u.key)
    return written, conflicts, rejected


def forget_messages(
    backend: Backend,
    embedder: Embedder,
    tenant: str,
    profile_id: str,
    message_ids: Sequence[str],
    conversation_ids: Sequence[str],
) -> dict[str, int]:
    """What deleting these messages takes with it: they leave every observation's and
    extracted trait's evidence; observations and traits they alone supported are
    deleted; their conversations' summaries and extraction records are deleted (a
    summary may quote any message), so ``extract_all`` can redo them from what is left.
    Returns non-zero deletion counts."""
    gone = set(message_ids)
    store = ProfileObservations(backend, embedder, tenant, profile_id)
    deleted = 0
    for oid in list(store.by_id):
        o = store.by_id.get(oid)
        if o is None or not gone & set(o.evidence):
            continue
        remaining = tuple(e for e in o.evidence if e not in gone)
        if not remaining:
            store.remove(o)
            deleted += 1
            continue
        revisions = tuple(
            r.model_copy(update={"evidence": tuple(e for e in r.evidence if e not in gone)})
            for r in o.revisions
        )
        kept = o.model_copy(update={"evidence": remaining, "revisions": revisions})
        backend.upsert(tenant, Collection.OBSERVATIONS, [kept], store.vector(kept.text))
        store.by_id[kept.id] = kept
    traits = 0
    for t in backend.find(tenant, Collection.TRAITS, Where(eq={"profile_id": profile_id})):
        if not isinstance(t, Trait) or t.source != EXTRACTED_SOURCE or not gone & set(t.evidence):
            continue
        remaining = tuple(e for e in t.evidence if e not in gone)
        if remaining:
            backend.upsert(
                tenant, Collection.TRAITS, [t.model_copy(update={"evidence": remaining})]
            )
        else:
            traits += backend.delete(tenant, Collection.TRAITS, Where(eq={"id": t.id}))
    convs = list(dict.fromkeys(conversation_ids))
    counts = {
        "observations": deleted,
        "traits": traits,
        "summaries": backend.delete(
            tenant, Collection.SUMMARIES, Where(any_of={"conversation_id": convs})
        ),
        "extractions": backend.delete(tenant, Collection.EXTRACTIONS, Where(any_of={"id": convs})),
    }
    return {k: v for k, v in counts.items() if v}
