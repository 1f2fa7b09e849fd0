"""Customer memory in a LlamaIndex query engine and chat engine.

    python examples/llamaindex_query_engine.py

runs offline: LlamaIndex's mock LLMs stand in for the model (the query
engine's ``MockLLM`` echoes the prompt it is given, so you see the recalled
memory inside it; the chat's replies are scripted), the store is a temporary
SQLite file, and nothing needs a key. To use a real model,
name a LiteLLM model the way the rest of Conversation Memory is configured::

    pip install llama-index-llms-litellm
    export CONVMEM_LLM_MODEL=openai/gpt-4o-mini OPENAI_API_KEY=...
    python examples/llamaindex_query_engine.py

What it shows:

1. past conversations on SMS and voice, and a profile trait, in memory; a
   billing FAQ indexed as a knowledge base;
2. a ``RetrieverQueryEngine`` over ``ConversationMemoryRetriever``, answering
   a question about the customer with the recalled items as its sources;
3. a ``RetrieverQueryEngine`` over a ``QueryFusionRetriever`` of the
   customer's memory and ``KnowledgeRetriever``: the answer's sources are the
   customer's own history and cited FAQ passages;
4. a chat engine whose memory is ``ConversationChatMemory``: each turn is
   captured into the customer's conversation, and the model is given the
   recalled context beside the chat.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import LLM, ChatMessage, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import NodeWithScore

from convmem_integrations.llamaindex import (
    ConversationChatMemory,
    ConversationMemoryRetriever,
    KnowledgeRetriever,
)
from memory_core import Memory, load_settings

CUSTOMER = "email:dana.reyes@example.com"

PAST = [
    {
        "channel": "sms",
        "customer": [CUSTOMER, "phone:+1 415 555 0199"],
        "messages": [
            {
                "role": "customer",
                "text": "Text me, please - I never pick up unknown numbers.",
                "ts": "2026-04-11T09:30:00Z",
            },
        ],
    },
    {
        "channel": "voice",
        "customer": ["phone:+1 415 555 0199"],
        "subject": "Billing",
        "messages": [
            {
                "role": "customer",
                "text": "I was charged twice for the March invoice.",
                "ts": "2026-05-20T16:05:00Z",
            },
            {
                "role": "human_agent",
                "text": "I've refunded the duplicate charge; allow five days.",
                "ts": "2026-05-20T16:07:00Z",
            },
        ],
    },
]

BILLING_FAQ = """\
# Billing FAQ

## Duplicate charges

A duplicate charge is refunded to the original card; the refund takes up to
five business days to appear on the statement.

## Invoices

Invoices are emailed on the first of each month and can be downloaded from the
account page.
"""

QUESTION = "How does this customer want to be contacted?"
REFUND_QUESTION = "When will the refund of my duplicate March charge show up?"
CHAT = ["Hi, did my refund go through?", "Great. Text me when it lands."]
OFFLINE_REPLIES = [
    "Yes: the duplicate March charge was refunded on May 20; allow five days.",
    "Will do - you'll get a text, not a call.",
]


def scripted_llm(replies: Sequence[str]) -> LLM:
    """LlamaIndex's mock chat model, answering with these replies in turn."""
    pending = iter(replies)

    def respond(messages: Sequence[ChatMessage], **kwargs: object) -> ChatMessage:
        return ChatMessage(role="assistant", content=next(pending))

    return MockFunctionCallingLLM(response_generator=respond)


def language_model(model: str | None, offline: LLM) -> LLM:
    """A LiteLLM-backed model when one is configured, else the offline mock."""
    if model is None:
        return offline
    try:
        from llama_index.llms.litellm import LiteLLM
    except ImportError:
        raise SystemExit(
            "CONVMEM_LLM_MODEL is set: pip install llama-index-llms-litellm to use it"
        ) from None
    real: LLM = LiteLLM(model=model)
    return real


def first_lines(text: str, n: int = 4) -> str:
    lines = text.strip().splitlines()
    more = f"\n    ... ({len(lines) - n} more lines)" if len(lines) > n else ""
    return "\n".join("    " + line for line in lines[:n]) + more


def print_sources(nodes: Sequence[NodeWithScore]) -> None:
    print("sources:")
    for hit in nodes:
        meta = hit.node.metadata
        if meta["kind"] == "knowledge":
            where = f"[{meta['citation']}]"
        else:
            where = " ".join(str(meta[k]) for k in ("channel", "role") if k in meta)
        print(f"  {hit.score or 0:.2f} {meta['kind']:9} {hit.node.get_content()} {where}")


def run(memory: Memory, model: str | None) -> None:
    for conversation in PAST:
        memory.ingest(conversation)
    memory.traits.set(CUSTOMER, "tier", "gold", source="crm")
    memory.observations.extract_all()  # imported history is extracted on demand
    print(f"ingested an SMS and a call, and a CRM trait, for {CUSTOMER}; extracted what they tell")
    memory.knowledge.bases.add("billing")
    memory.knowledge.sources.add(
        "billing",
        content=BILLING_FAQ,
        source_type="markdown",
        uri="https://acme.example/faq",
    )
    print("indexed the billing FAQ as knowledge base 'billing'")

    # 1. A query engine over what memory recalls about this customer.
    retriever = ConversationMemoryRetriever(memory, CUSTOMER)
    engine = RetrieverQueryEngine.from_args(retriever, llm=language_model(model, MockLLM()))
    response = engine.query(QUESTION)
    print(f"\nquery: {QUESTION}\nanswer:\n{first_lines(str(response))}")
    print_sources(response.source_nodes)

    # 2. One query engine over the customer's memory and the knowledge base.
    both = QueryFusionRetriever(
        [
            ConversationMemoryRetriever(memory, CUSTOMER),
            KnowledgeRetriever(memory, knowledge_bases="billing", limit=2),
        ],
        llm=MockLLM(),  # unused: num_queries=1 asks no rewritten queries
        num_queries=1,
        similarity_top_k=8,  # as in docs/integrations.md: room for memory and knowledge
        use_async=False,
    )
    engine = RetrieverQueryEngine.from_args(both, llm=language_model(model, MockLLM()))
    response = engine.query(REFUND_QUESTION)
    print(f"\nquery: {REFUND_QUESTION}\nanswer:\n{first_lines(str(response))}")
    print_sources(response.source_nodes)

    # 3. A chat whose memory is the customer's conversation.
    print()
    chat_memory = ConversationChatMemory(memory, CUSTOMER, channel="chat")
    chat = SimpleChatEngine.from_defaults(
        llm=language_model(model, scripted_llm(OFFLINE_REPLIES)),
        memory=chat_memory,
        system_prompt="You are a support agent. Be brief.",
    )
    for text in CHAT:
        reply = chat.chat(text)
        print(f"customer: {text}\nagent:    {reply}")
    print("\nwhat the model is given next turn (recalled context, then the chat):")
    for turn in chat_memory.get():
        print(f"  {turn.role.value}:\n{first_lines(turn.content or '', 8)}")
    stored = memory.conversations.list_messages(chat_memory.conversation_id)
    print(f"\nstored: {len(stored)} messages in conversation {chat_memory.conversation_id}")
    for message in stored:
        print(f"  {message.role.value:9} {message.text}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db", type=Path, help="keep the store in this SQLite file")
    args = parser.parse_args(argv)
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "memory.db"
        with Memory.open(path, settings=settings) as memory:
            run(memory, settings.llm_model)


if __name__ == "__main__":
    main()
