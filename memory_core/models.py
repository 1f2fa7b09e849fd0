"""The records Conversation Memory stores and the results it returns.

Stored records are pydantic models with an ``id`` and a ``tenant``. Times are
timezone-aware UTC datetimes; naive datetimes given by callers are taken as UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Channel",
    "Conversation",
    "ConversationStatus",
    "DeletionReceipt",
    "Identifier",
    "IdentifierKind",
    "IdentifierLink",
    "MergeRecord",
    "Message",
    "Profile",
    "Record",
    "Role",
    "Trait",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A fresh random id such as ``prf_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    CHAT = "chat"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class Role(StrEnum):
    CUSTOMER = "customer"
    HUMAN_AGENT = "human_agent"
    AI_AGENT = "ai_agent"
    SYSTEM = "system"


class IdentifierKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    CHAT_ID = "chat_id"
    CRM_ID = "crm_id"
    CUSTOM = "custom"


class ConversationStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


class Identifier(_Model):
    """A typed, normalised customer identifier (phone in E.164, email lower-cased...).

    Build one with :func:`memory_core.identity.normalize` (or ``Identifier.parse``),
    which validates and normalises; the constructor trusts its input.
    """

    kind: IdentifierKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.value}"

    @property
    def key(self) -> str:
        """The stable key of this identifier within a tenant."""
        return str(self)


class Record(_Model):
    """Base of every stored record: an id unique within its tenant and collection."""

    id: str
    tenant: str


class Profile(Record):
    """One customer. ``merged_into`` is set when this profile was merged into another."""

    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    display_name: str | None = None
    merged_into: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _utc = field_validator("created_at", "updated_at")(as_utc)


class IdentifierLink(Record):
    """Links a normalised identifier to a profile. ``id`` is the identifier key."""

    kind: IdentifierKind
    value: str
    profile_id: str
    created_at: datetime = Field(default_factory=utcnow)

    _utc = field_validator("created_at")(as_utc)

    @property
    def identifier(self) -> Identifier:
        return Identifier(kind=self.kind, value=self.value)


class Trait(Record):
    """A typed profile attribute (tier, location, language, ...) with its provenance."""

    profile_id: str
    key: str
    value: Any
    source: str = "api"
    confidence: float = 1.0
    updated_at: datetime = Field(default_factory=utcnow)
    evidence: tuple[str, ...] = ()

    _utc = field_validator("updated_at")(as_utc)


class Conversation(Record):
    """One interaction on one channel."""

    profile_id: str
    channel: Channel
    status: ConversationStatus = ConversationStatus.OPEN
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    subject: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _utc = field_validator("started_at")(as_utc)

    @field_validator("ended_at")
    @classmethod
    def _ended_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class Message(Record):
    """One turn of a conversation, stored verbatim."""

    conversation_id: str
    profile_id: str
    channel: Channel
    role: Role
    text: str
    ts: datetime
    seq: int = 0
    author: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _utc = field_validator("ts")(as_utc)


class MergeRecord(Record):
    """Profile ``id`` was merged into ``survivor_id``; the old id still resolves."""

    survivor_id: str
    merged_at: datetime = Field(default_factory=utcnow)
    reason: str = ""

    _utc = field_validator("merged_at")(as_utc)


class DeletionReceipt(_Model):
    """What a deletion removed: counts per record type, and when."""

    tenant: str
    target: str
    deleted: dict[str, int]
    at: datetime = Field(default_factory=utcnow)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())
