"""LangChain and LangGraph adapters for Conversation Memory (the ``langchain`` extra).

* :class:`ConversationMemoryMiddleware` - agent middleware for ``create_agent``:
  recalled customer context before the model, each turn recorded in the
  customer's conversation (the LangGraph thread).
* :class:`ConversationMemoryStore` - a LangGraph ``BaseStore``: ``put`` remembers
  an observation about a customer, ``search`` is their recall.
* :class:`ConversationMemoryRetriever` - a customer's recall as ``Document`` objects.
* :class:`KnowledgeRetriever` - knowledge-base search as ``Document`` objects,
  each with its citation.
* :class:`ConversationMemoryChatMessageHistory` and :func:`session_history_factory` -
  chat history kept as a conversation, for ``RunnableWithMessageHistory``
  (legacy: both are deprecated in langchain-core 1.x in favour of LangGraph
  persistence; use the middleware with a checkpointer instead).
* :func:`memory_tools` - the agent tools of :mod:`memory_core.tools` (``recall``,
  ``search_knowledge``, ``remember``) bound to the customer being served;
  :func:`spec_tool` translates any one spec.
"""

from __future__ import annotations

try:
    import langchain.agents  # noqa: F401
    import langchain_core  # noqa: F401
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "convmem_integrations.langchain needs langchain-core, langchain and langgraph: "
        "pip install 'conversation-memory[langchain]'"
    ) from exc

from .chat_history import (
    ConversationMemoryChatMessageHistory,
    session_history_factory,
)
from .middleware import ConversationMemoryMiddleware
from .retrievers import (
    ConversationMemoryRetriever,
    KnowledgeRetriever,
)
from .store import ConversationMemoryStore
from .tools import memory_tools, spec_tool

__all__ = [
    "ConversationMemoryChatMessageHistory",
    "ConversationMemoryMiddleware",
    "ConversationMemoryRetriever",
    "ConversationMemoryStore",
    "KnowledgeRetriever",
    "memory_tools",
    "session_history_factory",
    "spec_tool",
]
