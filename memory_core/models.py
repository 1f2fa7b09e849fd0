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

from memory_core.validation import CheckedModel, as_utc, clean_text, optional_timestamp

__all__ = [
    "AccessRole",
    "ApiKey",
    "AuditEvent",
    "Channel",
    "Chunk",
    "ConnectorState",
    "Conversation",
    "ConversationIn",
    "ConversationStatus",
    "CrawlOptions",
    "Decision",
    "DeletionReceipt",
    "ExtractionRecord",
    "ExtractionStatus",
    "Identifier",
    "IdentifierKind",
    "IdentifierLink",
    "KnowledgeBase",
    "MergeRecord",
    "MergeStatus",
    "Message",
    "MessageIn",
    "Observation",
    "ObservationKind",
    "ObservationStatus",
    "Outcome",
    "PendingMerge",
    "PolicyRecord",
    "Profile",
    "Record",
    "Revision",
    "Role",
    "Source",
    "SourceStatus",
    "SourceType",
    "Summary",
    "Trait",
    "TraitDefinition",
    "TraitType",
    "Usage",
    "as_utc",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A fresh random id such as ``prf_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"


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
    """Profile ``id`` was merged into ``survivor_id``; the old id still resolves.

    The rest is the merge's provenance, what ``memory.profiles.unmerge`` needs to
    split the profiles again: the merged profile as it was (``profile``; ``None``
    on records written before unmerge existed, which cannot be undone), the keys
    of its identifiers, the ids of its conversations and observations, its traits
    as they were, the survivor's traits the merge replaced with newer values, the
    profiles merged into it before (``chained``) and whether the survivor took its
    display name. It holds identifiers and trait values: it is erased with the
    profile and included in its export."""

    survivor_id: str
    merged_at: datetime = Field(default_factory=utcnow)
    reason: str = ""
    profile: Profile | None = None
    identifiers: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()
    observations: tuple[str, ...] = ()
    traits: tuple[Trait, ...] = ()
    replaced_traits: tuple[Trait, ...] = ()
    chained: tuple[str, ...] = ()
    took_display_name: bool = False
    connector_state: tuple[str, ...] = ()
    """Ids of the connector state records of the merged profile (they go back with it)."""

    _utc = field_validator("merged_at")(as_utc)


class MergeStatus(StrEnum):
    """Where a proposed merge stands."""

    PENDING = "pending"  # waiting for a person: confirm or reject
    CONFIRMED = "confirmed"  # merged
    REJECTED = "rejected"  # kept apart; the same pair is not proposed again


class PendingMerge(Record):
    """A merge identity resolution proposed instead of doing it silently: two
    profiles with history (``profile_a``: the one the customer was resolved to,
    ``profile_b``: the other) matched by ``identifiers`` (keys), or a recycled
    number (``reason``). ``id`` is ``pmg_`` and a digest of the pair, so a pair is
    proposed once; a rejected pair stays rejected."""

    profile_a: str
    profile_b: str
    status: MergeStatus = MergeStatus.PENDING
    reason: str = ""
    identifiers: tuple[str, ...] = ()
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    decision_reason: str = ""

    _utc = field_validator("created_at")(as_utc)

    @field_validator("decided_at")
    @classmethod
    def _decided_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class DeletionReceipt(_Model):
    """What a deletion removed: counts per record type, and when.

    ``purged`` says whether the deleted content is gone from the store's files:
    True once purged; False while the purge is pending (another connection's read
    transaction held old pages past the wait) -- ``convmem gc``,
    ``memory.governance.gc()`` or the next open of the store finishes it; None
    where the backend cannot purge its files (Weaviate: disk space is reclaimed by
    the server's own compaction) or the receipt is built before the purge runs."""

    tenant: str
    target: str
    deleted: dict[str, int]
    at: datetime = Field(default_factory=utcnow)
    purged: bool | None = None

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


# -- ingest inputs ---------------------------------------------------------------


class MessageIn(BaseModel):
    """A message to ingest. ``ts`` defaults to now (give it for back-filled history);
    ``id`` may carry the id of the source system (unique within the tenant).

    Sizes (text, author, metadata) are checked against ``Settings.limits`` when it
    is ingested (:mod:`memory_core.validation`)."""

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
        return clean_text(value, "message text")

    @field_validator("ts")
    @classmethod
    def _ts(cls, value: datetime | None) -> datetime | None:
        return optional_timestamp(value, "message ts")


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
        return optional_timestamp(value, "started_at")


# -- enterprise knowledge ----------------------------------------------------------


class SourceType(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"
    PDF = "pdf"
    FAQ = "faq"  # CSV, TSV or JSON of question/answer pairs
    WEB = "web"  # a site crawled from a URL


class SourceStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class CrawlOptions(CheckedModel, _Model):
    """How a web source is crawled: pages within ``max_depth`` links of the start
    URL (plus those its sitemap lists), at most ``max_pages``, on the same site
    unless ``same_site`` is off; robots.txt is always respected."""

    max_depth: int = Field(default=2, ge=0, le=10)
    max_pages: int = Field(default=200, ge=1, le=20_000)
    same_site: bool = True
    use_sitemap: bool = True
    concurrency: int = Field(default=4, ge=1, le=16)
    timeout_s: float = Field(default=15.0, gt=0, le=300)
    max_page_bytes: int = Field(default=5_000_000, ge=1_000, le=200_000_000)


class KnowledgeBase(Record):
    """A named collection of sources in a tenant. ``epoch`` grows whenever what a
    search of it may see changes (a version published, a source staged or removed)."""

    name: str
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    epoch: int = 0

    _utc = field_validator("created_at")(as_utc)


class Source(Record):
    """A document, FAQ file or web site indexed into a knowledge base.

    ``version`` is the published version (0: nothing searchable yet); chunks
    written for ``pending_version`` stay invisible until it is published.
    ``generations`` lists the versions that still own live chunks.
    """

    kb_id: str
    type: SourceType
    uri: str
    title: str
    status: SourceStatus = SourceStatus.QUEUED
    error: str | None = None
    version: int = 0
    pending_version: int | None = None
    generations: tuple[int, ...] = ()
    content_hash: str | None = None
    tags: tuple[str, ...] = ()
    crawl: CrawlOptions | None = None
    page_count: int = 0
    chunk_count: int = 0
    notes: tuple[str, ...] = ()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime | None = None

    _utc = field_validator("created_at", "updated_at")(as_utc)

    @field_validator("heartbeat_at")
    @classmethod
    def _heartbeat_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class Chunk(Record):
    """A retrievable piece of a source's page. ``text`` is what is indexed (a
    context line naming the document and its headings, then the passage);
    ``text[passage_start:]`` is the passage alone. Visible in searches while
    ``since`` is one of its source's live ``generations``; ``gen`` encodes that."""

    kb_id: str
    source_id: str
    since: int
    gen: str
    page_uri: str
    page_title: str = ""
    page_hash: str
    text: str
    passage_start: int = 0
    heading_path: tuple[str, ...] = ()
    position: int = 0
    page: int | None = None

    @property
    def passage(self) -> str:
        return self.text[self.passage_start :]


# -- observations, summaries and extraction ---------------------------------------


class ObservationKind(StrEnum):
    """What an observation is about."""

    PREFERENCE = "preference"  # how they like things done: channel, language, products
    BEHAVIOUR = "behaviour"  # what they habitually do
    CONTEXT = "context"  # circumstances: where they live, work, family, accessibility
    FACT = "fact"  # account facts: plan, contact details
    INTENT = "intent"  # what they plan or want to do: cancel, upgrade, move
    EVENT = "event"  # something that happened, with its date when known
    COMPLAINT = "complaint"  # a problem they reported


class ObservationStatus(StrEnum):
    ACTIVE = "active"  # the current truth; recalled by default
    SUPERSEDED = "superseded"  # replaced by a newer observation (``superseded_by``)
    DELETED = "deleted"  # retracted: no longer true, nothing replaced it


class Decision(StrEnum):
    """What reconciliation did with a proposed observation."""

    ADD = "add"  # a new observation
    UPDATE = "update"  # a new version that supersedes an existing observation
    DUPLICATE = "duplicate"  # already known: evidence merged into the existing one
    DISCARD = "discard"  # dropped by policy (low confidence, no customer evidence, ...)


class Outcome(StrEnum):
    """How a conversation ended, as far as its text tells."""

    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    ESCALATED = "escalated"
    UNKNOWN = "unknown"


class Usage(_Model):
    """What model calls cost: calls made (failed ones included), tokens and USD."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    notes: tuple[str, ...] = ()

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            notes=tuple(dict.fromkeys((*self.notes, *other.notes))),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Revision(_Model):
    """One step in an observation's life: created, or evidence merged into it."""

    at: datetime = Field(default_factory=utcnow)
    decision: Decision
    extractor: str
    conversation_id: str | None = None
    evidence: tuple[str, ...] = ()
    note: str = ""

    _utc = field_validator("at")(as_utc)


class Observation(Record):
    """A short, self-contained statement learned about a profile.

    ``evidence`` holds the ids of the messages it was drawn from; ``trait_key``
    names the slot it fills (``location``, ``preferred_channel``...), so a new
    value for the same slot supersedes the old one. A superseded observation
    keeps its row (``status``, ``valid_to``, ``superseded_by``) for history.
    """

    profile_id: str
    kind: ObservationKind
    text: str
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    evidence: tuple[str, ...] = ()
    conversation_id: str | None = None
    channel: Channel | None = None
    trait_key: str | None = None
    value: str | None = None
    status: ObservationStatus = ObservationStatus.ACTIVE
    valid_from: datetime
    valid_to: datetime | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    extractor: str
    source: str = "extracted"
    decision: Decision = Decision.ADD
    revisions: tuple[Revision, ...] = ()

    _utc = field_validator("valid_from", "created_at", "updated_at")(as_utc)

    @field_validator("valid_to")
    @classmethod
    def _valid_to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    def valid_at(self, when: datetime) -> bool:
        """Whether this observation held at ``when``."""
        when = as_utc(when)
        return self.valid_from <= when and (self.valid_to is None or when < self.valid_to)


class Summary(Record):
    """What happened in one conversation and how it ended. ``id`` is ``sum:<conversation id>``."""

    conversation_id: str
    profile_id: str
    channel: Channel
    text: str
    outcome: Outcome = Outcome.UNKNOWN
    evidence: tuple[str, ...] = ()
    extractor: str
    ts: datetime  # when the conversation started
    created_at: datetime = Field(default_factory=utcnow)

    _utc = field_validator("ts", "created_at")(as_utc)


class ExtractionStatus(StrEnum):
    DONE = "done"
    PENDING = "pending"  # failed (e.g. the LLM was unreachable); extract_all retries it


class ExtractionRecord(Record):
    """Which extractor last ran on a conversation, over which messages, at what cost.
    ``id`` is the conversation id."""

    conversation_id: str
    profile_id: str
    status: ExtractionStatus
    extractor: str
    messages: int = 0
    last_message_id: str | None = None
    attempts: int = 1
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    updated_at: datetime = Field(default_factory=utcnow)

    _utc = field_validator("updated_at")(as_utc)


class TraitType(StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    ENUM = "enum"


class TraitDefinition(Record):
    """A declared trait key: its type (and allowed values for ``enum``). ``id`` is the key."""

    type: TraitType
    description: str = ""
    values: tuple[str, ...] = ()
    declared_by: str = "api"  # who declared it: api, an integration's name, a schema file
    created_at: datetime = Field(default_factory=utcnow)

    _utc = field_validator("created_at")(as_utc)

    @property
    def key(self) -> str:
        return self.id


# -- governance: audit log, access keys, per-tenant policies ------------------------


class AccessRole(StrEnum):
    """What an API key may do: ``read`` recall and search, ``write`` also ingest
    and update, ``admin`` also delete, set policies and export."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


class AuditEvent(Record):
    """One mutation: who did what to which record, when and why. Append-only.

    ``target`` names records by id only (``profile:prf_...``), and ``details``
    holds ids and counts, never message text or identifiers, so the log may
    outlive what it describes. ``id`` sorts in time order.
    """

    ts: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    target: str
    reason: str = ""
    details: dict[str, int | str] = Field(default_factory=dict)

    _utc = field_validator("ts")(as_utc)


class ApiKey(Record):
    """An access key of one tenant with one role. Only a salted SHA-256 digest of
    the secret is stored; ``id`` is the key id shown in listings. A key with an
    ``expires_at`` is refused from that time on (keys stored before expiry existed
    have none: the field lives in the record's body, so no schema change)."""

    name: str
    role: AccessRole
    salt: str = Field(repr=False)
    secret_hash: str = Field(repr=False)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = "api"
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    _utc = field_validator("created_at")(as_utc)

    @field_validator("revoked_at", "expires_at")
    @classmethod
    def _optional_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class PolicyRecord(Record):
    """A tenant's stored governance policy (see :mod:`memory_core.governance.policy`);
    ``id`` is ``"policy"``. ``policy`` is the policy as JSON."""

    policy: dict[str, Any]
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str = "api"

    _utc = field_validator("updated_at")(as_utc)


class ConnectorState(Record):
    """What a connector keeps between runs in one tenant (see
    :mod:`memory_core.connectors`): its ``cursor`` (where an incremental pull or
    an import stopped), the external ids it already ``seen`` (idempotent replay),
    and the ``version`` time of the newest external value applied to a slot (so an
    older event does not overwrite a newer value). ``id`` is
    ``<connector>:<kind>:<key>``; ``value`` holds ids and times only, never content.
    ``profile_id``: the profile a record concerns (an event applied to it, a value
    version, a push digest, a message thread of its number), so erasing the
    profile erases the record too; None for records of no one (cursors).
    """

    connector: str
    kind: str
    key: str
    value: str = ""
    profile_id: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    _utc = field_validator("updated_at")(as_utc)
