"""Conversation Memory: a memory layer for customer conversations.

Start with :class:`Memory` (or :class:`AsyncMemory`)::

    from memory_core import Memory

    with Memory.open("memory.db") as memory:
        memory.ingest({"channel": "sms", "customer": ["phone:+1 617 555 0142"],
                       "messages": [{"role": "customer", "text": "Please text, don't call."}]})
        print(memory.recall("phone:+16175550142", "how to contact them").context)

``memory`` is the handle of the default tenant; ``memory.tenant("acme")`` that of
another. Everything else is in namespaces: ``memory.profiles``, ``.traits``,
``.conversations``, ``.observations``, ``.summaries``, ``.knowledge``,
``.governance``, ``.tenants`` (see docs/api.md).

Importing this package has no side effects: models load on first use.
"""

from memory_core.aio import AsyncMemory
from memory_core.backends.base import Backend, SearchMode
from memory_core.config import DEFAULT_TENANT, Settings, load_settings
from memory_core.context import ProfileRef
from memory_core.embedding.base import CachedEmbedder, Embedder
from memory_core.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    CrawlError,
    EmbedderMismatchError,
    IdentifierLimitError,
    InvalidIdentifierError,
    LLMReplyError,
    MemoryCoreError,
    ModelError,
    NotFoundError,
    NothingToIndex,
    PolicyDenied,
    SchemaMismatchError,
    SourceError,
    StorageError,
    ValidationError,
)
from memory_core.extraction import (
    ExtractionReport,
    Extractor,
    HeuristicExtractor,
    LLMExtractor,
    TraitView,
)
from memory_core.governance.audit import acting_as
from memory_core.governance.export import ProfileExport
from memory_core.governance.policy import (
    CustomPattern,
    IdentityPolicy,
    Policy,
    RedactionPolicy,
    RememberPolicy,
    RetentionPolicy,
)
from memory_core.governance.redaction import Redactor
from memory_core.governance.retention import RetentionScheduler
from memory_core.knowledge.types import Citation, KnowledgeHit
from memory_core.memory import IngestResult, Memory
from memory_core.models import (
    Channel,
    Chunk,
    Conversation,
    ConversationIn,
    ConversationStatus,
    Decision,
    DeletionReceipt,
    Identifier,
    IdentifierKind,
    KnowledgeBase,
    MergeStatus,
    Message,
    MessageIn,
    Observation,
    ObservationKind,
    ObservationStatus,
    Outcome,
    PendingMerge,
    Profile,
    Role,
    Source,
    SourceStatus,
    SourceType,
    Summary,
    Trait,
)
from memory_core.recall import ItemType, Provenance, RecallItem, RecallOptions, RecallResult

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AsyncMemory",
    "Backend",
    "CachedEmbedder",
    "Channel",
    "Chunk",
    "Citation",
    "ConfigError",
    "EmbedderMismatchError",
    "ConflictError",
    "Conversation",
    "ConversationIn",
    "ConversationStatus",
    "CrawlError",
    "CustomPattern",
    "DEFAULT_TENANT",
    "Decision",
    "DeletionReceipt",
    "Embedder",
    "ExtractionReport",
    "Extractor",
    "HeuristicExtractor",
    "Identifier",
    "IdentifierKind",
    "IdentifierLimitError",
    "IdentityPolicy",
    "IngestResult",
    "InvalidIdentifierError",
    "ItemType",
    "KnowledgeBase",
    "KnowledgeHit",
    "LLMExtractor",
    "LLMReplyError",
    "Memory",
    "MemoryCoreError",
    "MergeStatus",
    "Message",
    "MessageIn",
    "ModelError",
    "NotFoundError",
    "NothingToIndex",
    "Observation",
    "ObservationKind",
    "ObservationStatus",
    "Outcome",
    "PendingMerge",
    "Policy",
    "PolicyDenied",
    "Profile",
    "ProfileExport",
    "ProfileRef",
    "Provenance",
    "RecallItem",
    "RecallOptions",
    "RecallResult",
    "RedactionPolicy",
    "Redactor",
    "RememberPolicy",
    "RetentionPolicy",
    "RetentionScheduler",
    "Role",
    "SchemaMismatchError",
    "SearchMode",
    "Settings",
    "Source",
    "SourceError",
    "SourceStatus",
    "SourceType",
    "StorageError",
    "Summary",
    "Trait",
    "TraitView",
    "ValidationError",
    "acting_as",
    "load_settings",
]
