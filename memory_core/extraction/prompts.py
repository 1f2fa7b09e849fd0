"""The LLM prompts, one function per task, each with the model its reply must fit.

- :func:`extraction_prompt` -> :class:`ExtractionReply` (observations, trait
  updates, summary) -- validated item by item with :func:`parse_extraction`,
  so one bad item is dropped, not the whole reply;
- :func:`reconcile_prompt` -> :class:`ReconcileReply` (a decision per proposal).

Messages, known observations and candidates are shown with short references
(``m3``, ``o2``, ``E1``) rather than ids: cheaper, and a model cannot cite an
id that does not exist without it being noticed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from memory_core.extraction.base import CUSTOMER_ROLES, ExtractionInput, ProposedObservation
from memory_core.models import Message, Observation, ObservationKind, Outcome

__all__ = [
    "ExtractionReply",
    "LLMObservation",
    "LLMSummary",
    "LLMTrait",
    "ParsedExtraction",
    "Prompt",
    "ReconcileItem",
    "ReconcileReply",
    "extraction_prompt",
    "parse_extraction",
    "reconcile_prompt",
]

MAX_MESSAGE_CHARS = 2000
MAX_CONVERSATION_CHARS = 24000
MAX_KNOWN_OBSERVATIONS = 40

Prompt = list[dict[str, str]]


# -- extraction ---------------------------------------------------------------------


class LLMObservation(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    kind: ObservationKind
    text: str = Field(min_length=3, max_length=300)
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(min_length=1, max_length=20)
    trait_key: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*(?::[\w .-]{1,60})?$")
    value: str | None = Field(default=None, max_length=200)


class LLMTrait(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    value: str | int | float | bool
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(min_length=1, max_length=20)


class LLMSummary(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=5, max_length=1500)
    outcome: Outcome
    evidence: list[str] = Field(default_factory=list, max_length=50)


class ExtractionReply(BaseModel):
    """The envelope of an extraction reply; items are validated one by one."""

    model_config = ConfigDict(extra="ignore")

    observations: list[Any] = Field(default_factory=list)
    traits: list[Any] = Field(default_factory=list)
    summary: Any = None


@dataclass
class ParsedExtraction:
    observations: list[LLMObservation] = field(default_factory=list)
    traits: list[LLMTrait] = field(default_factory=list)
    summary: LLMSummary | None = None
    rejected: list[str] = field(default_factory=list)


def _first_error(exc: PydanticValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}"


def parse_extraction(reply: ExtractionReply) -> ParsedExtraction:
    """Validate each item; invalid ones are dropped and described in ``rejected``."""
    out = ParsedExtraction()
    for i, raw in enumerate(reply.observations):
        try:
            out.observations.append(LLMObservation.model_validate(raw))
        except PydanticValidationError as exc:
            out.rejected.append(f"observation {i}: {_first_error(exc)}")
    for i, raw in enumerate(reply.traits):
        try:
            out.traits.append(LLMTrait.model_validate(raw))
        except PydanticValidationError as exc:
            out.rejected.append(f"trait {i}: {_first_error(exc)}")
    if reply.summary is not None:
        try:
            out.summary = LLMSummary.model_validate(reply.summary)
        except PydanticValidationError as exc:
            out.rejected.append(f"summary: {_first_error(exc)}")
    return out


_EXTRACTION_SYSTEM = """\
You maintain a customer-service memory. Read one conversation between a customer \
and a business and report what it teaches about the CUSTOMER.

Rules:
- Only what the customer says about themselves is a customer fact. Never take an \
agent's words as a customer fact (an agent saying "you're on Premium" is not evidence).
- Each observation is one short, self-contained statement in the third person \
without a subject, e.g. "Prefers SMS over phone calls", "Lives in Denver, CO (moved in \
May 2024)", "Is on the Premium plan", "Reported a double charge on the March 2024 invoice".
- Resolve relative dates ("yesterday", "next month", "on Monday") to absolute dates \
using the time of the message that says them.
- kind is one of: preference, behaviour, context, fact, intent, event, complaint.
- trait_key names the slot an observation fills when a newer value would replace \
it: location, preferred_channel, language, plan, tier, contact_time, occupation, \
contact_email, contact_phone, or "opinion:<thing>", "intent:<what>"; else null. \
value is the slot's value (e.g. "Denver, CO", "sms").
- evidence lists the references (m1, m2, ...) of the customer messages it comes from.
- confidence in [0, 1]: how clearly the customer stated it.
- Do not repeat what is already known unless it changed; do not invent.
- traits: structured values worth keeping on the profile (same keys as trait_key, \
preferred_channel one of sms, voice, email, whatsapp, chat; language as ISO 639-1).
- summary: two or three sentences on what the customer wanted and what was done; \
outcome one of resolved, unresolved, escalated, unknown. Agent messages count here.

