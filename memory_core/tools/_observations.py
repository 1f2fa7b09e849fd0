"""The observation tools: ``list_observations`` (what was learned about a
customer, with history on request) and ``correct_observation`` (retract one that
no longer holds, optionally recording the corrected statement; both stay in the
history)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.models import Observation, ObservationKind, ObservationStatus
from memory_core.tools._base import CUSTOMER_HELP, TRAIT_SOURCE, Customer, Model
from memory_core.tools._remember import check_statement

__all__ = [
    "CorrectObservationInput",
    "CorrectObservationOutput",
    "ListObservationsInput",
    "ListObservationsOutput",
    "ObservationView",
    "correct_observation",
    "list_observations",
]


class ListObservationsInput(Model):
    customer: Customer = Field(description=CUSTOMER_HELP)
    kind: ObservationKind | None = None
    include_superseded: bool = Field(default=False, description="Also earlier versions.")
    as_of: datetime | None = Field(default=None, description="Those valid then.")
    limit: int = Field(default=50, ge=1, le=500)


class ObservationView(Model):
    id: str
    kind: ObservationKind
    text: str
    trait_key: str | None
    value: str | None
    status: ObservationStatus = Field(
        description="active, superseded (replaced by superseded_by) or deleted (retracted)."
    )
    confidence: float
    source: str = Field(description="Who recorded it: agent, or the extractor.")
    evidence: list[str] = Field(description="Ids of the messages that show it.")
    conversation_id: str | None
    valid_from: datetime
    valid_to: datetime | None
    supersedes: str | None
    superseded_by: str | None


class ListObservationsOutput(Model):
    profile_id: str
    observations: list[ObservationView] = Field(description="Newest first.")


def _view(o: Observation) -> ObservationView:
    return ObservationView(
        id=o.id,
        kind=o.kind,
        text=o.text,
        trait_key=o.trait_key,
        value=o.value,
        status=o.status,
        confidence=o.confidence,
        source=o.source,
        evidence=list(o.evidence),
        conversation_id=o.conversation_id,
        valid_from=o.valid_from,
        valid_to=o.valid_to,
        supersedes=o.supersedes,
        superseded_by=o.superseded_by,
    )


def list_observations(memory: Memory, request: ListObservationsInput) -> ListObservationsOutput:
    """What was learned about a customer: the current observations, newest first (with
    ``include_superseded`` every version; with ``as_of`` those that held then)."""
    profile = memory.profiles.get(request.customer)
    found = memory.observations.list(
        profile.id,
        include_superseded=request.include_superseded,
        as_of=request.as_of,
        kind=request.kind,
    )
    newest = sorted(found, key=lambda o: (o.valid_from, o.created_at), reverse=True)
    return ListObservationsOutput(
        profile_id=profile.id, observations=[_view(o) for o in newest[: request.limit]]
    )


class CorrectObservationInput(Model):
    observation_id: str
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="The corrected statement; omit if it simply no longer holds.",
    )
    value: str | None = Field(
        default=None, min_length=1, max_length=200, description="Its slot's new value, if any."
    )
    reason: str = Field(default="", max_length=200, description="Kept in its history.")


class CorrectObservationOutput(Model):
    retracted: ObservationView = Field(description="The observation corrected, now retracted.")
    observation: ObservationView | None = Field(
        description="The corrected observation, when text was given."
    )


def correct_observation(
    memory: Memory, request: CorrectObservationInput
) -> CorrectObservationOutput:
    """Retract an observation (it leaves recall and stays in its history, with the
    reason) and, with ``text``, record the corrected statement in its place (same
    kind and slot). The correction is checked before anything is written."""
    old = memory.observations.get(request.observation_id)
    if old.status is not ObservationStatus.ACTIVE:
        raise ValidationError(
            f"observation {old.id!r} is not current (it is {old.status.value}); correct the "
            "current one: list_observations shows it"
        )
    if request.value is not None and request.text is None:
        raise ValidationError("value needs text: give the corrected statement too")
    value = request.value if old.trait_key is not None else None
    if request.value is not None and old.trait_key is None:
        raise ValidationError(
            f"observation {old.id!r} fills no slot (no trait_key): give text alone"
        )
    if request.text is not None:
        check_statement(memory, "text", request.text, old.kind, old.trait_key, value)
    note = f"corrected: {request.reason}" if request.reason else "corrected"
    retracted = memory.observations.retract(old.id, reason=note)
    corrected = None
    if request.text is not None:
        corrected = memory.observations.add(
            old.profile_id,
            request.text,
            old.kind,
            source=TRAIT_SOURCE,
            trait_key=old.trait_key,
            value=value,
        )
    return CorrectObservationOutput(
        retracted=_view(retracted),
        observation=_view(corrected) if corrected is not None else None,
    )
