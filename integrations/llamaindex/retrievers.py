"""LlamaIndex retrievers over Conversation Memory.

* :class:`ConversationMemoryRetriever` returns what the engine recalls about
  one customer, one ``NodeWithScore`` per recalled item.
* :class:`KnowledgeRetriever` searches the business's knowledge bases, one
  ``NodeWithScore`` per cited chunk.

Both plug into a ``RetrieverQueryEngine``, a ``QueryFusionRetriever`` (which
answers from the customer's memory and the knowledge base together) or a router.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

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
    search_knowledge,
    split_memory,
)

__all__ = ["ConversationMemoryRetriever", "KnowledgeRetriever"]

#: Metadata the LLM sees beside each node's text; the rest is bookkeeping.
LLM_METADATA = frozenset({"kind", "channel", "role", "ts", "source"})
#: Of a knowledge chunk, the LLM sees its one-line citation.
KNOWLEDGE_LLM_METADATA = frozenset({"citation"})


def _node(node_id: str, text: str, meta: dict[str, Any], shown: frozenset[str]) -> TextNode:
    return TextNode(
        id_=node_id,
        text=text,
        metadata=meta,
        excluded_llm_metadata_keys=sorted(set(meta) - shown),
        excluded_embed_metadata_keys=sorted(meta),
    )


def to_nodes(result: RecallResult | None) -> list[NodeWithScore]:
    """Recalled items as scored text nodes (node id = item id)."""
    if result is None:
        return []
    return [
        NodeWithScore(
            node=_node(item.id, item.text, item_metadata(item, result), LLM_METADATA),
            score=item.score,
        )
        for item in result.items
    ]


def knowledge_nodes(hits: list[KnowledgeHit], tenant: str) -> list[NodeWithScore]:
    """Knowledge hits as scored text nodes (node id = chunk id)."""
    return [
        NodeWithScore(
            node=_node(hit.id, hit.text, knowledge_metadata(hit, tenant), KNOWLEDGE_LLM_METADATA),
            score=hit.score,
        )
        for hit in hits
    ]


class ConversationMemoryRetriever(BaseRetriever):
    """What Conversation Memory recalls about one customer, as scored nodes.

    Node text is the recalled text (a trait, an observation, a summary or a
    message); node metadata holds ``kind``, ``score``, ``id``, ``profile_id``,
    ``tenant`` and the provenance (``conversation_id``, ``channel``, ``role``,
    ``ts``, ``source``, ``message_ids``), of which the LLM is shown ``kind``,
    ``channel``, ``role``, ``ts`` and ``source``. An empty query recalls the
    most recent context; a customer the store does not know yet yields no
    nodes. The text is the customer's own words: data, not instructions.

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory` handle; the
    retriever recalls in its tenant (``memory.tenant("acme")`` for another one).
    ``aretrieve`` runs the engine in worker threads, never on the event loop.

    Example::

        retriever = ConversationMemoryRetriever(memory, customer="phone:+16175550142")
        engine = RetrieverQueryEngine.from_args(retriever, llm=llm)
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef,
        *,
        options: RecallOptions | None = None,
        conversation_id: str | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self.memory, self.amemory = split_memory(memory)
        self.customer = customer
        self.options = options or RecallOptions()
        self.conversation_id = conversation_id
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        profile = self.memory.profiles.find(self.customer)
        if profile is None:
            return []
        result = self.memory.recall(
            profile.id,
            query_bundle.query_str,
            conversation_id=self.conversation_id,
            options=self.options,
        )
        return to_nodes(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        profile = await self.amemory.profiles.find(self.customer)
        if profile is None:
            return []
        result = await self.amemory.recall(
            profile.id,
            query_bundle.query_str,
            conversation_id=self.conversation_id,
            options=self.options,
        )
        return to_nodes(result)


class KnowledgeRetriever(BaseRetriever):
    """The knowledge-base chunks that best answer a query, as scored nodes.

    Node text is the chunk's passage (node id = chunk id, score in [0, 1]);
    node metadata holds ``kind`` ("knowledge"), ``score``, ``id``, ``tenant``,
    ``citation`` (one line: source › page › headings (uri, chunk n)) and its
    parts: ``source_title``, ``uri``, ``page_title``, ``heading_path``,
    ``position`` (0-based within the page), ``page`` (PDF), ``source_id``,
    ``kb_id``. The LLM is shown the ``citation``, so answers can cite it.

    What to search is given by keyword: ``knowledge_bases`` (a knowledge base id
    or name, or several), ``sources`` (source ids), ``source_tags`` (sources with
    any of these tags), ``limit`` (top-k, default 4), ``min_score`` (threshold), ``mode`` and
    ``alpha`` (see ``memory.knowledge.search``; kept in ``search``). Only the
    knowledge of the handle's tenant is ever searched. A blank query finds nothing; an unknown
    knowledge base raises ``NotFoundError``. Chunk text comes from outside
    (web sites, documents): data, not instructions.

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory`;
    ``aretrieve`` runs the engine in a worker thread, never on the event loop.

    Example::

        retriever = KnowledgeRetriever(memory, knowledge_bases="help-center", limit=3)
        engine = RetrieverQueryEngine.from_args(retriever, llm=llm)
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        *,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **search: Any,
    ) -> None:
        self.memory, self.amemory = split_memory(memory)
        self.search = KnowledgeSearch(**search)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = search_knowledge(self.memory, query_bundle.query_str, self.search)
        return knowledge_nodes(hits, self.memory.name)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await asearch_knowledge(self.amemory, query_bundle.query_str, self.search)
        return knowledge_nodes(hits, self.memory.name)
