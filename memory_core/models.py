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
    "ConversationIn",
    "ConversationStatus",
    "DeletionReceipt",
    "Identifier",
    "IdentifierKind",
    "IdentifierLink",
    "MergeRecord",
    "Message",
    "MessageIn",
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


# -- ingest inputs ---------------------------------------------------------------

MAX_MESSAGE_CHARS = 100_000


class MessageIn(BaseModel):
    """A message to ingest. ``ts`` defaults to now (give it for back-filled history);
    ``id`` may carry the id of the source system (unique within the tenant)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    ts: datetime | None = None
    id: str | None = None
    author: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message text is empty")
        if len(value) > MAX_MESSAGE_CHARS:
            raise ValueError(
                f"message text has {len(value)} characters, more than {MAX_MESSAGE_CHARS}; "
                "split it into several messages"
            )
        if "\x00" in value:
            raise ValueError("message text contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                "message text is not valid Unicode (undecodable bytes); decode the source as UTF-8"
            ) from None
        return value

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class ConversationIn(BaseModel):
    """A whole conversation to ingest (the shape of one line of ``convmem ingest``).

    ``customer`` lists the customer's identifiers as ``kind:value`` strings
    (``phone:+1 617 555 0142``, ``email:ann@example.com``); alternatively give
    ``profile_id``. ``ended`` closes the conversation after ingest.
    """

    model_config = ConfigDict(extra="forbid")

    channel: Channel
    messages: list[MessageIn] = Field(default_factory=list)
    customer: list[str] = Field(default_factory=list)
    profile_id: str | None = None
    id: str | None = None
    started_at: datetime | None = None
    subject: str | None = None
    ended: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("started_at")
    @classmethod
    def _started(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)
