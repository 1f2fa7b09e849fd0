"""Subject access export: everything held about one customer, as one JSON document.

The document (:class:`ProfileExport`) holds the profile and the profiles merged
into it, identifiers, traits with their sources and evidence, observations of
every status with their revision history, conversation summaries, conversations
with their messages, merge records (with their provenance), the pending merges
naming it, extraction records and the audit events that name the profile. It is
what ``memory.export_profile`` and ``convmem export`` return.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from memory_core.backends.base import Collection, Where
from memory_core.models import (
    AuditEvent,
    ConnectorState,
    Conversation,
    ExtractionRecord,
    IdentifierLink,
    MergeRecord,
    Message,
    Observation,
    PendingMerge,
    Profile,
    Record,
    Summary,
    Trait,
    utcnow,
)

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = ["EXPORT_FORMAT", "ConversationExport", "ProfileExport", "build_export"]

EXPORT_FORMAT = "convmem.subject-access/1"


class ConversationExport(BaseModel):
    model_config = ConfigDict(frozen=True)

    conversation: Conversation
    messages: list[Message]


class ProfileExport(BaseModel):
    """Everything held about one profile."""

    model_config = ConfigDict(frozen=True)

    format: str = EXPORT_FORMAT
    exported_at: datetime = Field(default_factory=utcnow)
    tenant: str
    profile: Profile
    merged_profiles: list[Profile]
    identifiers: list[IdentifierLink]
    traits: list[Trait]
    observations: list[Observation]
    summaries: list[Summary]
    conversations: list[ConversationExport]
    merges: list[MergeRecord]
    extractions: list[ExtractionRecord]
    audit: list[AuditEvent]
    pending_merges: list[PendingMerge] = Field(default_factory=list)
    connector_state: list[ConnectorState] = Field(default_factory=list)
    """What connectors keep about the customer (applied event ids, value versions,
    push digests, message threads): ids and times only."""

    def counts(self) -> dict[str, int]:
        return {
            "identifiers": len(self.identifiers),
            "traits": len(self.traits),
            "observations": len(self.observations),
            "summaries": len(self.summaries),
            "conversations": len(self.conversations),
            "messages": sum(len(c.messages) for c in self.conversations),
        }


def _of(records: list[Record], kind: type[Any]) -> list[Any]:
    return [r for r in records if isinstance(r, kind)]


def build_export(ctx: Context, tenant: str, profile: Profile) -> ProfileExport:
    """The export of a live profile (resolved by the caller)."""
    backend = ctx.backend
    merged = _of(
        backend.find(tenant, Collection.PROFILES, Where(eq={"merged_into": profile.id})), Profile
    )
    ids = [profile.id, *(p.id for p in merged)]
    mine = Where(any_of={"profile_id": ids})
    conversations = _of(
        backend.find(tenant, Collection.CONVERSATIONS, mine, order_by="started_at"), Conversation
    )
    messages = _of(backend.find(tenant, Collection.MESSAGES, mine, order_by="ts"), Message)
    per_conversation: dict[str, list[Message]] = {c.id: [] for c in conversations}
    for m in messages:
        per_conversation.setdefault(m.conversation_id, []).append(m)
    for held in per_conversation.values():
        held.sort(key=lambda m: m.seq)
    targets = {f"profile:{pid}" for pid in ids}
    audit = [
        e
        for e in _of(
            backend.find(tenant, Collection.AUDIT, Where(any_of={"target": sorted(targets)})),
            AuditEvent,
        )
    ]
    return ProfileExport(
        tenant=tenant,
        profile=profile,
        merged_profiles=merged,
        identifiers=_of(backend.find(tenant, Collection.IDENTIFIERS, mine), IdentifierLink),
        traits=_of(backend.find(tenant, Collection.TRAITS, mine, order_by="key"), Trait),
        observations=_of(
            backend.find(tenant, Collection.OBSERVATIONS, mine, order_by="created_at"), Observation
        ),
        summaries=_of(backend.find(tenant, Collection.SUMMARIES, mine, order_by="ts"), Summary),
        conversations=[
            ConversationExport(conversation=c, messages=per_conversation.get(c.id, []))
            for c in conversations
        ],
        merges=_of(
            backend.find(tenant, Collection.MERGES, Where(any_of={"survivor_id": ids})),
            MergeRecord,
        ),
        extractions=_of(backend.find(tenant, Collection.EXTRACTIONS, mine), ExtractionRecord),
        audit=sorted(audit, key=lambda e: e.id),
        pending_merges=sorted(
            {
                p.id: p
                for side in ("profile_a", "profile_b")
                for p in backend.find(tenant, Collection.PENDING_MERGES, Where(any_of={side: ids}))
            }.values(),
            key=lambda p: p.id,
        ),
        connector_state=_of(backend.find(tenant, Collection.CONNECTOR_STATE, mine), ConnectorState),
    )
