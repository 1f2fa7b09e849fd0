"""Per-tenant governance policies: what is remembered, what is redacted, how long
things are kept.

A :class:`Policy` is declarative. It comes from the settings file::

    [policies.acme.remember]
    deny_observation_kinds = ["complaint"]
    deny_trait_keys = ["date_of_birth"]
    deny_topics = ["health", "religion"]
    exclude_roles = ["system"]

    [policies.acme.redaction]
    detectors = ["card", "iban", "national_id", "secret"]
    custom = [{ name = "order_pin", pattern = "PIN[: ]*\\\\d{4}" }]

    [policies.acme.retention]
    messages = "365d"
    summaries = "2y"

(``[policies."*"]`` applies to tenants without their own), or from the API
(``memory.set_policy(tenant, policy)``), which stores it with the tenant and
takes precedence over the file. Tenants with neither get :class:`Policy()`:
redaction of cards, bank details, national ids and secrets on; the special
categories of :mod:`memory_core.governance.topics` never remembered; no expiry.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from memory_core.governance.topics import SPECIAL_CATEGORIES
from memory_core.models import Channel, ObservationKind, Role

__all__ = [
    "DEFAULT_POLICY_KEY",
    "NATIONAL_ID_NAMES",
    "CustomPattern",
    "Detector",
    "Policy",
    "RedactionPolicy",
    "RememberPolicy",
    "RetentionPolicy",
    "check_policies",
    "parse_duration",
]

DEFAULT_POLICY_KEY = "*"
"""The ``policies`` key that applies to tenants without a policy of their own."""

NATIONAL_ID_NAMES: tuple[str, ...] = (
    "us_ssn",
    "gb_nino",
    "gb_nhs",
    "fr_nir",
    "de_idnr",
    "es_dni",
    "es_nie",
    "it_codicefiscale",
    "nl_bsn",
    "in_aadhaar",
    "br_cpf",
    "ca_sin",
    "pl_pesel",
)
"""The national ids a policy may name (``redaction.national_ids``); the redactor
has a detector for each (:data:`memory_core.governance.redaction.NATIONAL_IDS`)."""


class Detector(StrEnum):
    """What the redactor looks for (see :mod:`memory_core.governance.redaction`)."""

    CARD = "card"  # payment card numbers, Luhn-checked
    IBAN = "iban"  # IBANs, mod-97 checked
    BANK_ACCOUNT = "bank_account"  # US routing numbers, account numbers named as such
    NATIONAL_ID = "national_id"  # SSN, NINO, NIR, DNI, codice fiscale, BSN, Aadhaar, CPF ...
    SECRET = "secret"  # API keys, tokens, private keys, passwords (detect-secrets plugins)
    EMAIL = "email"  # e-mail addresses in text (off by default)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")
_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "y": 31536000, "year": 31536000, "years": 31536000,
}  # fmt: skip


def parse_duration(value: object) -> object:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"1y"`` (365 days) or ``"90 days"`` as a
    timedelta; anything else is left for pydantic (seconds, ISO 8601 ``P30D``)."""
    if isinstance(value, str) and (match := _DURATION.match(value.lower())):
        number, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"unknown time unit {unit!r} in {value!r}: use s, m, h, d, w or y")
        return timedelta(seconds=float(number) * _UNITS[unit])
    return value


