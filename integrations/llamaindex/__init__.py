"""LlamaIndex adapters for Conversation Memory (the ``llamaindex`` extra).

* :class:`ConversationMemoryRetriever` - a customer's recall as ``NodeWithScore``
  objects, for a ``RetrieverQueryEngine`` or any retriever pipeline.
* :class:`KnowledgeRetriever` - knowledge-base search as ``NodeWithScore``
  objects with their citations.
* :class:`ConversationChatMemory` - agent and chat-engine memory kept as the
  customer's conversation: every message is captured as it happens, and
  ``get`` puts the recalled customer context in front of the chat.
* :class:`ConversationMemoryBlock` - a memory block for llama-index's
  ``Memory`` that feeds the recalled customer context (it does not capture).
* :class:`ConversationMemoryToolSpec` - a ``BaseToolSpec``: the agent tools of
  :mod:`memory_core.tools` (``recall``, ``search_knowledge``, ``remember``) as
  ``FunctionTool`` objects bound to the customer being served.
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "convmem_integrations.llamaindex needs llama-index-core: "
        "pip install 'conversation-memory[llamaindex]'"
    ) from exc

from .memory import ConversationChatMemory, ConversationMemoryBlock
from .retrievers import (
    ConversationMemoryRetriever,
    KnowledgeRetriever,
)
from .tools import ConversationMemoryToolSpec

__all__ = [
    "ConversationChatMemory",
    "ConversationMemoryBlock",
    "ConversationMemoryRetriever",
    "ConversationMemoryToolSpec",
    "KnowledgeRetriever",
]
