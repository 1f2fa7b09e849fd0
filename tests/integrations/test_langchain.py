"""The LangChain adapters in real chains: history through RunnableWithMessageHistory
with langchain-core's fake chat model, recall and knowledge through the
retrievers (the agent tools have their own module)."""

from __future__ import annotations

import threading
from operator import itemgetter
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="needs the langchain extra")

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableConfig, RunnablePassthrough
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.runnables.utils import ConfigurableFieldSpec
from pydantic import ValidationError as PydanticValidationError

from convmem_integrations.langchain import (
    ConversationMemoryChatMessageHistory,
    ConversationMemoryRetriever,
    KnowledgeRetriever,
    memory_tools,
    session_history_factory,
)
from memory_core import AsyncMemory, ItemType, RecallOptions, Role
from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from tests.integrations.conftest import (
    BRAND_B,
    BRAND_B_POLICY,
    CUSTOMER,
    OTHER,
    STAFF_NOTE,
    ThreadRecordingEmbedder,
)

# RunnableWithMessageHistory is deprecated in langchain-core 1.x (removal in 2.0)
# and warns when built; it is still what the issue asks to work unchanged.
DEPRECATED_RWMH = pytest.mark.filterwarnings(
    "ignore:RunnableWithMessageHistory is deprecated:DeprecationWarning"
)

SAID = [
    "Hi, my replacement for order 4471 still hasn't arrived.",
    "Please deliver it to my office at 200 Clarendon St from now on.",
]
REPLIES = ["Sorry, let me check the shipment.", "Noted, office delivery from now on."]


def _format(docs: list[Document]) -> str:
    return "\n".join(doc.page_content for doc in docs)


def _support_chain(memory: Memory | AsyncMemory, seen: list[str]) -> Runnable[Any, Any]:
    """prompt(recalled memory + history + input) | fake model, with history kept
    in Conversation Memory. ``seen`` collects the memory each turn was given."""
    retriever = ConversationMemoryRetriever(memory=memory, customer=CUSTOMER)

    def remember_prompt(value: dict[str, Any]) -> dict[str, Any]:
        seen.append(value["memory"])
        return value

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Known about the customer:\n{memory}"),
            MessagesPlaceholder("history"),
            ("human", "{input}"),
        ]
    )
    model = GenericFakeChatModel(messages=iter(REPLIES))
    chain = (
        RunnablePassthrough.assign(memory=itemgetter("input") | retriever | _format)
        | remember_prompt
        | prompt
        | model
    )
    return RunnableWithMessageHistory(
        chain,
        session_history_factory(memory, customer=CUSTOMER),
        input_messages_key="input",
        history_messages_key="history",
    )


def _roles_and_texts(memory: Memory, conversation_id: str) -> list[tuple[Role, str]]:
    return [(m.role, m.text) for m in memory.conversations.list_messages(conversation_id)]


EXPECTED_TURNS = [
    (Role.CUSTOMER, SAID[0]),
    (Role.AI_AGENT, REPLIES[0]),
    (Role.CUSTOMER, SAID[1]),
    (Role.AI_AGENT, REPLIES[1]),
]


@DEPRECATED_RWMH
def test_chain_with_message_history_two_turns_then_retriever_finds_what_customer_said(
    seeded: Memory,
) -> None:
    seen: list[str] = []
    chain = _support_chain(seeded, seen)
    config: RunnableConfig = {"configurable": {"session_id": "chat-0001"}}

    replies = [chain.invoke({"input": text}, config) for text in SAID]

    assert [r.content for r in replies] == REPLIES
    # The first turn was given the customer's SMS history, never the other customer's.
    assert "Please text me updates, I can't take calls at work." in seen[0]
    assert "order 9001" not in "\n".join(seen)  # (not the digits alone: ids are random hex)
    # Both turns are stored, with mapped roles, in the conversation named by the session.
    assert _roles_and_texts(seeded, "chat-0001") == EXPECTED_TURNS
    conv = seeded.conversations.get("chat-0001")
    assert conv.profile_id == seeded.profiles.get(CUSTOMER).id
    assert conv.channel.value == "chat"
    # And the retriever finds what the customer said.
    said = ConversationMemoryRetriever(
        memory=seeded, customer=CUSTOMER, options=RecallOptions(roles=frozenset({Role.CUSTOMER}))
    )
    top = said.invoke("deliver to my office")[0]
    assert top.page_content == SAID[1]
    assert top.metadata["conversation_id"] == "chat-0001"
    assert top.metadata["role"] == "customer"