class CustomPattern(_Strict):
    """A tenant's own redaction rule: text matching ``pattern`` (a Python regular
    expression) becomes ``[REDACTED:<name>]``; with groups, only group 1 is replaced."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    pattern: str
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        if compiled.match(""):
            raise ValueError(f"pattern {value!r} matches the empty string")
        return value


class RememberPolicy(_Strict):
    """What may be remembered. ``allow_*`` lists (``None``: everything) and
    ``deny_*`` lists combine: an item is kept when allowed and not denied.
    Trait keys may be glob patterns (``"opinion:*"``)."""

    allow_observation_kinds: list[ObservationKind] | None = None
    deny_observation_kinds: list[ObservationKind] = Field(default_factory=list)
    allow_trait_keys: list[str] | None = None
    deny_trait_keys: list[str] = Field(default_factory=list)
    #: Topics whose mentions are never remembered in observations, traits and
    #: summaries (built-in: see :data:`memory_core.governance.topics.TOPIC_LEXICONS`).
    deny_topics: list[str] = Field(default_factory=lambda: list(SPECIAL_CATEGORIES))
    #: Extra terms per topic, or whole new topics: ``{"competitors": ["acme corp"]}``.
    topic_terms: dict[str, list[str]] = Field(default_factory=dict)
    #: Messages on these channels, or by these roles, are not stored at all.
    exclude_channels: list[Channel] = Field(default_factory=list)
    exclude_roles: list[Role] = Field(default_factory=list)

    @field_validator("deny_topics")
    @classmethod
    def _known_topics(cls, value: list[str]) -> list[str]:
        return [t.strip().lower() for t in value]

    def kind_allowed(self, kind: ObservationKind) -> bool:
        allowed = self.allow_observation_kinds
        return (allowed is None or kind in allowed) and kind not in self.deny_observation_kinds

    def trait_allowed(self, key: str) -> bool:
        allowed = self.allow_trait_keys
        if allowed is not None and not any(fnmatch.fnmatchcase(key, p) for p in allowed):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in self.deny_trait_keys)


class RedactionPolicy(_Strict):
    """What is redacted from text before it is stored or embedded."""

    enabled: bool = True
    detectors: list[Detector] = Field(
        default_factory=lambda: [
            Detector.CARD,
            Detector.IBAN,
            Detector.BANK_ACCOUNT,
            Detector.NATIONAL_ID,
            Detector.SECRET,
        ]
    )
    #: National ids to look for (names in :data:`NATIONAL_ID_NAMES`); None: all.
    national_ids: list[str] | None = None
    custom: list[CustomPattern] = Field(default_factory=list)
    #: What replaces a finding; ``{kind}`` is the detector or custom pattern name.
    replacement: str = Field(default="[REDACTED:{kind}]", min_length=1, max_length=80)

    @field_validator("national_ids")
    @classmethod
    def _known_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - set(NATIONAL_ID_NAMES))
        if unknown:
            raise ValueError(f"unknown national ids {unknown}; known: {sorted(NATIONAL_ID_NAMES)}")
        return value

    @field_validator("replacement")
    @classmethod
    def _formats(cls, value: str) -> str:
        try:
            value.format(kind="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"replacement {value!r} may only use {{kind}}: {exc}") from exc
        return value


class RetentionPolicy(_Strict):
    """How long each record type is kept (``None``: forever). Enforced by
    ``memory.gc()`` / ``convmem gc`` and a server's retention schedule.

    A message expires ``messages`` after its timestamp; an observation
    ``observations`` after it was last updated (created or re-confirmed); a
    summary ``summaries`` after its conversation started. Expired records are
    deleted like any other deletion: observations left without evidence go too.
    """

    messages: timedelta | None = None
    observations: timedelta | None = None
    summaries: timedelta | None = None

    @field_validator("messages", "observations", "summaries", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("messages", "observations", "summaries")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("a retention period must be positive")
        return value


class Policy(_Strict):
    """A tenant's governance policy. Every part has safe defaults."""

    remember: RememberPolicy = Field(default_factory=RememberPolicy)
    redaction: RedactionPolicy = Field(default_factory=RedactionPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)

    def to_json(self) -> dict[str, Any]:
        """The policy as plain JSON data (as stored and as written in settings)."""
        return self.model_dump(mode="json")


def check_policies(raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate the ``policies`` setting; a ValueError names the tenant at fault."""
    for tenant, value in raw.items():
        try:
            Policy.model_validate(value)
        except PydanticValidationError as exc:
            raise ValueError(f"policy of tenant {tenant!r} is invalid: {exc}") from None
    return raw
