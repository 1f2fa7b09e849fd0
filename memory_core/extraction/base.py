"""The extractor protocol: what an extractor reads and what it proposes.

An :class:`Extractor` reads one conversation (:class:`ExtractionInput`: the
conversation, its messages, the profile's current observations and traits)
and proposes observations, trait updates and a summary
(:class:`ExtractionOutput`). It never writes: the engine checks every proposal
against policy, reconciles it with what is already known, and stores it (see
:mod:`memory_core.services.observations`).

Rules every extractor follows, and the engine enforces anyway:

- customer facts (observations, trait updates) cite customer messages only;
  agent and system messages may inform a summary and its outcome;
- evidence ids are ids of messages of the conversation given;
- relative dates ("yesterday", "next month") are resolved against the time of
  the message that says them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from memory_core.models import (
    Conversation,
    Message,
    Observation,
    ObservationKind,
    Outcome,
    Role,
    Trait,
    Usage,
)

__all__ = [
    "CUSTOMER_ROLES",
    "ExtractionInput",
    "ExtractionOutput",
    "Extractor",
    "ProposedObservation",
    "ProposedSummary",
    "TraitUpdate",
]

CUSTOMER_ROLES = frozenset({Role.CUSTOMER})
"""Roles whose messages may be evidence of a customer fact."""


class ProposedObservation(BaseModel):
    """An observation an extractor proposes; reconciliation decides its fate.

    ``trait_key`` names the slot it fills (``location``, ``preferred_channel``,
    ``opinion:mobile app`` ...): a different ``value`` for the same slot updates
    (supersedes) the known one, the same value is a duplicate.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ObservationKind
    text: str = Field(min_length=1, max_length=500)
    confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    #: Message ids; extractors must cite customer messages (an agent's own note may cite none).
    evidence: tuple[str, ...] = ()
    trait_key: str | None = Field(default=None, max_length=100)
    value: str | None = Field(default=None, max_length=200)
    note: str = ""  # why the extractor proposed it (rule name, model reason)


class TraitUpdate(BaseModel):
    """A proposed trait value, stored with source ``extracted``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value: Any
    confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    evidence: tuple[str, ...] = Field(min_length=1)


class ProposedSummary(BaseModel):
    """What happened in the conversation and how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=2000)
    outcome: Outcome = Outcome.UNKNOWN
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractionInput:
    """One conversation to read, with what is already known about the customer.

    ``time`` is the conversation's reference time (its end, else its last
    message); each message's own ``ts`` anchors the relative dates it mentions.
    """

    conversation: Conversation
    messages: Sequence[Message]
    observations: Sequence[Observation] = ()
    traits: Sequence[Trait] = ()
    time: datetime | None = None

    def message(self, message_id: str) -> Message | None:
        for m in self.messages:
            if m.id == message_id:
                return m
        return None


@dataclass(frozen=True)
class ExtractionOutput:
    """What an extractor proposes for one conversation, and what it cost."""

    observations: list[ProposedObservation] = field(default_factory=list)
    traits: list[TraitUpdate] = field(default_factory=list)
    summary: ProposedSummary | None = None
    usage: Usage = field(default_factory=Usage)
    #: Proposals the extractor itself dropped as malformed (e.g. an LLM's bad items).
    rejected: list[str] = field(default_factory=list)


@runtime_checkable
class Extractor(Protocol):
    """Reads a conversation and proposes observations, traits and a summary.

    ``name`` identifies the extractor and its version (``heuristic-1``,
    ``litellm/openai/gpt-4o-mini``); it is stored with everything it produced,
    and a conversation is re-extracted when the name changes.
    Failures of a model raise :class:`~memory_core.errors.ModelError`.
    """

    name: str

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        """Propose observations, trait updates and a summary for ``data``."""
        ...
