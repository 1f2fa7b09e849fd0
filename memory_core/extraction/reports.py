"""What extraction returns: per conversation, per batch, and the explanation of
one observation."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import BaseModel, ConfigDict

from memory_core.models import (
    AuditEvent,
    Conversation,
    Decision,
    Message,
    Observation,
    ObservationKind,
    Usage,
)

__all__ = ["BatchReport", "DecisionRecord", "ExtractionReport", "Explanation"]


class DecisionRecord(BaseModel):
    """What reconciliation did with one proposed observation."""

    model_config = ConfigDict(frozen=True)

    decision: Decision
    kind: ObservationKind
    text: str
    #: The observation written or merged into (None when discarded).
    observation_id: str | None = None
    #: The existing observation an UPDATE superseded or a DUPLICATE merged into.
    target_id: str | None = None
    reason: str = ""


class ExtractionReport(BaseModel):
    """The result of extracting one conversation."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    profile_id: str
    extractor: str
    #: ``done``; ``skipped`` (already extracted by this extractor, nothing new);
    #: ``pending`` (the model failed; ``extract_all`` retries it).
    status: Literal["done", "skipped", "pending"]
    decisions: tuple[DecisionRecord, ...] = ()
    traits_set: tuple[str, ...] = ()
    #: Trait keys where a higher-ranked source (CRM, API, agent) holds another value.
    trait_conflicts: tuple[str, ...] = ()
    summary_id: str | None = None
    usage: Usage = Usage()
    #: Proposals dropped before reconciliation (malformed model output), with why.
    rejected: tuple[str, ...] = ()
    error: str | None = None

    def count(self, decision: Decision) -> int:
        return sum(1 for d in self.decisions if d.decision is decision)


class BatchReport(BaseModel):
    """The result of extracting many conversations (``extract_all``, ``extract_profile``)."""

    model_config = ConfigDict(frozen=True)

    conversations: int = 0
    extracted: int = 0
    skipped: int = 0
    pending: int = 0
    messages: int = 0
    decisions: dict[Decision, int] = {}
    summaries: int = 0
    traits_set: int = 0
    usage: Usage = Usage()
    errors: tuple[str, ...] = ()
    seconds: float = 0.0

    @classmethod
    def of(cls, reports: list[ExtractionReport], messages: int, seconds: float) -> BatchReport:
        counts: Counter[Decision] = Counter(d.decision for r in reports for d in r.decisions)
        usage = Usage()
        for r in reports:
            usage += r.usage
        return cls(
            conversations=len(reports),
            extracted=sum(r.status == "done" for r in reports),
            skipped=sum(r.status == "skipped" for r in reports),
            pending=sum(r.status == "pending" for r in reports),
            messages=messages,
            decisions=dict(counts),
            summaries=sum(r.summary_id is not None for r in reports),
            traits_set=sum(len(r.traits_set) for r in reports),
            usage=usage,
            errors=tuple(f"{r.conversation_id}: {r.error}" for r in reports if r.error),
            seconds=round(seconds, 3),
        )


class Explanation(BaseModel):
    """Where an observation came from: its evidence messages and their conversations,
    the extractor or agent that proposed it, the reconcile decision, its versions,
    and the audit events that concern them."""

    model_config = ConfigDict(frozen=True)

    observation: Observation
    messages: tuple[Message, ...]
    conversations: tuple[Conversation, ...]
    #: Evidence ids whose messages no longer exist (deleted since).
    missing_evidence: tuple[str, ...] = ()
    #: Every version of this fact, oldest first (this one included).
    history: tuple[Observation, ...] = ()
    #: Audit events about its versions (recorded, retracted ...) and about the
    #: conversations of its evidence (ingested, extracted ...), oldest first.
    audit: tuple[AuditEvent, ...] = ()

    @property
    def extractor(self) -> str:
        return self.observation.extractor

    @property
    def decision(self) -> Decision:
        return self.observation.decision
