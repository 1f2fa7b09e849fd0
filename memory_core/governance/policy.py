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

    [policies.acme.identity]
    shared = ["phone:+16175550100"]      # the front desk: never identifies one person
    max_identifiers = 20

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

from memory_core.errors import InvalidIdentifierError
from memory_core.governance.topics import SPECIAL_CATEGORIES
from memory_core.identity import BUILTIN_SHARED_EMAIL, parse_identifier
from memory_core.models import Channel, Identifier, IdentifierKind, ObservationKind, Role

__all__ = [
    "DEFAULT_POLICY_KEY",
    "NATIONAL_ID_NAMES",
    "CustomPattern",
    "Detector",
    "IdentityPolicy",
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


_PAIRED = {
    IdentifierKind.PHONE: IdentifierKind.WHATSAPP,
    IdentifierKind.WHATSAPP: IdentifierKind.PHONE,
}


class IdentityPolicy(_Strict):
    """How identity resolution treats a tenant's identifiers: the ``identity`` part
    of its policy (``[policies.<tenant>.identity]``; see docs/identity.md).

    - ``whatsapp_is_phone``: a WhatsApp number and the same phone number name one
      person (on by default: a WhatsApp account is registered to, and verified on,
      that phone line), so ``whatsapp:+1617...`` finds the profile of
      ``phone:+1617...`` and the other way round.
    - ``shared``: identifiers (``kind:value``, phone numbers in international
      form) that several people use -- a household phone, a company switchboard.
      With ``shared_patterns`` (globs on ``kind:value``: ``"phone:+1800*"``,
      ``"email:*@support.example.com"``) and, unless ``builtin_shared`` is off,
      :data:`BUILTIN_SHARED_EMAIL`. A shared value is never linked, never used to
      find a profile and never merges two.
    - ``max_identifiers``: at most this many identifiers per profile (``None``: no cap).
    - ``confirm_merges``: when resolution finds two profiles that both have history
      (conversations or observations), it records a pending merge for a person to
      confirm or reject instead of merging them; off: they merge silently.
    - ``recycle_after`` and ``recyclable_kinds``: a phone (or WhatsApp) number whose
      profile had no conversation for this long before a new conversation that
      brings an identifier contradicting it (an email or CRM id of a kind the profile
      has, with another value) is taken as recycled: the number moves to the new
      person's profile and a pending merge lets a person say otherwise. ``None``: never.
    """

    whatsapp_is_phone: bool = True
    shared: list[str] = Field(default_factory=list)
    shared_patterns: list[str] = Field(default_factory=list)
    builtin_shared: bool = True
    max_identifiers: int | None = Field(default=50, ge=1, le=10_000)
    confirm_merges: bool = True
    recycle_after: timedelta | None = timedelta(days=365)
    recyclable_kinds: list[IdentifierKind] = Field(
        default_factory=lambda: [IdentifierKind.PHONE, IdentifierKind.WHATSAPP]
    )

    @field_validator("shared")
    @classmethod
    def _normalised(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            try:  # region "ZZ": phone numbers must be written in international form
                out.append(parse_identifier(raw, default_region="ZZ").key)
            except InvalidIdentifierError as exc:
                raise ValueError(
                    f"shared identifier {raw!r}: {exc} (write phone numbers in "
                    "international form, e.g. phone:+16175550100)"
                ) from None
        return sorted(set(out))

    @field_validator("shared_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        kinds = {k.value for k in IdentifierKind}
        for pattern in value:
            head = pattern.partition(":")[0]
            if head not in kinds or not pattern.partition(":")[2]:
                raise ValueError(
                    f"shared pattern {pattern!r} must be kind:glob, e.g. 'phone:+1800*' "
                    f"(kinds: {', '.join(sorted(kinds))})"
                )
        return value

    @field_validator("recycle_after", mode="before")
    @classmethod
    def _recycle_duration(cls, value: object) -> object:
        return parse_duration(value)

    @field_validator("recycle_after")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("recycle_after must be positive (or null: never)")
        return value

    def equivalents(self, ident: Identifier) -> list[Identifier]:
        """``ident`` and the identifiers that name the same person under these rules."""
        other = _PAIRED.get(ident.kind) if self.whatsapp_is_phone else None
        return [ident] if other is None else [ident, Identifier(kind=other, value=ident.value)]

    def is_shared(self, ident: Identifier) -> bool:
        """Whether ``ident`` (or an equivalent) is shared by several people."""
        for each in self.equivalents(ident):
            key = each.key
            if key in self.shared:
                return True
            if any(fnmatch.fnmatchcase(key, p) for p in self.shared_patterns):
                return True
            if (
                self.builtin_shared
                and each.kind is IdentifierKind.EMAIL
                and BUILTIN_SHARED_EMAIL.match(each.value)
            ):
                return True
        return False


class Policy(_Strict):
    """A tenant's governance policy. Every part has safe defaults."""

    remember: RememberPolicy = Field(default_factory=RememberPolicy)
    redaction: RedactionPolicy = Field(default_factory=RedactionPolicy)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    identity: IdentityPolicy = Field(default_factory=IdentityPolicy)

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
