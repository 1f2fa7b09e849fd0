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
from memory_core.tools._base import (
    CUSTOMER_HELP,
    TRAIT_SOURCE,
    Customer,
    Identifiers,
    Model,
    is_profile_id,
)

__all__ = [
    "MessageInput",
    "ObservationInput",
    "ObservationOut",
    "RememberInput",
    "RememberOutput",
    "remember",
]


class MessageInput(Model):
    role: Role = Field(description="ai_agent is you.")
    text: str = Field(min_length=1)
    ts: datetime | None = Field(default=None, description="ISO 8601; default now.")
    id: str | None = Field(default=None, description="Your id: a retry skips it.")


class ObservationInput(Model):
    text: str = Field(
        min_length=1,
        max_length=500,
        description="Third person, e.g. 'Prefers morning calls'. No secrets.",
    )
    kind: ObservationKind = ObservationKind.CONTEXT
    trait_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The slot it fills, e.g. location: a new value replaces the old.",
    )
    value: str | None = Field(default=None, min_length=1, max_length=200)
    evidence: list[str] = Field(
        default_factory=list, max_length=50, description="Ids of messages showing it."
    )


class RememberInput(Model):
    customer: Customer | None = Field(
        default=None, description=CUSTOMER_HELP + " Needed to start a conversation."
    )
    conversation_id: str | None = Field(
        default=None,
        description="Add to it; omit to start one (then reuse the returned id).",
    )
    channel: Channel | None = Field(default=None, description="Needed to start a conversation.")
    messages: list[MessageInput] = Field(default_factory=list, max_length=500)
    observations: list[ObservationInput] = Field(
        default_factory=list,
        max_length=50,
        description="Short statements learned about the customer.",
    )
    end_conversation: bool = Field(
        default=False, description="It is over: summarise it and extract what it tells."
    )
    link_identifiers: Identifiers = Field(
        default_factory=list, description="More identifiers of the customer to link."
    )
    subject: str | None = None


class ObservationOut(Model):
    id: str = Field(description="The observation's id (observation_id elsewhere).")
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
        customer = request.customer
        by_id = customer is not None and is_profile_id(customer)
        identifiers = [customer] if customer is not None and not by_id else []
        # A dict, so the engine validates it and reports bad messages as ValidationError.
        result = memory.ingest(
            {
                "channel": channel,
                "id": request.conversation_id,
                "customer": identifiers + list(request.link_identifiers),
                "profile_id": customer if by_id else None,
                "subject": request.subject,
                "ended": False,  # closed below through end_conversation, which extracts
                "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            }
        )
        conversation, profile_id = result.conversation, result.profile.id
        added, skipped = [m.id for m in result.messages], result.skipped
        merged = list(result.merged_profile_ids)
        for ident in request.link_identifiers:
            # Resolution leaves a profile with history apart (a pending merge); the
            # agent saying these identifiers are this customer's merges it.
            owner = memory.profiles.find(ident)
            if owner is not None and owner.id != profile_id:
                survivor = memory.profiles.link(profile_id, ident).id
                merged += sorted({profile_id, owner.id} - {survivor})
                profile_id = survivor
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
    if existing is not None:
        return
    if request.conversation_id is not None:
        given = {
            "messages": bool(request.messages),
            "channel": request.channel is not None,
            "customer": request.customer is not None,
        }
        missing = [name for name, ok in given.items() if not ok]
        if missing:
            raise NotFoundError(
                f"no conversation {request.conversation_id!r}: check the id, or start a "
                f"conversation under this id by also giving {', '.join(missing)}",
                kind="conversation",
            )
    if request.messages:
        if request.channel is None:
            raise ValidationError(
                "channel is required to start a conversation: one of "
                + ", ".join(c.value for c in Channel)
            )
        if request.customer is None:
            raise ValidationError(
                "to start a conversation, give the customer: a profile id or an identifier "
                "(e.g. customer='phone:+16175550142')"
            )
        return
    if request.link_identifiers:
        raise ValidationError(
            "link_identifiers are linked when messages are stored; to link them now, call "
            "update_profile"
        )
    if request.end_conversation:
        raise ValidationError("end_conversation needs the conversation: give its conversation_id")
    if request.customer is None:
        raise ValidationError(
            "to record observations, say who they are about: the conversation_id or the "
            "customer (e.g. customer='phone:+16175550142')"
        )


def _refs(request: RememberInput) -> list[str]:
    """The customer references of a request: ``customer``, then the identifiers to link."""
    head = [request.customer] if request.customer is not None else []
    return head + list(request.link_identifiers)


def _check_owner(memory: Memory, request: RememberInput, existing: Conversation) -> None:
    """An existing conversation is only added to for its own customer: a customer or
    an identifier of somebody else is refused rather than merging the two customers
    (merging is a deliberate act: update_profile with link_identifiers)."""
    owner = memory.profiles.get(existing.profile_id).id
    for ref in _refs(request):
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
        for ref in _refs(request):
            found = memory.profiles.find(ref)
            if found is not None:
                customer = found.id
                break
    else:
        customer = _known_customer(memory, request)
    for n, obs in enumerate(request.observations):
        check_statement(memory, f"observations.{n}", obs.text, obs.kind, obs.trait_key, obs.value)
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


def check_statement(
    memory: Memory,
    where: str,
    text: str,
    kind: ObservationKind,
    trait_key: str | None,
    value: str | None,
) -> None:
    """Refuse, before anything is written, an observation the engine would refuse:
    sensitive text, a value without its slot, or one the tenant's policy denies.
    ``where`` names the argument in the error (``observations.0``)."""
    if why := sensitive(text):
        raise ValidationError(f"{where}: not remembered, the text {why}")
    if value is not None and trait_key is None:
        raise ValidationError(f"{where}: a value needs its trait_key")
    proposal = ProposedObservation(kind=kind, text=text, trait_key=trait_key, value=value)
    try:
        # the tenant's policy: kinds, keys, topics
        screen_observation(memory._ctx, memory.name, proposal)
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from exc


def _known_customer(memory: Memory, request: RememberInput) -> str:
    """The profile observations without a conversation are about: the customer's."""
    assert request.customer is not None
    try:
        return memory.profiles.get(request.customer).id
    except NotFoundError as exc:
        raise NotFoundError(
            f"{exc}; observations are recorded for a known customer: store a message from "
            "them first (remember with messages), or give their profile id",
            kind=exc.kind,
        ) from exc


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