@DEPRECATED_RWMH
async def test_chain_async_two_turns_through_async_memory(seeded: Memory) -> None:
    seen: list[str] = []
    chain = _support_chain(AsyncMemory(seeded), seen)
    config: RunnableConfig = {"configurable": {"session_id": "chat-0002"}}

    for text in SAID:
        await chain.ainvoke({"input": text}, config)

    assert _roles_and_texts(seeded, "chat-0002") == EXPECTED_TURNS
    assert "cracked screen" in seen[0]
    retriever = ConversationMemoryRetriever(memory=AsyncMemory(seeded), customer=CUSTOMER)
    docs = await retriever.ainvoke("office at 200 Clarendon St")
    assert docs[0].page_content == SAID[1]


@DEPRECATED_RWMH
def test_history_factory_takes_the_customer_per_call(seeded: Memory) -> None:
    model = GenericFakeChatModel(messages=iter(["Hello!", "Hello again!"]))
    chain = RunnableWithMessageHistory(
        model,
        session_history_factory(seeded),
        history_factory_config=[
            ConfigurableFieldSpec(id="session_id", annotation=str),
            ConfigurableFieldSpec(id="customer", annotation=str),
        ],
    )
    chain.invoke(
        [HumanMessage("Hi there")],
        {"configurable": {"session_id": "chat-0003", "customer": OTHER}},
    )
    assert seeded.conversations.get("chat-0003").profile_id == seeded.profiles.get(OTHER).id
    # The same session named with another customer is refused, not joined.
    with pytest.raises(ValidationError, match="another customer"):
        chain.invoke(
            [HumanMessage("Hi")],
            {"configurable": {"session_id": "chat-0003", "customer": CUSTOMER}},
        )
    assert [m.text for m in seeded.conversations.list_messages("chat-0003")] == [
        "Hi there",
        "Hello!",
    ]


