"""Profiles, their traits, observations, summaries and recall, and conversations
with their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from memory_core import tools
from memory_core.extraction import Explanation
from memory_core.extraction.traits import TraitView
from memory_core.governance.export import ProfileExport
from memory_core.memory import IngestResult
from memory_core.models import (
    Conversation,
    ConversationIn,
    DeletionReceipt,
    Message,
    Observation,
    ObservationKind,
    Profile,
    Summary,
    Trait,
)

from ..deps import Admin, Reader, Writer
from ..models import (
    CorrectObservationBody,
    CreateProfile,
    LinkIdentifier,
    MergeProfiles,
    MessagesAdded,
    MessagesBody,
    RecallBody,
    RetractBody,
    SetTrait,
)
from ..pages import Cursor, Limit, Page, page

__all__ = ["router"]

router = APIRouter()

Ref = Annotated[
    str,
    Path(
        min_length=1,
        max_length=320,
        description="Profile id (prf_...) or identifier as kind:value, e.g. phone:+16175550142.",
    ),
]
Id = Annotated[str, Path(min_length=1, max_length=200)]
TraitKeyPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$")]

# -- profiles -------------------------------------------------------------------------


@router.get("/profiles", tags=["profiles"], summary="List profiles, or look one up by identifier")
def list_profiles(
    api: Reader,
    identifier: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=320,
            description="Only the profile this identifier (kind:value) belongs to.",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Profile]:
    if identifier is not None:
        found = api.memory.profiles.find(identifier)
        return Page[Profile](items=[found] if found is not None else [])
    return page(lambda n, o: api.memory.profiles.list(limit=n, offset=o), limit, cursor)


@router.post(
    "/profiles",
    tags=["profiles"],
    status_code=status.HTTP_201_CREATED,
    summary="Resolve identifiers to a profile, creating it if none matches",
)
def create_profile(api: Writer, body: CreateProfile, response: Response) -> Profile:
    found = api.run(api.memory.profiles.add, body.identifiers, display_name=body.display_name)
    response.headers["Location"] = f"/v1/profiles/{found.id}"
    return found


@router.get(
    "/profiles/{ref}", tags=["profiles"], summary="A profile with traits and recent conversations"
)
def get_profile(
    api: Reader,
    ref: Ref,
    max_conversations: Annotated[int, Query(ge=0, le=50)] = 5,
) -> tools.ProfileOutput:
    request = tools.GetProfileInput(customer=ref, max_conversations=max_conversations)
    return api.run(tools.get_profile, api.memory, request)


@router.post("/profiles/{ref}/identifiers", tags=["profiles"], summary="Link an identifier")
def link_identifier(api: Writer, ref: Ref, body: LinkIdentifier) -> Profile:
    return api.run(api.memory.profiles.link, ref, body.identifier)


@router.post(
    "/profiles/{ref}/merge", tags=["profiles"], summary="Merge another profile into this one"
)
def merge_profiles(api: Writer, ref: Ref, body: MergeProfiles) -> Profile:
    return api.run(api.memory.profiles.merge, ref, body.other, reason=body.reason)


@router.delete("/profiles/{ref}", tags=["profiles"], summary="Erase a customer (receipt)")
def delete_profile(api: Admin, ref: Ref) -> DeletionReceipt:
    return api.run(api.memory.profiles.delete, ref)


@router.get("/profiles/{ref}/export", tags=["profiles"], summary="Everything held about a customer")
def export_profile(api: Admin, ref: Ref) -> ProfileExport:
    return api.run(api.memory.profiles.export, ref)


# -- traits --------------------------------------------------------------------------


@router.get(
    "/profiles/{ref}/traits",
    tags=["traits"],
    summary="Effective traits, each with the differing values of other sources",
)
def list_traits(
    api: Reader,
    ref: Ref,
    conflicted: Annotated[bool, Query(description="Only the keys whose sources disagree.")] = False,
) -> list[TraitView]:
    if conflicted:
        return api.memory.traits.conflicts(ref)
    return api.memory.traits.views(ref)


@router.get(
    "/profiles/{ref}/traits/records", tags=["traits"], summary="Every source's trait records"
)
def list_trait_records(api: Reader, ref: Ref) -> list[Trait]:
    return api.memory.traits.list(ref)


@router.put(
    "/profiles/{ref}/traits/{key}", tags=["traits"], summary="Set a trait (one value per source)"
)
def set_trait(api: Writer, ref: Ref, key: TraitKeyPath, body: SetTrait) -> Trait:
    return api.run(
        api.memory.traits.set, ref, key, body.value, source=body.source, confidence=body.confidence
    )


@router.delete("/profiles/{ref}/traits/{key}", tags=["traits"], summary="Clear a trait")
def clear_trait(
    api: Writer,
    ref: Ref,
    key: TraitKeyPath,
    source: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Only this source's value."),
    ] = None,
) -> DeletionReceipt:
    return api.run(api.memory.traits.delete, ref, key, source=source)


# -- observations and summaries --------------------------------------------------------


@router.get(
    "/profiles/{ref}/observations", tags=["observations"], summary="A profile's observations"
)
def list_observations(
    api: Reader,
    ref: Ref,
    kind: ObservationKind | None = None,
    include_superseded: Annotated[bool, Query(description="Every version.")] = False,
    as_of: Annotated[datetime | None, Query(description="Those valid at this time.")] = None,
) -> list[Observation]:
    return api.memory.observations.list(
        ref, include_superseded=include_superseded, as_of=as_of, kind=kind
    )


@router.post(
    "/profiles/{ref}/observations",
    tags=["observations"],
    status_code=status.HTTP_201_CREATED,
    summary="Record an observation",
)
def add_observation(
    api: Writer, ref: Ref, body: tools.ObservationInput, response: Response
) -> Observation:
    found = api.run(
        api.memory.observations.add,
        ref,
        body.text,
        body.kind,
        evidence=body.evidence,
        trait_key=body.trait_key,
        value=body.value,
        source="agent",
    )
    response.headers["Location"] = f"/v1/observations/{found.id}"
    return found


@router.get("/observations/{observation_id}", tags=["observations"], summary="An observation")
def get_observation(api: Reader, observation_id: Id) -> Observation:
    return api.memory.observations.get(observation_id)


@router.get(
    "/observations/{observation_id}/history",
    tags=["observations"],
    summary="Every version of an observation, oldest first",
)
def observation_history(api: Reader, observation_id: Id) -> list[Observation]:
    return api.memory.observations.history(observation_id)


@router.get(
    "/observations/{observation_id}/explain",
    tags=["observations"],
    summary="Why it is believed: evidence, conversations, decisions, audit",
)
def explain_observation(api: Reader, observation_id: Id) -> Explanation:
    return api.memory.observations.explain(observation_id)


@router.post(
    "/observations/{observation_id}/retract",
    tags=["observations"],
    summary="Mark an observation no longer true (kept in its history)",
)
def retract_observation(api: Writer, observation_id: Id, body: RetractBody) -> Observation:
    return api.run(api.memory.observations.retract, observation_id, reason=body.reason)


@router.post(
    "/observations/{observation_id}/correct",
    tags=["observations"],
    summary="Correct an observation: retract it and record the corrected one",
)
def correct_observation(
    api: Writer, observation_id: Id, body: CorrectObservationBody
) -> tools.CorrectObservationOutput:
    request = tools.CorrectObservationInput(observation_id=observation_id, **body.model_dump())
    return api.run(tools.correct_observation, api.memory, request)


@router.delete(
    "/observations/{observation_id}",
    tags=["observations"],
    summary="Erase an observation and every version of it",
)
def delete_observation(api: Admin, observation_id: Id) -> DeletionReceipt:
    return api.run(api.memory.observations.delete, observation_id)


@router.get(
    "/profiles/{ref}/summaries", tags=["summaries"], summary="Conversation summaries, newest first"
)
def list_summaries(
    api: Reader, ref: Ref, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[Summary]:
    return api.memory.summaries.list(ref, limit=limit)


@router.get(
    "/conversations/{conversation_id}/summary",
    tags=["summaries"],
    summary="A conversation's summary",
)
def get_summary(api: Reader, conversation_id: Id) -> Summary:
    return api.memory.summaries.get(conversation_id)


# -- recall -----------------------------------------------------------------------------


@router.post(
    "/profiles/{ref}/recall",
    tags=["recall"],
    summary="What to know about a customer now: the context block and the ranked items",
)
def recall(api: Reader, ref: Ref, body: RecallBody) -> tools.RecallOutput:
    request = tools.RecallInput(customer=ref, **body.model_dump())
    return tools.recall(api.memory, request)


# -- conversations ------------------------------------------------------------------------


@router.post(
    "/conversations",
    tags=["conversations"],
    status_code=status.HTTP_201_CREATED,
    summary="Create a conversation (with messages; ended unless ended=false)",
)
def create_conversation(api: Writer, body: ConversationIn, response: Response) -> IngestResult:
    result = api.run(api.memory.ingest, body)
    response.headers["Location"] = f"/v1/conversations/{result.conversation.id}"
    return result


@router.get(
    "/profiles/{ref}/conversations",
    tags=["conversations"],
    summary="A profile's conversations, newest first",
)
def list_conversations(
    api: Reader, ref: Ref, limit: Limit = 50, cursor: Cursor = None
) -> Page[Conversation]:
    api.memory.profiles.get(ref)  # 404 for an unknown customer, not an empty list
    return page(lambda n, o: api.memory.conversations.list(ref, limit=n, offset=o), limit, cursor)


@router.get("/conversations/{conversation_id}", tags=["conversations"], summary="A conversation")
def get_conversation(api: Reader, conversation_id: Id) -> Conversation:
    return api.memory.conversations.get(conversation_id)


@router.get(
    "/conversations/{conversation_id}/messages",
    tags=["conversations"],
    summary="A conversation's messages in order",
)
def list_messages(
    api: Reader, conversation_id: Id, limit: Limit = 100, cursor: Cursor = None
) -> Page[Message]:
    api.memory.conversations.get(conversation_id)
    return page(
        lambda n, o: api.memory.conversations.list_messages(conversation_id, limit=n, offset=o),
        limit,
        cursor,
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    tags=["conversations"],
    summary="Append messages (idempotent by message id)",
)
def append_messages(api: Writer, conversation_id: Id, body: MessagesBody) -> MessagesAdded:
    added = api.run(api.memory.conversations.add_messages, conversation_id, body.messages)
    return MessagesAdded(
        conversation_id=conversation_id, added=added, skipped=len(body.messages) - len(added)
    )


@router.post(
    "/conversations/{conversation_id}/end",
    tags=["conversations"],
    summary="End a conversation (idempotent); extraction runs on it",
)
def end_conversation(api: Writer, conversation_id: Id) -> Conversation:
    return api.run(api.memory.conversations.end, conversation_id)


@router.delete(
    "/conversations/{conversation_id}",
    tags=["conversations"],
    summary="Erase a conversation, its messages and what was derived from them",
)
def delete_conversation(api: Admin, conversation_id: Id) -> DeletionReceipt:
    return api.run(api.memory.conversations.delete, conversation_id)
