"""What each console page shows, read from one tenant handle (blocking calls;
the routes run them in a worker thread)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from memory_core import tools
from memory_core.backends.base import Collection, Where
from memory_core.errors import NotFoundError
from memory_core.extraction.traits import TraitView
from memory_core.memory import Memory
from memory_core.models import (
    Conversation,
    ConversationStatus,
    Identifier,
    MergeRecord,
    Message,
    Observation,
    ObservationStatus,
    Profile,
    Summary,
)

__all__ = [
    "Card",
    "ConversationPage",
    "Evidence",
    "Live",
    "ObservationEntry",
    "conversation_page",
    "live_news",
    "profile_card",
    "recall",
    "search_knowledge",
]


@dataclass
class Evidence:
    """A message an observation was drawn from (None when it was erased since)."""

    id: str
    message: Message | None


@dataclass
class ObservationEntry:
    observation: Observation
    evidence: list[Evidence]
    versions: list[Observation] = field(default_factory=list)
    """Earlier versions of the same fact (superseded), oldest first."""


@dataclass
class ConversationEntry:
    conversation: Conversation
    summary: Summary | None


@dataclass
class Card:
    profile: Profile
    identifiers: list[Identifier]
    channels: list[str]
    traits: list[TraitView]
    active: list[ObservationEntry]
    history: list[ObservationEntry]
    conversations: list[ConversationEntry]
    merged_from: list[MergeRecord]
    """The merges into this profile that can be undone (newest first)."""


def _messages_by_id(memory: Memory, conversations: list[Conversation]) -> dict[str, Message]:
    out: dict[str, Message] = {}
    for conv in conversations:
        for m in memory.conversations.list_messages(conv.id):
            out[m.id] = m
    return out


def _evidence(memory: Memory, ids: tuple[str, ...], known: dict[str, Message]) -> list[Evidence]:
    found: list[Evidence] = []
    for mid in ids:
        message = known.get(mid)
        if message is None:
            try:
                message = memory.conversations.get_message(mid)
            except NotFoundError:
                message = None
        found.append(Evidence(mid, message))
    return found


def profile_card(memory: Memory, ref: str) -> Card:
    """Everything the profile card shows about one customer."""
    profile = memory.profiles.get(ref)
    conversations = memory.conversations.list(profile.id, limit=1000)
    summaries = {s.conversation_id: s for s in memory.summaries.list(profile.id, limit=None)}
    messages = _messages_by_id(memory, conversations)
    every = memory.observations.list(profile.id, include_superseded=True)
    by_id = {o.id: o for o in every}

    def earlier(o: Observation) -> list[Observation]:
        chain: list[Observation] = []
        seen: set[str] = {o.id}
        cur = o
        while cur.supersedes and cur.supersedes in by_id and cur.supersedes not in seen:
            cur = by_id[cur.supersedes]
            seen.add(cur.id)
            chain.append(cur)
        return list(reversed(chain))

    active = [
        ObservationEntry(o, _evidence(memory, o.evidence, messages), earlier(o))
        for o in sorted(every, key=lambda o: o.valid_from, reverse=True)
        if o.status is ObservationStatus.ACTIVE
    ]
    history = [
        ObservationEntry(o, _evidence(memory, o.evidence, messages))
        for o in sorted(every, key=lambda o: o.updated_at, reverse=True)
        if o.status is not ObservationStatus.ACTIVE
    ]
    return Card(
        profile=profile,
        identifiers=memory.profiles.identifiers(profile.id),
        channels=sorted({c.channel.value for c in conversations}),
        traits=memory.traits.views(profile.id),
        active=active,
        history=history,
        conversations=[ConversationEntry(c, summaries.get(c.id)) for c in conversations],
        merged_from=_merged_into(memory, profile.id),
    )


def _merged_into(memory: Memory, profile_id: str) -> list[MergeRecord]:
    """The merge records of profiles merged into this one, with their provenance."""
    found = memory.backend.find(
        memory.name, Collection.MERGES, Where(eq={"survivor_id": profile_id})
    )
    return sorted(
        (r for r in found if r.profile is not None), key=lambda r: r.merged_at, reverse=True
    )


@dataclass
class ConversationPage:
    conversation: Conversation
    profile: Profile
    messages: list[Message]
    summary: Summary | None
    observations: list[Observation]
    """Active observations of the customer, newest first."""


def conversation_page(memory: Memory, conversation_id: str) -> ConversationPage:
    """A conversation's full transcript, its summary and the customer's observations."""
    conv = memory.conversations.get(conversation_id)
    profile = memory.profiles.get(conv.profile_id)
    try:
        summary: Summary | None = memory.summaries.get(conv.id)
    except NotFoundError:
        summary = None
    observations = sorted(
        memory.observations.list(profile.id), key=lambda o: o.created_at, reverse=True
    )
    return ConversationPage(
        conversation=conv,
        profile=profile,
        messages=memory.conversations.list_messages(conv.id),
        summary=summary,
        observations=observations,
    )


@dataclass
class Live:
    """What changed in an open conversation since the last look."""

    messages: list[Message]
    observations: list[Observation]
    ended: bool


def live_news(
    memory: Memory, conversation_id: str, after: int, seen: set[str], since: datetime
) -> Live:
    """Messages after the first ``after`` of a conversation, and the customer's
    active observations created at or after ``since`` whose ids are not in ``seen``
    (which this adds them to)."""
    conv = memory.conversations.get(conversation_id)
    messages = memory.conversations.list_messages(conv.id, offset=after)
    fresh = [
        o
        for o in memory.observations.list(conv.profile_id)
        if o.created_at >= since and o.id not in seen
    ]
    seen.update(o.id for o in fresh)
    return Live(messages, fresh, conv.status is not ConversationStatus.OPEN)


def recall(memory: Memory, ref: str, query: str, include_knowledge: bool) -> tools.RecallOutput:
    """Exactly what the recall tool hands an AI agent for this customer and query."""
    request = tools.RecallInput(
        customer=ref, query=query or None, include_knowledge=include_knowledge and bool(query)
    )
    return tools.recall(memory, request)


def search_knowledge(memory: Memory, query: str) -> tools.SearchKnowledgeOutput:
    """The knowledge search tool's answer: cited passages, best first."""
    return tools.search_knowledge(memory, tools.SearchKnowledgeInput(query=query))
