"""The profile tools: ``get_profile`` (with conversation summaries),
``update_profile`` and ``forget``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from memory_core.backends.base import Collection, Where
from memory_core.errors import ValidationError
from memory_core.identity import parse_identifier
from memory_core.memory import Memory
from memory_core.models import (
    Channel,
    ConversationStatus,
    DeletionReceipt,
    Outcome,
    Summary,
)
from memory_core.tools._base import (
    CUSTOMER_HELP,
    TRAIT_SOURCE,
    Customer,
    Identifiers,
    Model,
    TraitKey,
    TraitValue,
)

__all__ = [
    "ConversationOut",
    "ForgetInput",
    "GetProfileInput",
    "ProfileCounts",
    "ProfileOutput",
    "TraitOut",
    "UpdateProfileInput",
    "UpdateProfileOutput",
    "forget",
    "get_profile",
    "update_profile",
]


class GetProfileInput(Model):
    customer: Customer = Field(description=CUSTOMER_HELP)
    max_conversations: int = Field(default=5, ge=0, le=50)


class TraitOut(Model):
    key: str
    value: Any
    source: str = Field(description="Who set it: agent, api, crm, ...")
    confidence: float
    updated_at: datetime


class ConversationOut(Model):
    id: str
    channel: Channel
    status: ConversationStatus
    started_at: datetime
    ended_at: datetime | None
    subject: str | None
    summary: str | None = Field(
        description="What happened in it, written when it ended (None while it is open or "
        "before it was summarised)."
    )
    outcome: Outcome | None = Field(
        description="How it ended, from its summary: resolved, unresolved, escalated, unknown."
    )


class ProfileCounts(Model):
    identifiers: int
    traits: int
    conversations: int
    messages: int


class ProfileOutput(Model):
    profile_id: str
    display_name: str | None
    created_at: datetime
    updated_at: datetime
    identifiers: list[str] = Field(description="Normalised identifiers, as kind:value.")
    traits: list[TraitOut]
    recent_conversations: list[ConversationOut] = Field(
        description="Newest first, with their summaries."
    )
    counts: ProfileCounts


def get_profile(memory: Memory, request: GetProfileInput) -> ProfileOutput:
    """Who the customer is: identifiers, traits, latest conversations with their
    summaries, and counts."""
    return _profile_view(memory, request.customer, request.max_conversations)


def _profile_view(memory: Memory, ref: str, recent: int) -> ProfileOutput:
    profile = memory.profiles.get(ref)
    identifiers = memory.profiles.identifiers(profile.id)
    traits = memory.traits.list(profile.id)
    conversations = memory.conversations.list(profile.id, limit=recent) if recent else []
    # Both newest first by the conversation's start: the summaries of the `recent` latest
    # conversations are among the `recent` latest summaries.
    summaries: dict[str, Summary] = (
        {s.conversation_id: s for s in memory.summaries.list(profile.id, limit=recent)}
        if conversations
        else {}
    )
    mine = Where(eq={"profile_id": profile.id})
    # Memory has no per-profile count yet; the backend's count is tenant-scoped too.
    counts = ProfileCounts(
        identifiers=len(identifiers),
        traits=len(traits),
        conversations=memory.backend.count(memory.name, Collection.CONVERSATIONS, mine),
        messages=memory.backend.count(memory.name, Collection.MESSAGES, mine),
    )
    return ProfileOutput(
        profile_id=profile.id,
        display_name=profile.display_name,
        created_at=profile.created_at,
        updated_at=profile.updated_at,
        identifiers=[str(i) for i in identifiers],
        traits=[
            TraitOut(
                key=t.key,
                value=t.value,
                source=t.source,
                confidence=t.confidence,
                updated_at=t.updated_at,
            )
            for t in traits
        ],
        recent_conversations=[
            ConversationOut(
                id=c.id,
                channel=c.channel,
                status=c.status,
                started_at=c.started_at,
                ended_at=c.ended_at,
                subject=c.subject,
                summary=summaries[c.id].text if c.id in summaries else None,
                outcome=summaries[c.id].outcome if c.id in summaries else None,
            )
            for c in conversations
        ],
        counts=counts,
    )


# -- update_profile -------------------------------------------------------------


class UpdateProfileInput(Model):
    customer: Customer = Field(description=CUSTOMER_HELP)
    set_traits: dict[TraitKey, TraitValue] = Field(
        default_factory=dict, description="E.g. {'preferred_channel': 'sms'}."
    )
    clear_traits: list[TraitKey] = Field(default_factory=list, description="Keys to remove.")
    link_identifiers: Identifiers = Field(
        default_factory=list,
        description="More identifiers of the customer (merges a profile holding one).",
    )


class UpdateProfileOutput(Model):
    profile: ProfileOutput = Field(description="The profile after the update.")
    set_traits: list[str] = Field(description="Keys set.")
    cleared_traits: list[str] = Field(description="Keys removed (those that existed).")
    linked_identifiers: list[str] = Field(description="Identifiers linked, normalised.")
    merged_profile_ids: list[str] = Field(
        description="Profile ids merged away by the linking (they still resolve)."
    )


def update_profile(memory: Memory, request: UpdateProfileInput) -> UpdateProfileOutput:
    """Set or clear traits and link identifiers. All input is checked before any write."""
    if not (request.set_traits or request.clear_traits or request.link_identifiers):
        raise ValidationError(
            "nothing to update: give set_traits, clear_traits or link_identifiers"
        )
    both = sorted(set(request.set_traits) & set(request.clear_traits))
    if both:
        raise ValidationError(f"traits both set and cleared: {', '.join(both)}; choose one")
    region = memory.settings.default_region
    idents = [parse_identifier(i, default_region=region) for i in request.link_identifiers]
    profile = memory.profiles.get(request.customer)
    merged: list[str] = []
    for ident in idents:
        before = {profile.id}
        owner = memory.profiles.find(ident)
        if owner is not None:
            before.add(owner.id)
        profile = memory.profiles.link(profile.id, ident)
        merged += sorted(before - {profile.id})
    for key, value in request.set_traits.items():
        memory.traits.set(profile.id, key, value, source=TRAIT_SOURCE)
    cleared = [key for key in request.clear_traits if memory.traits.delete(profile.id, key).total]
    return UpdateProfileOutput(
        profile=_profile_view(memory, profile.id, 5),
        set_traits=list(request.set_traits),
        cleared_traits=cleared,
        linked_identifiers=[str(i) for i in idents],
        merged_profile_ids=merged,
    )


# -- forget ---------------------------------------------------------------------


class ForgetInput(Model):
    customer: Customer | None = Field(
        default=None, description="Their profile and everything known about them."
    )
    conversation_id: str | None = Field(default=None, description="With its messages.")
    message_id: str | None = None
    observation_id: str | None = Field(default=None, description="With its earlier versions.")


def forget(memory: Memory, request: ForgetInput) -> DeletionReceipt:
    """Delete permanently, from every index, exactly one thing, and return the
    deletion receipt."""
    given = {name: value for name, value in request if value is not None}
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of customer, conversation_id, message_id, observation_id"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if request.message_id is not None:
        return memory.conversations.delete_message(request.message_id)
    if request.conversation_id is not None:
        return memory.conversations.delete(request.conversation_id)
    if request.observation_id is not None:
        return memory.observations.delete(request.observation_id)
    assert request.customer is not None
    return memory.profiles.delete(request.customer)
