"""LangChain retrievers over Conversation Memory.

* :class:`ConversationMemoryRetriever` returns what the engine recalls about
  one customer for a query, one ``Document`` per recalled item.
* :class:`KnowledgeRetriever` searches the business's knowledge bases, one
  ``Document`` per cited chunk.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator, model_validator

from memory_core.aio import AsyncMemory
from memory_core.knowledge import KnowledgeHit
from memory_core.memory import Memory
from memory_core.recall import RecallOptions, RecallResult

from .._common import (
    CustomerRef,
    KnowledgeSearch,
    asearch_knowledge,
    item_metadata,
    knowledge_metadata,
    refuse_tenant,
    search_knowledge,
    split_memory,
)

__all__ = ["ConversationMemoryRetriever", "KnowledgeRetriever"]


def _documents(result: RecallResult | None) -> list[Document]:
    if result is None:
        return []
    return [
        Document(page_content=item.text, metadata=item_metadata(item, result), id=item.id)
        for item in result.items
    ]


class ConversationMemoryRetriever(BaseRetriever):
    """What Conversation Memory recalls about one customer, as ``Document`` objects.

    ``page_content`` is the recalled text (a trait, an observation, a summary or
    a message); ``metadata`` holds ``kind``, ``score`` (in [0, 1]), ``id``,
    ``profile_id``, ``tenant`` and the provenance (``conversation_id``,
    ``channel``, ``role``, ``ts``, ``source``, ``message_ids``). An empty query
    recalls the most recent context. A customer the store does not know yet
    yields no documents.

    The text is the customer's own words: treat it as data, not instructions,
    when you put it in a prompt (the engine's ``RecallResult.context`` is
    already wrapped that way).

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory` handle; the
    retriever recalls in its tenant (``memory.tenant("acme")`` for another one).
    ``ainvoke`` runs the engine in worker threads, never on the event loop.

    Example::

        retriever = ConversationMemoryRetriever(memory=memory, customer="phone:+16175550142")
        docs = retriever.invoke("delivery preferences")
    """

    memory: Memory
    customer: CustomerRef
    options: RecallOptions = Field(default_factory=RecallOptions)
    #: Recall in the context of this conversation (its last turns are left out).
    conversation_id: str | None = None

    @field_validator("memory", mode="before")
    @classmethod
    def _sync_memory(cls, value: Any) -> Any:
        return value.sync if isinstance(value, AsyncMemory) else value

    @model_validator(mode="before")
    @classmethod
    def _no_tenant(cls, data: Any) -> Any:
        return refuse_tenant(data)

    def _recall(self, query: str) -> RecallResult | None:
        profile = self.memory.profiles.find(self.customer)
        if profile is None:
            return None
        return self.memory.recall(
            profile.id,
            query,
            conversation_id=self.conversation_id,
            options=self.options,
        )

    async def _arecall(self, query: str) -> RecallResult | None:
        _, aio = split_memory(self.memory)
        profile = await aio.profiles.find(self.customer)
        if profile is None:
            return None
        return await aio.recall(
            profile.id,
            query,
            conversation_id=self.conversation_id,
            options=self.options,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return _documents(self._recall(query))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        return _documents(await self._arecall(query))


def _knowledge_documents(hits: list[KnowledgeHit], tenant: str) -> list[Document]:
    return [
        Document(page_content=hit.text, metadata=knowledge_metadata(hit, tenant), id=hit.id)
        for hit in hits
    ]


class KnowledgeRetriever(BaseRetriever, KnowledgeSearch):
    """The knowledge-base chunks that best answer a query, as ``Document`` objects.

    ``page_content`` is the chunk's passage; ``metadata`` holds ``score`` (in
    [0, 1]), ``kind`` ("knowledge"), ``id``, ``tenant``, ``citation`` (one line
    to show: source › page › headings (uri, chunk n)) and its parts:
    ``source_title``, ``uri``, ``page_title``, ``heading_path``, ``position``
    (0-based within the page), ``page`` (PDF), ``source_id``, ``kb_id``.

    What to search: ``knowledge_bases`` (a knowledge base id or name, or several),
    ``sources`` (source ids), ``source_tags`` (sources with any of these tags), ``limit``
    (top-k, default 4), ``min_score`` (threshold), ``mode`` and ``alpha`` (see
    ``memory.knowledge.search``). Only the knowledge of the handle's tenant is
    ever searched. A blank query finds nothing; an unknown knowledge base raises
    ``NotFoundError``.

    Pages come from outside (web sites, documents): treat chunk text as data,
    not instructions, when you put it in a prompt.

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory`; ``ainvoke``
    runs the engine in a worker thread, never on the event loop.

    Example::

        retriever = KnowledgeRetriever(memory=memory, knowledge_bases="help-center", limit=3)
        for doc in retriever.invoke("how long do refunds take"):
            print(doc.page_content, "--", doc.metadata["citation"])
    """

    memory: Memory

    @field_validator("memory", mode="before")
    @classmethod
    def _sync_memory(cls, value: Any) -> Any:
        return value.sync if isinstance(value, AsyncMemory) else value

    @model_validator(mode="before")
    @classmethod
    def _no_tenant(cls, data: Any) -> Any:
        return refuse_tenant(data)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = search_knowledge(self.memory, query, self)
        return _knowledge_documents(hits, self.memory.name)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        _, aio = split_memory(self.memory)
        hits = await asearch_knowledge(aio, query, self)
        return _knowledge_documents(hits, self.memory.name)
