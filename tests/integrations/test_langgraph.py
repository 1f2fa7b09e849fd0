"""LangChain v1 agents and LangGraph on Conversation Memory: the agent middleware
in a real ``create_agent`` driven by a scripted tool-calling chat model, and the
``BaseStore`` in real graphs - all on a real SQLite memory with the hash embedder."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import pytest

pytest.importorskip("langchain.agents", reason="needs the langchain extra")
pytest.importorskip("langgraph.store.base", reason="needs the langchain extra")

from langchain.agents import create_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore, SearchItem
from pydantic import Field

from convmem_integrations.langchain import (
    ConversationMemoryMiddleware,
    ConversationMemoryStore,
    memory_tools,
)
from memory_core import AsyncMemory
from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import ObservationStatus, Role
from tests.integrations.conftest import (
    BRAND_B,
    CUSTOMER,
    OTHER,
    ThreadRecordingEmbedder,
)

Step = AIMessage | Callable[[list[BaseMessage]], AIMessage]


class ScriptedChatModel(BaseChatModel):
    """A tool-calling chat model that plays a script: each call answers with the
    next step (an ``AIMessage``, or a function of the messages sent that makes
    one), and records what it was sent and which tools it was bound to."""

    script: list[Any]
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    tool_names: list[list[str]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        if not self.script:
            raise AssertionError("the model was called more often than scripted")
        step = self.script.pop(0)
        message = step(list(messages)) if callable(step) else step
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        schemas = [convert_to_openai_tool(t) for t in tools]
        self.tool_names.append([s["function"]["name"] for s in schemas])
        return self.bind(tools=schemas, **kwargs)


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def _texts(memory: Memory, conversation_id: str) -> list[tuple[Role, str]]:
    return [(m.role, m.text) for m in memory.conversations.list_messages(conversation_id)]


def _system(messages: list[BaseMessage]) -> str:
    assert isinstance(messages[0], SystemMessage)
    return messages[0].text


# -- the middleware in a real agent ----------------------------------------------------


def test_agent_sees_recalled_context_calls_the_tools_and_its_turn_is_recorded(
    knowledge: Memory,
) -> None:
    model = ScriptedChatModel(
        script=[
            AIMessage(
                "",
                tool_calls=[
                    _call("recall", {"query": "how to reach them"}, "c1"),
                    _call("search_knowledge", {"query": "damaged item replaced"}, "c2"),
                ],
            ),
            AIMessage(
                "",
                tool_calls=[
                    _call(
                        "remember",
                        {
                            "observations": [
                                {
                                    "text": "Wants the replacement sent to the office",
                                    "kind": "preference",
                                }
                            ]
                        },
                        "c3",
                    )
                ],
            ),
            AIMessage("A damaged item is replaced free of charge; I'll text you the tracking."),
        ]
    )
    agent = create_agent(
        model,
        tools=memory_tools(knowledge, CUSTOMER, channel="chat"),
        system_prompt="You are Acme's support agent.",
        middleware=[ConversationMemoryMiddleware(knowledge, CUSTOMER)],
        checkpointer=InMemorySaver(),
    )
    question = "The replacement screen is cracked too. Please send the next one to my office."
    result = agent.invoke(
        {"messages": [HumanMessage(question)]}, {"configurable": {"thread_id": "chat-1"}}
    )

    # Every model call of the run saw the instructions and then the recalled context.
    assert model.tool_names[0] == ["recall", "search_knowledge", "remember"]
    assert len(model.seen) == 3
    for sent in model.seen:
        system = _system(sent)
        assert system.startswith("You are Acme's support agent.\n\n")
        assert "recalled DATA about the customer" in system
        assert "Please text me updates, I can't take calls at work." in system
        assert "order 9001" not in system  # nothing of the other customer
        assert question not in system  # the turn in progress is in the chat, not repeated
        assert sent[1] == HumanMessage(question, id=sent[1].id)

    # The tools ran against the memory for this customer.
    tool_messages = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_messages] == ["recall", "search_knowledge", "remember"]
    assert all(m.status == "success" for m in tool_messages)
    assert "text me updates" in tool_messages[0].text
    assert "replaced free of charge" in tool_messages[1].text
    observations = [o.text for o in knowledge.observations.list(CUSTOMER)]
    assert "Wants the replacement sent to the office" in observations

    # The turn is the thread's conversation: the customer's message and the reply only.
    assert _texts(knowledge, "chat-1") == [
        (Role.CUSTOMER, question),
        (Role.AI_AGENT, "A damaged item is replaced free of charge; I'll text you the tracking."),
    ]
    conversation = knowledge.conversations.get("chat-1")
    assert conversation.profile_id == knowledge.profiles.get(CUSTOMER).id

    # The next turn of the thread continues the conversation and recalls the new observation.
    model.script.append(AIMessage("Noted: the office it is."))
    agent.invoke(
        {"messages": [HumanMessage("Thanks! Office delivery, right?")]},
        {"configurable": {"thread_id": "chat-1"}},
    )
    assert "Wants the replacement sent to the office" in _system(model.seen[-1])
    assert [text for _, text in _texts(knowledge, "chat-1")] == [
        question,
        "A damaged item is replaced free of charge; I'll text you the tracking.",
        "Thanks! Office delivery, right?",
        "Noted: the office it is.",
    ]


def test_one_agent_serves_each_customer_from_the_run_context(seeded: Memory) -> None:
    model = ScriptedChatModel(script=[AIMessage("Hello!"), AIMessage("Hi there!")])
    agent = create_agent(
        model, middleware=[ConversationMemoryMiddleware(seeded)], checkpointer=InMemorySaver()
    )
    agent.invoke(
        {"messages": [HumanMessage("Any news on my order?")]},
        {"configurable": {"thread_id": "t-ann"}},
        context={"customer": CUSTOMER},
    )
    agent.invoke(
        {"messages": [HumanMessage("Where is my refund?")]},
        {"configurable": {"thread_id": "t-bob"}},
        context={"customer": OTHER},
    )
    ann, bob = _system(model.seen[0]), _system(model.seen[1])
    assert "cracked screen" in ann and "order 9001" not in ann
    assert "9001" in bob and "I can't take calls at work" not in bob
    assert seeded.conversations.get("t-ann").profile_id == seeded.profiles.get(CUSTOMER).id
    assert seeded.conversations.get("t-bob").profile_id == seeded.profiles.get(OTHER).id

    # A thread of one customer is never written for another.
    with pytest.raises(ValidationError, match="belongs to another customer"):
        agent.invoke(
            {"messages": [HumanMessage("Hi, it's me")]},
            {"configurable": {"thread_id": "t-bob"}},
            context={"customer": CUSTOMER},
        )
    assert [text for _, text in _texts(seeded, "t-bob")] == ["Where is my refund?", "Hi there!"]


@dataclass
class SupportContext:
    customer: str


def test_context_schema_object_and_a_new_customer(memory: Memory) -> None:
    """A typed run context names the customer; a first contact gets no context
    and becomes a profile with the conversation."""
    model = ScriptedChatModel(script=[AIMessage("Welcome!")])
    agent = create_agent(
        model,
        system_prompt="Be brief.",
        middleware=[ConversationMemoryMiddleware(memory, channel="whatsapp")],
        context_schema=SupportContext,
    )
    agent.invoke(
        {"messages": [HumanMessage("Hi, first time here")]},
        context=SupportContext(customer="whatsapp:+447700900123"),
    )
    assert "customer_memory" not in _system(model.seen[0])  # nothing known yet: no context
    profile = memory.profiles.get("whatsapp:+447700900123")
    (conversation,) = memory.conversations.list(profile.id)
    assert conversation.channel.value == "whatsapp"
    assert [text for _, text in _texts(memory, conversation.id)] == [
        "Hi, first time here",
        "Welcome!",
    ]


def test_a_run_without_a_customer_is_refused(memory: Memory) -> None:
    agent = create_agent(
        ScriptedChatModel(script=[AIMessage("-")]),
        middleware=[ConversationMemoryMiddleware(memory)],
    )
    with pytest.raises(ValidationError, match="no customer for this run"):
        agent.invoke({"messages": [HumanMessage("Hi")]})
    with pytest.raises(ValidationError, match="unknown channel"):
        ConversationMemoryMiddleware(memory, CUSTOMER, channel="fax")


def test_history_sent_again_without_a_checkpointer_is_stored_once(seeded: Memory) -> None:
    """A client that re-sends the whole chat each time (no checkpointer): the
    LangChain message ids make each message stored once."""
    model = ScriptedChatModel(script=[AIMessage("First answer", id="ai-1"), AIMessage("Second")])
    agent = create_agent(model, middleware=[ConversationMemoryMiddleware(seeded, CUSTOMER)])
    config: Any = {"configurable": {"thread_id": "web-7"}}
    first = agent.invoke({"messages": [HumanMessage("Question one", id="hu-1")]}, config)
    history = [*first["messages"], HumanMessage("Question two", id="hu-2")]
    agent.invoke({"messages": history}, config)
    assert [text for _, text in _texts(seeded, "web-7")] == [
        "Question one",
        "First answer",
        "Question two",
        "Second",
    ]


async def test_async_agent_runs_the_engine_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    model = ScriptedChatModel(
        script=[
            AIMessage("", tool_calls=[_call("recall", {"query": "cracked screen"}, "c1")]),
            AIMessage("On it."),
        ]
    )
    agent = create_agent(
        model,
        tools=memory_tools(AsyncMemory(memory), CUSTOMER),
        middleware=[ConversationMemoryMiddleware(AsyncMemory(memory), CUSTOMER)],
        checkpointer=InMemorySaver(),
    )
    result = await agent.ainvoke(
        {"messages": [HumanMessage("Is my replacement coming?")]},
        {"configurable": {"thread_id": "async-1"}},
    )
    assert result["messages"][-1].text == "On it."
    assert "cracked screen" in _system(model.seen[0])
    assert [text for _, text in _texts(memory, "async-1")] == [
        "Is my replacement coming?",
        "On it.",
    ]
    assert embedder.threads and threading.get_ident() not in embedder.threads


# -- the store ----------------------------------------------------------------------


def test_store_search_recalls_what_put_stored(seeded: Memory) -> None:
    store = ConversationMemoryStore(seeded)
    assert isinstance(store, BaseStore)
    ns = ("memories", CUSTOMER)
    store.put(ns, "preferred_channel", {"text": "Prefers SMS over calls", "value": "sms"})
    store.put(ns, "delivery", {"content": "Deliver to the office", "kind": "preference"})

    items = store.search(ns, query="how do they want to be contacted")
    assert all(isinstance(i, SearchItem) and i.namespace == ns for i in items)
    assert all(i.score is not None and 0.0 <= i.score <= 1.0 for i in items)
    by_key = {i.key: i for i in items}
    stored = by_key["preferred_channel"]
    assert stored.value["text"] == "Prefers SMS over calls"
    assert stored.value["type"] == "observation"
    assert stored.value["value"] == "sms" and stored.value["status"] == "active"
    assert by_key["delivery"].value["kind"] == "preference"
    assert {i.value["type"] for i in items} >= {"observation", "message"}
    assert not any("9001" in i.value["text"] for i in items)  # only this customer

    # filters and paging
    observations = store.search(ns, query="contact", filter={"type": "observation"})
    assert {i.key for i in observations} == {"preferred_channel", "delivery"}
    assert (
        store.search(
            ns, query="contact", filter={"kind": {"$ne": "preference"}, "type": "observation"}
        )[0].key
        == "preferred_channel"
    )
    assert len(store.search(ns, query="contact", limit=1, offset=1)) == 1
    assert [i.key for i in items[1:3]] == [
        i.key for i in store.search(ns, query="how do they want to be contacted", limit=2, offset=1)
    ]

    got = store.get(ns, "preferred_channel")
    assert got is not None and got.key == "preferred_channel"
    assert got.value["text"] == "Prefers SMS over calls"
    assert store.get(ns, "no_such_slot") is None


def test_store_put_supersedes_delete_retracts(seeded: Memory) -> None:
    store = ConversationMemoryStore(seeded)
    ns = ("memories", CUSTOMER)
    store.put(ns, "preferred_channel", {"text": "Prefers SMS", "value": "sms"})
    first = store.get(ns, "preferred_channel")
    store.put(ns, "preferred_channel", {"text": "Prefers e-mail now", "value": "email"})
    now = store.get(ns, "preferred_channel")
    assert first is not None and now is not None
    assert now.value["text"] == "Prefers e-mail now"
    (active,) = [
        o for o in seeded.observations.list(CUSTOMER) if o.trait_key == "preferred_channel"
    ]
    history = seeded.observations.history(active.id)
    assert [o.text for o in history] == ["Prefers SMS", "Prefers e-mail now"]
    assert history[0].status is ObservationStatus.SUPERSEDED

    # An observation id as the key corrects that observation.
    plain = seeded.observations.add(CUSTOMER, "Lives in Boston", "fact")
    store.put(ns, plain.id, {"text": "Lives in Denver"})
    assert store.get(ns, plain.id) is None
    texts = [o.text for o in seeded.observations.list(CUSTOMER)]
    assert "Lives in Denver" in texts and "Lives in Boston" not in texts
    assert seeded.observations.get(plain.id).status is ObservationStatus.DELETED

    # delete retracts: gone from get and search, kept in history
    store.delete(ns, "preferred_channel")
    assert store.get(ns, "preferred_channel") is None
    found = store.search(ns, query="e-mail", filter={"type": "observation"})
    assert "preferred_channel" not in {i.key for i in found}
    assert seeded.observations.get(active.id).status is ObservationStatus.DELETED
    store.delete(ns, "never_put")  # deleting what is not there is fine


def test_store_namespaces_and_bad_input(seeded: Memory) -> None:
    store = ConversationMemoryStore(seeded)
    # An e-mail has periods, which LangGraph forbids in labels: namespace() escapes them.
    ns = store.namespace(OTHER)
    assert ns == ("memories", "email:someone%2Eelse@example%2Ecom")
    store.put(ns, "refund", {"text": "Wants the refund as store credit"})
    assert seeded.observations.list(OTHER)[0].text == "Wants the refund as store credit"
    # A profile id works as well, and a new identifier is a new customer.
    profile_id = seeded.profiles.get(CUSTOMER).id
    store.put(("memories", profile_id), "tier_note", {"text": "Gold customer since 2020"})
    store.put(("memories", "phone:+16175550199"), "language", {"text": "Speaks Spanish"})
    assert seeded.profiles.get("phone:+16175550199")

    listed = store.list_namespaces()
    assert len(listed) == 3 and all(n[0] == "memories" for n in listed)
    assert (("memories", profile_id)) in listed
    assert store.list_namespaces(prefix=("memories", profile_id)) == [("memories", profile_id)]
    assert store.list_namespaces(max_depth=1) == [("memories",)]
    assert store.list_namespaces(prefix=("other",)) == []
    assert len(store.list_namespaces(limit=2)) == 2

    assert store.search(("memories", "phone:+15550000000"), query="x") == []
    assert store.get(("memories", "phone:+15550000000"), "language") is None
    with pytest.raises(ValidationError, match="does not name a customer"):
        store.search(("memories",), query="x")
    with pytest.raises(ValidationError, match="does not name a customer"):
        store.put(("notes", CUSTOMER), "k", {"text": "x"})
    with pytest.raises(ValidationError, match="unknown value field"):
        store.put(("memories", CUSTOMER), "k", {"text": "x", "colour": "red"})
    with pytest.raises(ValidationError, match="needs its text"):
        store.put(("memories", CUSTOMER), "k", {"kind": "fact"})
    with pytest.raises(ValidationError, match="unknown kind"):
        store.put(("memories", CUSTOMER), "k", {"text": "x", "kind": "Memory"})
    with pytest.raises(NotFoundError):
        store.put(("memories", "prf_missing"), "k", {"text": "x"})
    with pytest.raises(ValidationError, match="not about this customer"):
        other = seeded.observations.list(OTHER)[0]
        store.put(("memories", CUSTOMER), other.id, {"text": "x"})


def test_store_is_the_handles_tenant(seeded: Memory) -> None:
    seeded.tenants.add(BRAND_B)
    ns = ("memories", CUSTOMER)
    ConversationMemoryStore(seeded).put(ns, "preferred_channel", {"text": "Prefers SMS"})
    brand_b = ConversationMemoryStore(seeded.tenant(BRAND_B))
    assert brand_b.search(ns, query="SMS") == []
    assert brand_b.get(ns, "preferred_channel") is None
    assert brand_b.list_namespaces() == []


async def test_store_async_methods_run_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    store = ConversationMemoryStore(AsyncMemory(memory))
    ns = ("memories", CUSTOMER)
    await store.aput(ns, "preferred_channel", {"text": "Prefers SMS", "value": "sms"})
    found = await store.asearch(ns, query="SMS", filter={"type": "observation"})
    assert [i.key for i in found] == ["preferred_channel"]
    got = await store.aget(ns, "preferred_channel")
    assert got is not None and got.value["value"] == "sms"
    await store.adelete(ns, "preferred_channel")
    assert await store.aget(ns, "preferred_channel") is None
    assert await store.alist_namespaces() == [("memories", memory.profiles.get(CUSTOMER).id)]
    assert embedder.threads and threading.get_ident() not in embedder.threads


class NoteState(TypedDict):
    customer: str
    note: str
    found: list[str]


def _remember(state: NoteState, runtime: Runtime[Any]) -> dict[str, Any]:
    assert runtime.store is not None
    runtime.store.put(("memories", state["customer"]), "delivery", {"text": state["note"]})
    return {}


def _recall(state: NoteState, runtime: Runtime[Any]) -> dict[str, Any]:
    assert runtime.store is not None
    items = runtime.store.search(("memories", state["customer"]), query="delivery", limit=3)
    return {"found": [i.value["text"] for i in items]}


def _graph(store: BaseStore) -> Any:
    graph = StateGraph(NoteState)
    graph.add_node("remember", _remember)
    graph.add_node("recall", _recall)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "recall")
    graph.add_edge("recall", END)
    return graph.compile(store=store)


async def test_a_langgraph_graph_uses_the_store(seeded: Memory) -> None:
    app = _graph(ConversationMemoryStore(seeded))
    state = {"customer": CUSTOMER, "note": "Deliver parcels to the office", "found": []}
    out = app.invoke(state)
    assert out["found"][0] == "Deliver parcels to the office"
    # the same graph, async (LangGraph batches the store calls)
    out = await app.ainvoke({**state, "note": "Deliver parcels to the back door"})
    assert out["found"][0] == "Deliver parcels to the back door"
    assert [o.text for o in seeded.observations.list(CUSTOMER)] == [
        "Deliver parcels to the back door"
    ]
