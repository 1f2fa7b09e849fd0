"""LlamaIndex retrievers over Conversation Memory.

:class:`ConversationMemoryRetriever` returns what the engine recalls about one
customer, one ``NodeWithScore`` per recalled item, so it plugs into a
``RetrieverQueryEngine``, a ``QueryFusionRetriever`` or a router.

A ``KnowledgeRetriever`` over the business's knowledge base (cited chunks)
belongs here too; it is added with the engine's knowledge search.
"""

from __future__ import annotations

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from integrations._common import CustomerRef, item_metadata, split_memory
from memory_core.aio import AsyncMemory
from memory_core.config import DEFAULT_TENANT
from memory_core.memory import Memory
from memory_core.recall import RecallOptions, RecallResult

__all__ = ["ConversationMemoryRetriever"]

#: Metadata the LLM sees beside each node's text; the rest is bookkeeping.
LLM_METADATA = frozenset({"kind", "channel", "role", "ts", "source"})


def to_nodes(result: RecallResult | None) -> list[NodeWithScore]:
    """Recalled items as scored text nodes (node id = item id)."""
    if result is None:
        return []
    nodes = []
    for item in result.items:
        meta = item_metadata(item, result)
        node = TextNode(
            id_=item.id,
            text=item.text,
            metadata=meta,
            excluded_llm_metadata_keys=sorted(set(meta) - LLM_METADATA),
            excluded_embed_metadata_keys=sorted(meta),
        )
        nodes.append(NodeWithScore(node=node, score=item.score))
    return nodes


class ConversationMemoryRetriever(BaseRetriever):
    """What Conversation Memory recalls about one customer, as scored nodes.

    Node text is the recalled text (a trait, an observation, a summary or a
    message); node metadata holds ``kind``, ``score``, ``id``, ``profile_id``,
    ``tenant`` and the provenance (``conversation_id``, ``channel``, ``role``,
    ``ts``, ``source``, ``message_ids``), of which the LLM is shown ``kind``,
    ``channel``, ``role``, ``ts`` and ``source``. An empty query recalls the
    most recent context; a customer the store does not know yet yields no
    nodes. The text is the customer's own words: data, not instructions.

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory`;
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
        tenant: str = DEFAULT_TENANT,
        options: RecallOptions | None = None,
        conversation_id: str | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self.memory, self.amemory = split_memory(memory)
        self.customer = customer
        self.tenant = tenant
        self.options = options or RecallOptions()
        self.conversation_id = conversation_id
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        profile = self.memory.find_profile(self.customer, tenant=self.tenant)
        if profile is None:
            return []
        result = self.memory.recall(
            profile.id,
            query_bundle.query_str,
            tenant=self.tenant,
            conversation_id=self.conversation_id,
            options=self.options,
        )
        return to_nodes(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        profile = await self.amemory.find_profile(self.customer, tenant=self.tenant)
        if profile is None:
            return []
        result = await self.amemory.recall(
            profile.id,
            query_bundle.query_str,
            tenant=self.tenant,
            conversation_id=self.conversation_id,
            options=self.options,
        )
        return to_nodes(result)
