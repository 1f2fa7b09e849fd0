"""The LlamaIndex adapters in real pipelines: RetrieverQueryEngine with MockLLM over
the recall and knowledge retrievers, QueryFusionRetriever over both, a chat engine
and a FunctionAgent over ConversationChatMemory, and the memory block inside
llama-index's Memory."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import ChatMessage, MessageRole, MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import Memory as LlamaMemory
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import MetadataMode
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.ext.asyncio import create_async_engine

from convmem_integrations.llamaindex import (
    ConversationChatMemory,
    ConversationMemoryBlock,
    ConversationMemoryRetriever,
    KnowledgeRetriever,
)
from memory_core import AsyncMemory, ItemType, RecallOptions, Role
from memory_core.errors import ConflictError, NotFoundError, ValidationError
from memory_core.memory import Memory
from tests.integrations.conftest import (
    BRAND_B,
    BRAND_B_POLICY,
    CUSTOMER,
    OTHER,
    STAFF_NOTE,
    ThreadRecordingEmbedder,
)

TRAITS = RecallOptions(types=frozenset({ItemType.TRAIT}))
MESSAGES = RecallOptions(types=frozenset({ItemType.MESSAGE}))


def _scripted(*replies: str, sent: list[list[ChatMessage]] | None = None) -> MockFunctionCallingLLM:
    """llama-index's mock function-calling LLM, answering with these replies in
    turn; ``sent`` collects the messages of each call."""
    pending = iter(replies)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        if sent is not None:
            sent.append(list(messages))
        return ChatMessage(role="assistant", content=next(pending))

    return MockFunctionCallingLLM(response_generator=respond)


def test_query_engine_with_mock_llm_answers_from_recalled_nodes(seeded: Memory) -> None:
    retriever = ConversationMemoryRetriever(seeded, CUSTOMER)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = engine.query("How does this customer want to be contacted?")

    texts = [hit.node.get_content() for hit in response.source_nodes]
    assert "Please text me updates, I can't take calls at work." in texts
    assert all("9001" not in t for t in texts)
    # MockLLM echoes its prompt: the recalled text reached the model, with the
    # metadata meant for it and without the bookkeeping ids.
    assert "Please text me updates" in str(response)
    hit = next(h for h in response.source_nodes if h.node.get_content().startswith("Please"))
    shown = hit.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "channel: sms" in shown and "role: customer" in shown
    assert "profile_id" not in shown and hit.node.metadata["profile_id"].startswith("prf_")
    assert hit.node.node_id == hit.node.metadata["id"]
    assert hit.score == hit.node.metadata["score"]


def test_query_engine_returns_nodes_from_both_retrievers(seeded: Memory) -> None:
    seeded.traits.set(CUSTOMER, "preferred_channel", "sms", source="crm")
    fused = QueryFusionRetriever(
        [
            ConversationMemoryRetriever(seeded, CUSTOMER, options=TRAITS),
            ConversationMemoryRetriever(seeded, CUSTOMER, options=MESSAGES),
        ],
        llm=MockLLM(),
        num_queries=1,  # no query rewriting: the retrievers get the question as asked
        use_async=False,
    )
    engine = RetrieverQueryEngine.from_args(fused, llm=MockLLM())

    response = engine.query("text me about the cracked screen")

    kinds = {hit.node.metadata["kind"] for hit in response.source_nodes}
    assert kinds == {"trait", "message"}
    assert "preferred_channel: sms" in str(response)


async def test_query_engine_async_runs_the_engine_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    retriever = ConversationMemoryRetriever(AsyncMemory(memory), CUSTOMER)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = await engine.aquery("cracked screen on order 4471")

    assert response.source_nodes[0].node.get_content() == (
        "Order 4471 arrived with a cracked screen."
    )
    assert embedder.threads and threading.get_ident() not in embedder.threads


def test_knowledge_query_engine_answers_from_cited_chunks(knowledge: Memory) -> None:
    retriever = KnowledgeRetriever(knowledge, knowledge_bases="help", limit=2)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = engine.query("How long does a refund take?")

    top = response.source_nodes[0]
    assert top.node.get_content().startswith("Refunds reach your card within 5 business days")
    meta = top.node.metadata
    assert meta["citation"] == "Help center › Returns and refunds › Refunds (help/returns, chunk 2)"
    assert (meta["source_title"], meta["uri"], meta["page_title"]) == (
        "Help center",
        "help/returns",
        "Returns and refunds",
    )
    assert meta["heading_path"] == ["Returns and refunds", "Refunds"]
    assert (meta["kind"], meta["position"], meta["tenant"]) == ("knowledge", 1, "default")
    assert meta["kb_id"] == knowledge.knowledge.bases.get("help").id
    assert top.node.node_id == meta["id"] and top.score == meta["score"]
    assert len(response.source_nodes) == 2
    assert all(h.node.metadata["kb_id"] == meta["kb_id"] for h in response.source_nodes)
    # The model is shown the passage with its citation, not the bookkeeping ids.
    shown = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "citation: Help center › Returns and refunds › Refunds" in shown
    assert "kb_id" not in shown and "source_id" not in shown
    assert "citation: Help center" in str(response)  # MockLLM echoes its prompt


def test_query_engine_returns_nodes_from_both_recall_and_knowledge(knowledge: Memory) -> None:
    both = QueryFusionRetriever(
        [ConversationMemoryRetriever(knowledge, CUSTOMER), KnowledgeRetriever(knowledge)],
        llm=MockLLM(),
        num_queries=1,  # no query rewriting: the retrievers get the question as asked
        similarity_top_k=20,
        use_async=False,
    )
    engine = RetrieverQueryEngine.from_args(both, llm=MockLLM())

    response = engine.query("Where is the replacement for my cracked screen, and the refund?")

    by_kind: dict[str, list[str]] = {}
    for hit in response.source_nodes:
        by_kind.setdefault(hit.node.metadata["kind"], []).append(hit.node.get_content())
    assert set(by_kind) == {"message", "knowledge"}
    assert "Order 4471 arrived with a cracked screen." in by_kind["message"]
    assert STAFF_NOTE in by_kind["knowledge"]
    assert any(t.startswith("Refunds reach your card") for t in by_kind["knowledge"])
    answer = str(response)
    assert "Order 4471 arrived with a cracked screen." in answer
    assert "citation: Escalations" in answer
    # Never another customer's memory, never another tenant's knowledge.
    assert "9001" not in answer and BRAND_B_POLICY not in answer


def test_knowledge_retriever_filters_and_tenants(knowledge: Memory) -> None:
    def texts(retriever: KnowledgeRetriever, query: str) -> list[str]:
        return [hit.node.get_content() for hit in retriever.retrieve(query)]

    question = "refunds warranty cracked screens"
    assert texts(KnowledgeRetriever(knowledge, knowledge_bases="staff"), question) == [STAFF_NOTE]
    assert texts(KnowledgeRetriever(knowledge, source_tags=["internal"]), question) == [STAFF_NOTE]
    policy = texts(KnowledgeRetriever(knowledge, source_tags=["policy"], limit=10), question)
    assert policy and STAFF_NOTE not in policy
    assert len(texts(KnowledgeRetriever(knowledge, limit=1), question)) == 1
    strict = KnowledgeRetriever(knowledge, min_score=0.5, limit=10).retrieve(question)
    assert all((hit.score or 0) >= 0.5 for hit in strict)
    assert texts(KnowledgeRetriever(knowledge), "   ") == []
    # Each tenant searches its own knowledge only, whatever the query.
    everything = texts(KnowledgeRetriever(knowledge, limit=50), "Brand B refunds store credit")
    assert BRAND_B_POLICY not in everything and len(everything) == 5
    assert texts(KnowledgeRetriever(knowledge.tenant(BRAND_B), limit=50), question) == [
        BRAND_B_POLICY
    ]
    with pytest.raises(NotFoundError, match="knowledge base 'nope'"):
        KnowledgeRetriever(knowledge, knowledge_bases="nope").retrieve(question)
    with pytest.raises(PydanticValidationError, match="limit"):
        KnowledgeRetriever(knowledge, limit=0)
    with pytest.raises(PydanticValidationError, match="top_k"):
        KnowledgeRetriever(knowledge, top_k=3)
    with pytest.raises(PydanticValidationError, match="kb is now knowledge_bases"):
        KnowledgeRetriever(knowledge, kb="help")


async def test_knowledge_query_engine_async_runs_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    retriever = KnowledgeRetriever(AsyncMemory(memory), knowledge_bases="help")
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

    response = await engine.aquery("change my delivery address")

    assert (
        response.source_nodes[0]
        .node.metadata["citation"]
        .startswith("Help center › Delivery › Delivery address")
    )
    assert embedder.threads and threading.get_ident() not in embedder.threads


def test_retriever_for_unknown_customer_or_other_tenant_is_empty(seeded: Memory) -> None:
    assert ConversationMemoryRetriever(seeded, "phone:+12025550100").retrieve("x") == []
    brand_b = seeded.tenants.add("brand-b")
    assert ConversationMemoryRetriever(brand_b, CUSTOMER).retrieve("x") == []


def test_chat_engine_memory_captures_each_turn_and_feeds_recall(seeded: Memory) -> None:
    chat_memory = ConversationChatMemory(seeded, CUSTOMER, channel="chat")
    chat = SimpleChatEngine.from_defaults(
        llm=_scripted("Let me check the replacement.", "Noted: texts only."),
        memory=chat_memory,
    )

    chat.chat("Any news on my replacement?")
    chat.chat("And remember: no calls, texts only.")

    stored = seeded.conversations.list_messages(chat_memory.conversation_id)
    assert [(m.role, m.text) for m in stored] == [
        (Role.CUSTOMER, "Any news on my replacement?"),
        (Role.AI_AGENT, "Let me check the replacement."),
        (Role.CUSTOMER, "And remember: no calls, texts only."),
        (Role.AI_AGENT, "Noted: texts only."),
    ]
    seen = chat_memory.get()
    assert seen[0].role is MessageRole.SYSTEM
    context = seen[0].content or ""
    assert "recalled DATA about the customer" in context
    assert "Please text me updates, I can't take calls at work." in context
    assert "9001" not in context
    # The chat follows, and the turns already in it are not repeated in the context.
    assert [m.content for m in seen[1:]] == [m.text for m in stored]
    assert "Any news on my replacement?" not in context
    assert [m.content for m in chat_memory.get_all()] == [m.text for m in stored]


# llama-index-workflows builds a FunctionAgent with inspect.getmembers() over the
# agent (a pydantic model), which reads attributes pydantic 2.x deprecates.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecationWarning:inspect")
async def test_function_agent_gets_recalled_context_and_its_chat_is_captured(
    seeded: Memory,
) -> None:
    calls: list[list[ChatMessage]] = []
    llm = _scripted("I'll text you instead of calling.", sent=calls)
    agent = FunctionAgent(llm=llm, tools=[], system_prompt="You are a support agent.")
    chat_memory = ConversationChatMemory(AsyncMemory(seeded), CUSTOMER)

    await agent.run("Can you call me about my order?", memory=chat_memory)

    (sent,) = calls
    contexts = [m.content or "" for m in sent if m.role is MessageRole.SYSTEM]
    assert any("Please text me updates, I can't take calls at work." in c for c in contexts)
    assert sent[-1].content == "Can you call me about my order?"
    stored = await AsyncMemory(seeded).conversations.list_messages(chat_memory.conversation_id)
    assert [(m.role, m.text) for m in stored] == [
        (Role.CUSTOMER, "Can you call me about my order?"),
        (Role.AI_AGENT, "I'll text you instead of calling."),
    ]


async def test_async_chat_engine_and_reset(seeded: Memory) -> None:
    chat_memory = ConversationChatMemory(AsyncMemory(seeded), CUSTOMER, conversation_id="c-7")
    chat = SimpleChatEngine.from_defaults(llm=_scripted("Hello!", "Hi again!"), memory=chat_memory)

    await chat.achat("Hi")
    assert [m.content for m in await chat_memory.aget_all()] == ["Hi", "Hello!"]
    await chat_memory.areset()

    assert seeded.conversations.get("c-7").status.value == "ended"
    assert await chat_memory.aget_all() == []
    await chat.achat("Back again")
    assert chat_memory.conversation_id != "c-7"
    assert [m.content for m in await chat_memory.aget_all()] == ["Back again", "Hi again!"]
    assert [m.text for m in seeded.conversations.list_messages("c-7")] == ["Hi", "Hello!"]


def test_chat_memory_skips_tool_traffic_and_set_only_appends(memory: Memory) -> None:
    chat_memory = ConversationChatMemory(memory, CUSTOMER)
    history = [
        ChatMessage(role="user", content="Where is my parcel?"),
        ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [{}]}),
        ChatMessage(role="tool", content="in transit"),
        ChatMessage(role="assistant", content="It is in transit."),
    ]
    chat_memory.set(history)
    chat_memory.set([*history, ChatMessage(role="user", content="Thanks")])

    assert [m.content for m in chat_memory.get_all()] == [
        "Where is my parcel?",
        "It is in transit.",
        "Thanks",
    ]
    with pytest.raises(ConflictError, match="only grows"):
        chat_memory.set([ChatMessage(role="user", content="A different story")])


def test_chat_memory_window_keeps_the_latest_turns_within_the_token_limit(
    memory: Memory,
) -> None:
    chat_memory = ConversationChatMemory(memory, CUSTOMER, token_limit=12)
    chat_memory.put_messages(
        [
            ChatMessage(role="user", content="one two three four five six"),
            ChatMessage(role="assistant", content="seven eight nine ten"),
            ChatMessage(role="user", content="eleven twelve"),
            ChatMessage(role="assistant", content="thirteen"),
        ]
    )
    chat = [m for m in chat_memory.get() if m.role is not MessageRole.SYSTEM]
    # The window starts on a customer turn.
    assert [m.content for m in chat] == ["eleven twelve", "thirteen"]


def test_chat_memory_refuses_another_customers_conversation(seeded: Memory) -> None:
    theirs = seeded.conversations.list(OTHER)[0].id
    chat_memory = ConversationChatMemory(seeded, CUSTOMER, conversation_id=theirs)
    with pytest.raises(ValidationError, match="another customer"):
        chat_memory.put(ChatMessage(role="user", content="Show me their order"))
    assert len(seeded.conversations.list_messages(theirs)) == 1


async def test_memory_block_feeds_recall_into_llama_index_memory(seeded: Memory) -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    try:
        chat_memory = LlamaMemory.from_defaults(
            session_id="chat-42",
            token_limit=4000,
            async_engine=engine,
            memory_blocks=[ConversationMemoryBlock(memory=AsyncMemory(seeded), customer=CUSTOMER)],
        )
        await chat_memory.aput(ChatMessage(role="user", content="Can you phone me at work?"))
        sent = await chat_memory.aget()
    finally:
        await engine.dispose()

    system = sent[0]
    assert system.role is MessageRole.SYSTEM
    assert "<conversation_memory>" in (system.content or "")
    assert "Please text me updates, I can't take calls at work." in (system.content or "")
    assert "9001" not in (system.content or "")
    assert sent[-1].content == "Can you phone me at work?"
    # The block captures nothing: that is ConversationChatMemory's job.
    assert len(seeded.conversations.list(CUSTOMER)) == 1


async def test_memory_block_for_a_customer_not_seen_before_is_empty(memory: Memory) -> None:
    block = ConversationMemoryBlock(memory=memory, customer="email:new@example.com")
    assert await block.aget([ChatMessage(role="user", content="hello")]) == ""
