"""Trait schema and source precedence.

A profile may hold one value per trait key *and source*: the CRM's ``tier``,
the agent's ``tier`` and the extractor's ``tier`` are separate records. The
effective value of a key is chosen by source precedence, then recency:

- systems of record (``crm``, ``api``, ``import`` and any other named
  integration) outrank
- ``agent`` (a person or an AI agent setting it during a conversation), which
  outranks
- ``extracted`` (read from the conversation by an extractor).

A lower-ranked value that differs is not dropped: it is listed in
:attr:`TraitView.conflicts`, so "the CRM says Boston, the customer said Denver
last week" stays visible for someone to resolve.

Values are checked against the schema: built-in keys (:data:`BUILTIN_TRAITS`)
and keys declared with ``memory.traits.declare``; undeclared keys take any
JSON scalar.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from memory_core.errors import ValidationError
from memory_core.models import Trait, TraitDefinition, TraitType

__all__ = [
    "AGENT_SOURCE",
    "BUILTIN_TRAITS",
    "EXTRACTED_SOURCE",
    "TraitView",
    "coerce_trait_value",
    "effective_traits",
    "source_rank",
    "trait_id",
]

EXTRACTED_SOURCE = "extracted"
AGENT_SOURCE = "agent"

_CHANNELS = ("sms", "voice", "email", "whatsapp", "chat")
_CHANNEL_ALIASES = {
    "text": "sms", "texts": "sms", "text message": "sms", "phone": "voice", "call": "voice",
    "calls": "voice", "phone call": "voice", "e-mail": "email", "mail": "email",
    "whats app": "whatsapp", "live chat": "chat", "web chat": "chat",
}  # fmt: skip


def _builtin(
    key: str, kind: TraitType, description: str, values: tuple[str, ...] = ()
) -> TraitDefinition:
    return TraitDefinition(id=key, tenant="*", type=kind, description=description, values=values)


BUILTIN_TRAITS: dict[str, TraitDefinition] = {
    t.id: t
    for t in (
        _builtin("tier", TraitType.STR, "Customer tier or loyalty level (e.g. Gold)."),
        _builtin("plan", TraitType.STR, "Product plan or package (e.g. Premium)."),
        _builtin("location", TraitType.STR, "Where the customer lives (city, region)."),
        _builtin("language", TraitType.STR, "Preferred language, ISO 639-1 code (e.g. es)."),
        _builtin("preferred_channel", TraitType.ENUM, "Preferred contact channel.", _CHANNELS),
        _builtin("contact_time", TraitType.STR, "When the customer prefers to be contacted."),
        _builtin("contact_email", TraitType.STR, "An email address the customer gave."),
        _builtin("contact_phone", TraitType.STR, "A phone number the customer gave (E.164)."),
    )
}


def trait_id(profile_id: str, key: str, source: str) -> str:
    """The id of a profile's trait record: one per key and source."""
    return f"{profile_id}:{key}:{source}"


def source_rank(source: str) -> int:
    """Precedence of a trait source: systems of record 3, agent 2, extracted 1."""
    if source == EXTRACTED_SOURCE:
        return 1
    if source == AGENT_SOURCE:
        return 2
    return 3


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def coerce_trait_value(definition: TraitDefinition | None, key: str, value: Any) -> Any:
    """``value`` checked (and lightly normalised) against ``key``'s definition.

    Raises :class:`ValidationError` naming the expected type.
    """
    if definition is None:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"trait {key!r}: value must be a string, number or boolean, "
                f"not {type(value).__name__} (declare the key to give it a type)"
            )
        return value
    kind = definition.type

    def bad(expected: str) -> ValidationError:
        return ValidationError(f"trait {key!r} is declared {expected}; got {value!r}")

    if kind is TraitType.STR:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad("a string")
        text = str(value).strip()
        if not text:
            raise bad("a non-empty string")
        return text
    if kind is TraitType.INT:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad("an integer")
    if kind is TraitType.FLOAT:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
    if kind is TraitType.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad("a boolean")
    if not isinstance(value, str):
        raise bad(f"one of {', '.join(definition.values)}")
    text = value.strip().lower()
    if key == "preferred_channel":
        text = _CHANNEL_ALIASES.get(text, text)
    for allowed in definition.values:
        if allowed.lower() == text:
            return allowed
    raise bad(f"one of {', '.join(definition.values)}")


class TraitView(BaseModel):
    """The effective value of one trait key, and the other sources' differing values."""

    model_config = ConfigDict(frozen=True)

    key: str
    value: Any
    source: str
    confidence: float
    updated_at: datetime
    evidence: tuple[str, ...] = ()
    #: Other sources' values for this key that differ from ``value`` (highest rank first).
    conflicts: tuple[Trait, ...] = ()

    @property
    def conflicted(self) -> bool:
        return bool(self.conflicts)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def effective_traits(traits: Iterable[Trait]) -> list[TraitView]:
    """One view per key, sorted by key: the highest-ranked source wins, the newest
    value breaks ties; differing values of other sources become ``conflicts``."""
    by_key: dict[str, list[Trait]] = {}
    for t in traits:
        by_key.setdefault(t.key, []).append(t)
    views: list[TraitView] = []
    for key in sorted(by_key):
        ranked = sorted(
            by_key[key], key=lambda t: (source_rank(t.source), t.updated_at), reverse=True
        )
        best = ranked[0]
        views.append(
            TraitView(
                key=key,
                value=best.value,
                source=best.source,
                confidence=best.confidence,
                updated_at=best.updated_at,
                evidence=best.evidence,
                conflicts=tuple(t for t in ranked[1:] if not _same(t.value, best.value)),
            )
        )
    return views
