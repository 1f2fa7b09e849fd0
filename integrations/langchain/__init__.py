"""LangChain adapters for Conversation Memory (the ``langchain`` extra).

* :class:`ConversationMemoryRetriever` - a customer's recall as ``Document`` objects.
* :class:`KnowledgeRetriever` - knowledge-base search as ``Document`` objects,
  each with its citation.
* :class:`ConversationMemoryChatMessageHistory` and :func:`session_history_factory` -
  chat history kept as a conversation, for ``RunnableWithMessageHistory``.
* :func:`memory_tools` - the agent tools of :mod:`memory_core.tools` (``recall``,
  ``search_knowledge``, ``remember``) bound to the customer being served;
  :func:`spec_tool` translates any one spec.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "convmem_integrations.langchain needs langchain-core: "
        "pip install 'conversation-memory[langchain]'"
    ) from exc

from .chat_history import (
    ConversationMemoryChatMessageHistory,
    session_history_factory,
)
from .retrievers import (
    ConversationMemoryRetriever,
    KnowledgeRetriever,
)
from .tools import memory_tools, spec_tool

__all__ = [
    "ConversationMemoryChatMessageHistory",
    "ConversationMemoryRetriever",
    "KnowledgeRetriever",
    "memory_tools",
    "session_history_factory",
    "spec_tool",
]