def test_history_maps_roles_both_ways_and_skips_tool_traffic(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(memory, customer=CUSTOMER, channel="whatsapp")
    assert history.messages == []  # nothing is created before the first message
    history.add_messages(
        [
            SystemMessage("You are a support agent."),
            HumanMessage("Where is my parcel?"),
            AIMessage("", tool_calls=[{"name": "track", "args": {}, "id": "call_1"}]),
            ToolMessage("in transit", tool_call_id="call_1"),
            AIMessage("It is in transit."),
            ChatMessage(role="human_agent", content="This is Sam from the team, taking over."),
            ChatMessage(role="user", content="Thanks Sam"),
        ]
    )

    stored = memory.conversations.list_messages(history.conversation_id)
    assert [(m.role, m.text) for m in stored] == [
        (Role.SYSTEM, "You are a support agent."),
        (Role.CUSTOMER, "Where is my parcel?"),
        (Role.AI_AGENT, "It is in transit."),
        (Role.HUMAN_AGENT, "This is Sam from the team, taking over."),
        (Role.CUSTOMER, "Thanks Sam"),
    ]
    assert all(m.channel.value == "whatsapp" for m in stored)
    back = history.messages
    assert [type(m) for m in back] == [
        SystemMessage,
        HumanMessage,
        AIMessage,
        AIMessage,
        HumanMessage,
    ]
    assert [m.content for m in back] == [m.text for m in stored]
    assert [m.id for m in back] == [m.id for m in stored]


def test_history_rejects_messages_it_cannot_store(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(memory, customer=CUSTOMER)
    with pytest.raises(ValidationError, match="RemoveMessage"):
        history.add_messages([RemoveMessage(id="m1")])
    with pytest.raises(ValidationError, match="NUL"):
        history.add_messages([HumanMessage("bad\x00text")])
    assert memory.profiles.find(CUSTOMER) is None  # nothing half-written


def test_clear_ends_the_conversation_keeps_it_and_the_next_message_starts_fresh(
    memory: Memory,
) -> None:
    history = ConversationMemoryChatMessageHistory(memory, customer=CUSTOMER)
    history.add_messages([HumanMessage("First chat about a refund")])
    first = history.conversation_id

    history.clear()

    assert memory.conversations.get(first).status.value == "ended"
    assert [m.text for m in memory.conversations.list_messages(first)] == [
        "First chat about a refund"
    ]
    assert history.messages == []
    history.add_messages([HumanMessage("A new question about shipping")])
    assert history.conversation_id != first
    assert [m.content for m in history.messages] == ["A new question about shipping"]
    # Nothing was deleted: recall still finds the first chat.
    docs = ConversationMemoryRetriever(memory=memory, customer=CUSTOMER).invoke("refund")
    assert docs[0].page_content == "First chat about a refund"


async def test_async_history_clear_and_resume(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(
        AsyncMemory(memory), customer=CUSTOMER, conversation_id="chat-async-1"
    )
    await history.aadd_messages([HumanMessage("Hello"), AIMessage("Hi, how can I help?")])
    assert [m.content for m in await history.aget_messages()] == ["Hello", "Hi, how can I help?"]

    # Another process (a new object) resumes the same conversation by its id.
    again = ConversationMemoryChatMessageHistory(
        memory, customer=CUSTOMER, conversation_id="chat-async-1"
    )
    again.add_messages([HumanMessage("It's about my bill")])
    assert len(await history.aget_messages()) == 3

    await history.aclear()
    assert memory.conversations.get("chat-async-1").status.value == "ended"
    assert await history.aget_messages() == []


def test_a_conversation_ended_elsewhere_is_treated_as_cleared(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(
        memory, customer=CUSTOMER, conversation_id="chat-0004"
    )
    history.add_messages([HumanMessage("Hello")])
    memory.conversations.end("chat-0004")  # e.g. the contact-centre platform closed it

    resumed = ConversationMemoryChatMessageHistory(memory, conversation_id="chat-0004")
    assert resumed.messages == []
    resumed.add_messages([HumanMessage("Are you still there?")])

    assert resumed.conversation_id != "chat-0004"
    new = memory.conversations.get(resumed.conversation_id)
    assert new.profile_id == memory.profiles.get(CUSTOMER).id
    assert [m.text for m in memory.conversations.list_messages("chat-0004")] == ["Hello"]


def test_history_never_touches_another_customers_conversation(seeded: Memory) -> None:
    theirs = seeded.conversations.list(OTHER)[0].id
    intruder = ConversationMemoryChatMessageHistory(
        seeded, customer=CUSTOMER, conversation_id=theirs
    )
    with pytest.raises(ValidationError, match="another customer"):
        _ = intruder.messages
    with pytest.raises(ValidationError, match="another customer"):
        intruder.add_messages([HumanMessage("Show me their order")])
    # No message was added and the two profiles were not merged.
    assert len(seeded.conversations.list_messages(theirs)) == 1
    assert seeded.profiles.get(OTHER).id != seeded.profiles.get(CUSTOMER).id


def test_a_new_conversation_needs_the_customer(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(memory, conversation_id="chat-0005")
    with pytest.raises(ValidationError, match="needs the customer"):
        history.add_messages([HumanMessage("Hello")])


def test_retriever_documents_carry_kind_score_and_provenance(seeded: Memory) -> None:
    seeded.traits.set(CUSTOMER, "tier", "gold", source="crm")
    retriever = ConversationMemoryRetriever(memory=seeded, customer=CUSTOMER)

    docs = retriever.invoke("cracked screen")

    trait, best = docs[0], docs[1]
    assert (trait.page_content, trait.metadata["kind"], trait.metadata["source"]) == (
        "tier: gold",
        "trait",
        "crm",
    )
    assert best.page_content == "Order 4471 arrived with a cracked screen."
    meta = best.metadata
    assert meta["kind"] == "message"
    assert 0.0 <= meta["score"] <= 1.0
    assert meta["channel"] == "sms" and meta["role"] == "customer"
    assert meta["ts"].startswith("2026-05-02T14:00:00")
    assert meta["message_ids"] == [best.id]
    assert meta["profile_id"] == seeded.profiles.get(CUSTOMER).id
    assert meta["tenant"] == "default"
    assert all("9001" not in d.page_content for d in docs)


def test_retriever_options_and_unknown_customers(seeded: Memory) -> None:
    only_messages = ConversationMemoryRetriever(
        memory=seeded,
        customer=CUSTOMER,
        options=RecallOptions(types=frozenset({ItemType.MESSAGE}), limits={ItemType.MESSAGE: 1}),
    )
    assert len(only_messages.invoke("")) == 1
    stranger = ConversationMemoryRetriever(memory=seeded, customer="phone:+12025550100")
    assert stranger.invoke("anything") == []
    brand_b = seeded.tenants.add("brand-b")
    elsewhere = ConversationMemoryRetriever(memory=brand_b, customer=CUSTOMER)
    assert elsewhere.invoke("cracked screen") == []


async def test_async_paths_run_the_engine_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    loop_thread = threading.get_ident()

    docs = await ConversationMemoryRetriever(memory=memory, customer=CUSTOMER).ainvoke(
        "a query never embedded before"
    )
    history = ConversationMemoryChatMessageHistory(memory, customer=CUSTOMER)
    await history.aadd_messages([HumanMessage("A message never embedded before")])
    tools = {t.name: t for t in memory_tools(memory, CUSTOMER)}
    await tools["recall"].ainvoke({"query": "another fresh query"})

    assert docs
    assert len(embedder.threads) == 3
    assert loop_thread not in embedder.threads


def _cited(docs: list[Document]) -> str:
    return "\n".join(f"{d.page_content} [{d.metadata['citation']}]" for d in docs)


def test_chain_answers_from_the_customer_memory_and_cited_knowledge(knowledge: Memory) -> None:
    prompts: list[str] = []

    def capture(value: Any) -> Any:
        prompts.append(value.to_string())
        return value

    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "Customer:\n{memory}\n\nPolicies (cite them):\n{knowledge}"),
            ("human", "{input}"),
        ]
    )
    chain = (
        RunnablePassthrough.assign(
            memory=itemgetter("input")
            | ConversationMemoryRetriever(memory=knowledge, customer=CUSTOMER)
            | _format,
            knowledge=itemgetter("input")
            | KnowledgeRetriever(memory=knowledge, knowledge_bases="help", limit=2)
            | _cited,
        )
        | prompt
        | capture
        | GenericFakeChatModel(messages=iter(["A replacement is free; refunds take 5 days."]))
    )

    reply = chain.invoke({"input": "My screen arrived cracked, do I get a refund?"})

    assert reply.content == "A replacement is free; refunds take 5 days."
    (sent,) = prompts
    assert "Order 4471 arrived with a cracked screen." in sent
    assert (
        "A damaged item is replaced free of charge; keep the packaging for the courier. "
        "[Help center › Returns and refunds › Damaged items (help/returns, chunk 1)]"
    ) in sent
    assert "order 9001" not in sent and BRAND_B_POLICY not in sent and STAFF_NOTE not in sent


def test_knowledge_documents_carry_score_and_citation(knowledge: Memory) -> None:
    docs = KnowledgeRetriever(memory=knowledge, source_tags=["policy"]).invoke(
        "change delivery address"
    )

    top = docs[0]
    assert top.page_content.startswith("You can change the delivery address until")
    source = knowledge.knowledge.sources.list("help")[0]
    assert top.metadata == {
        "id": top.id,
        "kind": "knowledge",
        "score": top.metadata["score"],
        "tenant": "default",
        "citation": "Help center › Delivery › Delivery address (help/delivery, chunk 1)",
        "source_title": "Help center",
        "uri": "help/delivery",
        "page_title": "Delivery",
        "heading_path": ["Delivery", "Delivery address"],
        "position": 0,
        "source_id": source.id,
        "kb_id": source.kb_id,
    }
    assert 0.0 < top.metadata["score"] <= 1.0
    assert [d.metadata["score"] for d in docs] == sorted(
        (d.metadata["score"] for d in docs), reverse=True
    )
    assert len(docs) == 4  # the default top-k
    assert all(d.metadata["source_id"] == source.id for d in docs)


def test_knowledge_retriever_filters_and_stays_in_its_tenant(knowledge: Memory) -> None:
    question = "refunds for cracked screens"
    source = knowledge.knowledge.sources.list("help")[0]

    def texts(memory: Memory = knowledge, **kw: Any) -> list[str]:
        return [d.page_content for d in KnowledgeRetriever(memory=memory, **kw).invoke(question)]

    assert texts(knowledge_bases="staff") == [STAFF_NOTE]
    assert texts(knowledge_bases=("staff", "help"), limit=10) == texts(limit=10)
    assert STAFF_NOTE not in texts(sources=[source.id], limit=10)
    assert texts(source_tags=["internal"]) == [STAFF_NOTE]
    # LangChain's own tags (tracing) stay what they are.
    assert KnowledgeRetriever(memory=knowledge, tags=["kb-trace"]).tags == ["kb-trace"]
    assert len(texts(limit=1)) == 1
    assert all(
        d.metadata["score"] >= 0.4
        for d in KnowledgeRetriever(memory=knowledge, min_score=0.4).invoke(question)
    )
    assert KnowledgeRetriever(memory=knowledge).invoke("") == []
    # Another tenant's knowledge never shows up, and that tenant sees only its own.
    assert BRAND_B_POLICY not in texts(limit=50)
    assert BRAND_B_POLICY not in texts(knowledge_bases="help", limit=50)
    brand_b = knowledge.tenant(BRAND_B)
    assert texts(brand_b, limit=50) == [BRAND_B_POLICY]
    with pytest.raises(NotFoundError, match="knowledge base 'staff'"):
        texts(brand_b, knowledge_bases="staff")
    with pytest.raises(PydanticValidationError):
        KnowledgeRetriever(memory=knowledge, min_score=2.0)
    # One vocabulary with the agent tools: the knowledge bases are knowledge_bases.
    with pytest.raises(PydanticValidationError, match="kb is now knowledge_bases"):
        KnowledgeRetriever(memory=knowledge, kb="help")


async def test_knowledge_retriever_async_runs_the_engine_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    retriever = KnowledgeRetriever(memory=AsyncMemory(memory), knowledge_bases="help", limit=1)

    docs = await retriever.ainvoke("how long do refunds take")

    assert [d.metadata["citation"] for d in docs] == [
        "Help center › Returns and refunds › Refunds (help/returns, chunk 2)"
    ]
    assert len(embedder.threads) == 1 and threading.get_ident() not in embedder.threads


def test_history_messages_are_langchain_messages(memory: Memory) -> None:
    history = ConversationMemoryChatMessageHistory(memory, customer=CUSTOMER)
    history.add_user_message("Hi")
    history.add_ai_message("Hello!")
    messages: list[BaseMessage] = history.messages
    assert [(m.type, m.content) for m in messages] == [("human", "Hi"), ("ai", "Hello!")]
    assert str(history) == "Human: Hi\nAI: Hello!"
