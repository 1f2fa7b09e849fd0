"""The ``remember`` tool: messages into a conversation, observations, and
closing the conversation (which runs extraction)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from memory_core.errors import NotFoundError, ValidationError
from memory_core.extraction import ProposedObservation
from memory_core.extraction.reconcile import sensitive
from memory_core.governance import screen_observation
from memory_core.memory import Memory
from memory_core.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Decision,
    Observation,
    ObservationKind,
    Role,
)
from memory_core.tools._base import TRAIT_SOURCE, Model

__all__ = [
    "MessageInput",
    "ObservationInput",
    "ObservationOut",
    "RememberInput",
    "RememberOutput",
    "remember",
]


class MessageInput(Model):
    role: Role = Field(description="Who spoke: customer, human_agent, ai_agent (you) or system.")
    text: str = Field(min_length=1, description="What was said, verbatim.")
    ts: datetime | None = Field(
        default=None, description="When (ISO 8601); default now. Give it for past messages."
    )
    id: str | None = Field(
        default=None,
        description="The message's id in your system. A message id already stored is skipped, "
        "so retrying a call never duplicates messages.",
    )


class ObservationInput(Model):
    text: str = Field(
        min_length=1,
        max_length=500,
        description="One short, self-contained statement about the customer, in the third "
        "person, e.g. 'Prefers a call back in the morning' or 'Is moving to Denver in June'. "
        "Never secrets, card numbers or passwords.",
    )
    kind: ObservationKind = Field(
        default=ObservationKind.CONTEXT,
        description="What it is about: preference, behaviour, context (circumstances), fact "
        "(account facts), intent (plans), event (something that happened) or complaint.",
    )
    trait_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The slot it fills, e.g. preferred_channel or location: a later "
        "observation for the same slot with another value replaces this one.",
    )
    value: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="With trait_key: the slot's value (e.g. 'sms', 'Denver').",
    )
    evidence: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Ids of this customer's messages that show it (e.g. ids of messages "
        "stored by this call, or message ids from recall).",
    )


class RememberInput(Model):
    messages: list[MessageInput] = Field(
        default_factory=list,
        max_length=500,
        description="The messages to store, in order.",
    )
    observations: list[ObservationInput] = Field(
        default_factory=list,
        max_length=50,
        description="Things you learned about the customer to remember as such (beyond the "
        "messages), e.g. a preference they stated or a fact you verified. Recorded after the "
        "messages, for the conversation's customer (or profile_id / customer without a "
        "conversation); the same statement twice is stored once.",
    )
    conversation_id: str | None = Field(
        default=None,
        description="Add to this conversation (created with this id if it does not exist). "
        "Omit to start a new conversation; reuse the returned conversation_id afterwards.",
    )
    customer: list[str] = Field(
        default_factory=list,
        description="The customer's identifiers as kind:value (e.g. ['phone:+16175550142']). "
        "Needed to start a conversation unless profile_id is given; new identifiers are "
        "linked to the customer.",
    )
    profile_id: str | None = Field(
        default=None, description="The customer's profile id, if you already know it."
    )
    channel: Channel | None = Field(
        default=None,
        description="The channel: voice, sms, chat, whatsapp or email. Needed to start a "
        "conversation; an existing conversation keeps its own.",
    )
    subject: str | None = Field(default=None, description="A short subject for a new conversation.")
    end_conversation: bool = Field(
        default=False,
        description="Close the conversation after storing these messages (no more messages "
        "can be added to it). Closing it summarises the conversation and extracts what it "
        "tells about the customer (observations, traits); give conversation_id alone to close "
        "a conversation without adding messages.",
    )


class ObservationOut(Model):
    id: str = Field(description="The observation's id (forget it with target='observation').")
    kind: ObservationKind
    text: str
    decision: Decision = Field(
        description="What this call did: add (new), update (replaced what was known for the "
        "same trait_key) or duplicate (already known; evidence merged)."
    )
    supersedes: str | None = Field(description="The observation it replaced, on update.")


class RememberOutput(Model):
    conversation_id: str | None = Field(
        description="Pass it to later remember and recall calls (None when only observations "
        "were recorded, without a conversation)."
    )
    profile_id: str = Field(description="The customer's profile id.")
    channel: Channel | None
    status: ConversationStatus | None
    added: int = Field(description="Messages stored by this call.")
    skipped: int = Field(description="Messages skipped because their id was already stored.")
    message_ids: list[str] = Field(description="Ids of the stored messages.")
    merged_profile_ids: list[str] = Field(
        description="Profiles merged into this one because the identifiers showed they are "
        "the same customer (their ids still resolve)."
    )
    observations: list[ObservationOut] = Field(
        description="The observations recorded, in the order given."
    )
    summary: str | None = Field(
        description="The conversation's summary, when this call closed it and one was made."
    )


def remember(memory: Memory, request: RememberInput) -> RememberOutput:
    """Store messages in a conversation (starting it and resolving the customer as
    needed), record observations, and close the conversation, running extraction.

    The request is checked before anything is written, observations against the
    tenant's policy too; should the engine still refuse an observation after the
    messages were stored, the error says what was done."""
    existing = None
    if request.conversation_id is not None:
        existing = _find_conversation(memory, request.conversation_id)
    _check_request(request, existing)
    if existing is not None:
        _check_owner(memory, request, existing)
    if request.observations:
        _check_observations(memory, request, existing)

    profile_id: str | None = None
    if existing is not None:
        profile_id = memory.profiles.get(existing.profile_id).id  # after merges
    conversation = existing
    added: list[str] = []
    skipped = 0
    merged: list[str] = []
    if request.messages:
        channel = request.channel or (existing.channel if existing is not None else None)
        assert channel is not None
        # A dict, so the engine validates it and reports bad messages as ValidationError.
        result = memory.ingest(
            {
                "channel": channel,
                "id": request.conversation_id,
                "customer": request.customer,
                "profile_id": request.profile_id,
                "subject": request.subject,
                "ended": False,  # closed below through end_conversation, which extracts
                "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            }
        )
        conversation, profile_id = result.conversation, result.profile.id
        added, skipped = [m.id for m in result.messages], result.skipped
        merged = list(result.merged_profile_ids)
    if profile_id is None:
        profile_id = _known_customer(memory, request)
    known = {o.id for o in memory.observations.list(profile_id)} if request.observations else set()
    observations: list[ObservationOut] = []
    for n, o in enumerate(request.observations):
        try:
            recorded = memory.observations.add(
                profile_id,
                o.text,
                o.kind,
                evidence=o.evidence,
                source=TRAIT_SOURCE,
                trait_key=o.trait_key,
                value=o.value,
            )
        except ValidationError as exc:  # e.g. refused by the tenant's policy
            where = conversation.id if conversation is not None else None
            raise _partly_done(n, exc, added, where, observations, request) from exc
        observations.append(_observed(known, recorded))
    summary = None
    if request.end_conversation and conversation is not None:
        was_open = conversation.status is ConversationStatus.OPEN
        conversation = memory.conversations.end(conversation.id)
        summary = _summary(memory, conversation.id) if was_open else None
    return RememberOutput(
        conversation_id=conversation.id if conversation is not None else None,
        profile_id=profile_id,
        channel=conversation.channel if conversation is not None else None,
        status=conversation.status if conversation is not None else None,
        added=len(added),
        skipped=skipped,
        message_ids=added,
        merged_profile_ids=merged,
        observations=observations,
        summary=summary,
    )


def _partly_done(
    n: int,
    exc: ValidationError,
    added: list[str],
    conversation_id: str | None,
    observations: list[ObservationOut],
    request: RememberInput,
) -> ValidationError:
    """The error for observation ``n`` refused after earlier parts of the call were
    written, saying what was stored so a retry sends only the rest."""
    done = []
    if added:
        done.append(f"{len(added)} message(s) stored in conversation {conversation_id}")
    if observations:
        done.append(f"the {len(observations)} observation(s) before it recorded")
    if not done:
        return ValidationError(f"observations.{n}: {exc}")
    rest = " (the conversation was not ended)" if request.end_conversation else ""
    return ValidationError(
        f"observations.{n}: {exc}. Already done: {', '.join(done)}{rest}; retry with only "
        "what is left"
    )


def _check_request(request: RememberInput, existing: Conversation | None) -> None:
    """Refuse a call that cannot be done as asked, naming what is missing."""
    if not (request.messages or request.observations or request.end_conversation):
        raise ValidationError(
            "nothing to remember: give messages, observations, or end_conversation=true "
            "with the conversation_id"
        )
    if existing is None and request.conversation_id is not None and not request.messages:
        raise NotFoundError(
            f"conversation {request.conversation_id!r} does not exist; to start it, give its "
            "first messages with channel and the customer's identifiers",
            kind="conversation",
        )
    named = bool(request.customer) or request.profile_id is not None
    if existing is None and request.messages:
        if request.channel is None:
            raise ValidationError(
                "channel is required to start a conversation: one of "
                + ", ".join(c.value for c in Channel)
            )
        if not named:
            raise ValidationError(
                "to start a conversation, give the customer's identifiers "
                "(e.g. customer=['phone:+16175550142']) or their profile_id"
            )
    if existing is None and not request.messages:
        if request.end_conversation:
            raise ValidationError(
                "end_conversation needs the conversation: give its conversation_id"
            )
        if not named:
            raise ValidationError(
                "to record observations, say who they are about: the conversation_id, the "
                "customer's profile_id or their identifiers (customer=['phone:+16175550142'])"
            )


def _check_owner(memory: Memory, request: RememberInput, existing: Conversation) -> None:
    """An existing conversation is only added to for its own customer: a profile_id or
    an identifier of somebody else is refused rather than merging the two customers
    (merging is a deliberate act: update_profile with link_identifiers)."""
    owner = memory.profiles.get(existing.profile_id).id
    for ref in (request.profile_id, *request.customer):
        if ref is None:
            continue
        profile = memory.profiles.find(ref)
        if profile is not None and profile.id != owner:
            raise ValidationError(
                f"conversation {existing.id!r} belongs to another customer than {ref!r}; "
                "give that customer's own conversation_id, or omit conversation_id to start "
                "a new conversation"
            )


def _check_observations(
    memory: Memory, request: RememberInput, existing: Conversation | None
) -> None:
    """Refuse observations the engine would refuse, before anything is written."""
    given = {m.id for m in request.messages if m.id is not None}
    customer: str | None = None  # the profile they are about, if it exists already
    if existing is not None:
        customer = memory.profiles.get(existing.profile_id).id
    elif request.messages:
        for ref in (request.profile_id, *request.customer):
            found = memory.profiles.find(ref) if ref is not None else None
            if found is not None:
                customer = found.id
                break
    else:
        customer = _known_customer(memory, request)
    for n, obs in enumerate(request.observations):
        if why := sensitive(obs.text):
            raise ValidationError(f"observations.{n}: not remembered, the text {why}")
        if obs.value is not None and obs.trait_key is None:
            raise ValidationError(f"observations.{n}: a value needs its trait_key")
        proposal = ProposedObservation(
            kind=obs.kind, text=obs.text, trait_key=obs.trait_key, value=obs.value
        )
        try:
            # the tenant's policy: kinds, keys, topics
            screen_observation(memory._ctx, memory.name, proposal)
        except ValidationError as exc:
            raise ValidationError(f"observations.{n}: {exc}") from exc
        for message_id in obs.evidence:
            if message_id in given:
                continue
            try:
                message = memory.conversations.get_message(message_id)
            except NotFoundError:
                message = None
            if message is None or message.profile_id != customer:
                raise ValidationError(
                    f"observations.{n}.evidence: {message_id!r} is not a message of this "
                    "customer; evidence are ids of their stored messages"
                )


def _known_customer(memory: Memory, request: RememberInput) -> str:
    """The profile observations without a conversation are about: the first of
    profile_id and the customer identifiers that is known."""
    refs = [r for r in (request.profile_id, *request.customer) if r is not None]
    first: NotFoundError | None = None
    for ref in refs:
        try:
            return memory.profiles.get(ref).id
        except NotFoundError as exc:
            first = first or exc
    assert first is not None
    raise NotFoundError(
        f"{first}; observations are recorded for a known customer: store a message from them "
        "first (remember with messages), or give their profile_id",
        kind=first.kind,
    )


def _observed(known: set[str], observation: Observation) -> ObservationOut:
    """What recording ``observation`` did, given the ids of the observations ``known`` before."""
    return ObservationOut(
        id=observation.id,
        kind=observation.kind,
        text=observation.text,
        decision=Decision.DUPLICATE if observation.id in known else observation.decision,
        supersedes=observation.supersedes,
    )


def _summary(memory: Memory, conversation_id: str) -> str | None:
    try:
        return memory.summaries.get(conversation_id).text
    except NotFoundError:  # extraction is off, or pending (the model was unreachable)
        return None


def _find_conversation(memory: Memory, conversation_id: str) -> Conversation | None:
    try:
        return memory.conversations.get(conversation_id)
    except NotFoundError:
        return None
