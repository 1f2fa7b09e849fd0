"""LangChain adapters for Conversation Memory (the ``langchain`` extra).

* :class:`ConversationMemoryRetriever` - a customer's recall as ``Document`` objects.
* :class:`ConversationMemoryChatMessageHistory` and :func:`session_history_factory` -
  chat history kept as a conversation, for ``RunnableWithMessageHistory``.
* :func:`memory_tools` - the ``recall`` and ``remember`` tools for agents.

Knowledge search (a ``KnowledgeRetriever`` and a ``search_knowledge`` tool)
joins these when the engine's knowledge base lands.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "integrations.langchain needs langchain-core: pip install 'conversation-memory[langchain]'"
    ) from exc

from integrations.langchain.chat_history import (
    ConversationMemoryChatMessageHistory,
    session_history_factory,
)
from integrations.langchain.retrievers import ConversationMemoryRetriever
from integrations.langchain.tools import RecallArgs, RememberArgs, memory_tools

__all__ = [
    "ConversationMemoryChatMessageHistory",
    "ConversationMemoryRetriever",
    "RecallArgs",
    "RememberArgs",
    "memory_tools",
    "session_history_factory",
]