Reply with one JSON object only:
{"observations": [{"kind": "...", "text": "...", "confidence": 0.9, "evidence": ["m1"], \
"trait_key": null, "value": null}], "traits": [{"key": "...", "value": "...", \
"confidence": 0.9, "evidence": ["m1"]}], "summary": {"text": "...", "outcome": "...", \
"evidence": ["m1", "m4"]}}"""


def message_refs(messages: Sequence[Message]) -> dict[str, str]:
    """``m1``, ``m2``... for the messages, in order."""
    return {f"m{i}": m.id for i, m in enumerate(messages, start=1)}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def extraction_prompt(data: ExtractionInput) -> tuple[Prompt, dict[str, str]]:
    """The chat messages for an extraction call, and the message references used."""
    refs = message_refs(data.messages)
    lines: list[str] = []
    total = 0
    for ref, m in zip(refs, data.messages, strict=True):
        line = f"[{ref}] {m.ts:%Y-%m-%d %H:%M} {m.role.value}: {_clip(m.text, MAX_MESSAGE_CHARS)}"
        total += len(line)
        if total > MAX_CONVERSATION_CHARS:
            lines.append("[... later messages omitted: conversation too long ...]")
            break
        lines.append(line)
    known = [
        f"- {o.text}" + (f" [{o.trait_key}={o.value}]" if o.trait_key else "")
        for o in list(data.observations)[-MAX_KNOWN_OBSERVATIONS:]
    ]
    traits = [f"- {t.key} = {json.dumps(t.value)} (source: {t.source})" for t in data.traits]
    conv = data.conversation
    user = "\n".join(
        [
            f"Conversation on {conv.channel.value}, started {conv.started_at:%Y-%m-%d %H:%M} UTC.",
            "Already known about the customer:",
            *(known or ["- nothing yet"]),
            "Profile traits:",
            *(traits or ["- none"]),
            "Messages (customer facts only from 'customer' lines):",
            *lines,
        ]
    )
    return [
        {"role": "system", "content": _EXTRACTION_SYSTEM},
        {"role": "user", "content": user},
    ], refs


def customer_refs(data: ExtractionInput, refs: Mapping[str, str]) -> set[str]:
    """The references of customer messages."""
    customers = {m.id for m in data.messages if m.role in CUSTOMER_ROLES}
    return {ref for ref, mid in refs.items() if mid in customers}


# -- reconciliation -----------------------------------------------------------------


class ReconcileItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    proposal: str
    #: add, update, duplicate, discard, or delete (a known statement is no longer true).
    decision: Literal["add", "update", "duplicate", "discard", "delete"]
    target: str | None = None
    reason: str = Field(default="", max_length=300)

    @field_validator("decision", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class ReconcileReply(BaseModel):
    model_config = ConfigDict(extra="ignore")

    decisions: list[Any] = Field(default_factory=list)


_RECONCILE_SYSTEM = """\
You keep a customer memory consistent. For each new statement (P1, P2, ...) decide \
against the existing statements listed under it (E1, E2, ...):
- "add": it is new information.
- "update": it replaces an existing statement that is no longer true (a move, a new \
plan, a changed preference); target = that statement.
- "duplicate": an existing statement already says the same, maybe in other words; \
target = that statement.
- "delete": it says an existing statement is no longer true without stating a new \
value ("no longer has a landline"); target = that statement.
- "discard": it is not about the customer, is too vague, or is not worth keeping.
Two statements that can both be true (likes the app / likes the website) are "add"; \
opposite or changed ones (likes / dislikes the app, morning / evening calls) are \
"update". Give a short reason.
Reply with one JSON object only: {"decisions": [{"proposal": "P1", "decision": \
"update", "target": "E2", "reason": "moved"}]}"""


def reconcile_prompt(
    proposals: Sequence[ProposedObservation], candidates: Sequence[Sequence[Observation]]
) -> tuple[Prompt, dict[str, str]]:
    """The chat messages for a reconcile call, and the candidate references (E-ref -> id)."""
    refs: dict[str, str] = {}
    by_id: dict[str, str] = {}
    lines: list[str] = []
    for i, (p, cands) in enumerate(zip(proposals, candidates, strict=True), start=1):
        slot = f" [{p.trait_key}={p.value}]" if p.trait_key else ""
        lines.append(f"P{i}: {p.text}{slot} ({p.kind.value})")
        for o in cands:
            if o.id not in by_id:
                by_id[o.id] = f"E{len(by_id) + 1}"
                refs[by_id[o.id]] = o.id
            oslot = f" [{o.trait_key}={o.value}]" if o.trait_key else ""
            lines.append(f"  {by_id[o.id]}: {o.text}{oslot} (since {o.valid_from:%Y-%m-%d})")
    return [
        {"role": "system", "content": _RECONCILE_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ], refs
