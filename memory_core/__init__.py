"""Conversation Memory: a memory layer for customer conversations.

Start with :class:`Memory` (or :class:`AsyncMemory`)::

    from memory_core import Memory

    with Memory.open("memory.db") as memory:
        memory.ingest({"channel": "sms", "customer": ["phone:+1 617 555 0142"],
                       "messages": [{"role": "customer", "text": "Please text, don't call."}]})
        print(memory.recall("phone:+16175550142", "how to contact them").context)

Importing this package has no side effects: models load on first use.
"""

from memory_core.aio import AsyncMemory
from memory_core.backends.base import Backend, SearchMode
from memory_core.config import DEFAULT_TENANT, Settings, load_settings
from memory_core.embedding.base import CachedEmbedder, Embedder
from memory_core.errors import (
    ConfigError,
    ConflictError,
    InvalidIdentifierError,
    MemoryCoreError,
    ModelError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
    ValidationError,
)
from memory_core.memory import IngestResult, Memory
from memory_core.models import (
    Channel,
    Conversation,
    ConversationIn,
    ConversationStatus,
    DeletionReceipt,
    Identifier,
    IdentifierKind,
    Message,
    MessageIn,
    Profile,
    Role,
    Trait,
)
from memory_core.recall import ItemType, Provenance, RecallItem, RecallOptions, RecallResult

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TENANT",
    "AsyncMemory",
    "Backend",
    "CachedEmbedder",
    "Channel",
    "ConfigError",
    "ConflictError",
    "Conversation",
    "ConversationIn",
    "ConversationStatus",
    "DeletionReceipt",
    "Embedder",
    "Identifier",
    "IdentifierKind",
    "IngestResult",
    "InvalidIdentifierError",
    "ItemType",
    "Memory",
    "MemoryCoreError",
    "Message",
    "MessageIn",
    "ModelError",
    "NotFoundError",
    "Profile",
    "Provenance",
    "RecallItem",
    "RecallOptions",
    "RecallResult",
    "Role",
    "SchemaMismatchError",
    "SearchMode",
    "Settings",
    "StorageError",
    "Trait",
    "ValidationError",
    "load_settings",
]
