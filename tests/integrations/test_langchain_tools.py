"""The LangChain agent tools: translations of the memory_core.tools specs, bound to
the customer being served, called the way an agent calls them (tool calls in,
ToolMessages out)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="needs the langchain extra")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from convmem_integrations.langchain import memory_tools, spec_tool
from convmem_integrations.langchain.tools import CUSTOMER_FIELDS, TOOL_NAMES
from memory_core import AsyncMemory
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from memory_core.tools import TOOLS, RecallOutput, RememberOutput, ToolSpec, tool_spec
from tests.integrations.conftest import (
    BRAND_B,
    BRAND_B_POLICY,
    CUSTOMER,
    OTHER,
    ThreadRecordingEmbedder,
)


def _call(tool: BaseTool, args: dict[str, Any], call_id: str = "call_1") -> ToolMessage:
    """Invoke a tool as an agent does, with a model's tool call."""
    message = tool.invoke({"name": tool.name, "args": args, "id": call_id, "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


async def _acall(tool: BaseTool, args: dict[str, Any], call_id: str = "call_1") -> ToolMessage:
    call = {"name": tool.name, "args": args, "id": call_id, "type": "tool_call"}
    message = await tool.ainvoke(call)
    assert isinstance(message, ToolMessage)
    return message


def _tools(
    memory: Memory | AsyncMemory, customer: str = CUSTOMER, **kw: Any
) -> dict[str, BaseTool]:
    return {t.name: t for t in memory_tools(memory, customer, **kw)}


def test_the_tools_are_the_specs_minus_the_bound_customer(memory: Memory) -> None:
    tools = _tools(memory)
    assert list(tools) == [n for n in TOOL_NAMES if n in {s.name for s in TOOLS}]
    assert set(tools) == {"recall", "search_knowledge", "remember"}
    for name, tool in tools.items():
        spec = tool_spec(name)
        schema = spec.input_model.model_json_schema()
        bound = CUSTOMER_FIELDS & set(schema["properties"])
        # Same description and same arguments (types, bounds, descriptions) as the
        # MCP tool, minus the fields that name the customer: they cannot drift.
        assert tool.description == spec.description
        assert tool.args == {k: v for k, v in schema["properties"].items() if k not in bound}
        sent = convert_to_openai_tool(tool)["function"]
        assert sent["description"] == spec.description
        required = set(sent["parameters"].get("required", []))
        assert required == set(schema.get("required", [])) - bound
        assert not CUSTOMER_FIELDS & set(sent["parameters"]["properties"])
    assert {"customer"} <= set(tool_spec("recall").input_model.model_fields)
    assert {"customer", "link_identifiers"} <= set(tool_spec("remember").input_model.model_fields)
    # The model never names the customer, nor links another customer's identifier.
    assert not {"customer", "link_identifiers"} & set(tools["remember"].args)


class _GreetInput(BaseModel):
    customer: str = Field(description="The customer.")
    greeting: str = Field(default="Hello", description="How to greet them.")


class _GreetOutput(BaseModel):
    line: str


def _greet(memory: Memory, request: _GreetInput) -> _GreetOutput:
    profile = memory.profiles.get(request.customer)
    return _GreetOutput(line=f"{request.greeting}, {profile.id} of {memory.name}")


def test_spec_translation_is_generic_new_fields_appear_and_the_customer_is_injected(
    seeded: Memory,
) -> None:
    spec = ToolSpec(
        name="greet",
        title="Greet",
        description="Greet the customer.",
        input_model=_GreetInput,
        output_model=_GreetOutput,
        run=_greet,
        read_only=True,
        destructive=False,
        idempotent=True,
    )
    # Unbound, the tool is the spec as is; bound (in the adapter's sense), the
    # customer field disappears and is filled in on every call.
    assert set(spec_tool(spec, seeded).args) == {"customer", "greeting"}
    bound = spec_tool(spec, seeded, bound={"customer": CUSTOMER})
    assert set(bound.args) == {"greeting"}
    reply = _call(bound, {"greeting": "Hi"})
    assert reply.artifact == _GreetOutput(line=f"Hi, {seeded.profiles.get(CUSTOMER).id} of default")
    assert json.loads(str(reply.content)) == reply.artifact.model_dump()
    # The model cannot name the customer itself.
    refused = _call(bound, {"greeting": "Hi", "customer": OTHER})
    assert refused.status == "error"
    assert refused.text == "invalid arguments: customer: unknown argument"
    with pytest.raises(ValueError, match="cannot be bound"):
        spec_tool(spec, seeded, CUSTOMER)
    with pytest.raises(ValueError, match="no field nickname"):
        spec_tool(spec, seeded, bound={"nickname": "x"})


def test_remember_then_recall_for_the_bound_customer_only(seeded: Memory) -> None:
    tools = _tools(seeded, channel="chat")
    assert "channel" not in tools["remember"].args  # bound too: the agent's channel

    saved = _call(
        tools["remember"],
        {
            "messages": [{"role": "customer", "text": "My dog Rex barks at couriers."}],
            "observations": [{"text": "Has a dog that barks at couriers", "kind": "context"}],
        },
    )
    assert saved.status == "success"
    out = saved.artifact
    assert isinstance(out, RememberOutput)
    assert out.profile_id == seeded.profiles.get(CUSTOMER).id
    assert (out.channel, out.added, len(out.observations)) == ("chat", 1, 1)
    assert json.loads(str(saved.content))["conversation_id"] == out.conversation_id
    assert "summary" not in json.loads(str(saved.content))  # None fields are left out

    recalled = _call(tools["recall"], {"query": "dog"}, "call_2")
    assert isinstance(recalled.artifact, RecallOutput)
    assert "Rex barks at couriers" in recalled.artifact.context
    assert "recalled DATA about the customer" in recalled.artifact.context
    assert recalled.content == recalled.artifact.context  # the model reads the context
    # The other customer's tools never see it, and the first never saw theirs.
    theirs = _call(_tools(seeded, OTHER)["recall"], {"query": "dog Rex couriers"}).artifact
    assert theirs.profile_id == seeded.profiles.get(OTHER).id
    assert all("Rex" not in item.text for item in theirs.items)
    assert "Rex" not in theirs.context
    # (the words, not the digits alone: a random profile id or nonce may hold "9001")
    assert all("9001" not in item.text for item in recalled.artifact.items)
    assert "order 9001" not in str(recalled.content)


def test_a_conversation_of_another_customer_is_refused_and_nothing_is_merged(
    seeded: Memory,
) -> None:
    theirs = "their-open-chat"
    seeded.ingest(
        {
            "channel": "chat",
            "id": theirs,
            "customer": [OTHER],
            "ended": False,
            "messages": [{"role": "customer", "text": "Is my refund for order 9001 done?"}],
        }
    )
    before = seeded.conversations.get(theirs)
    tools = _tools(seeded, channel="chat")
    attempts: list[tuple[BaseTool, dict[str, Any]]] = [
        (
            tools["remember"],
            {"messages": [{"role": "customer", "text": "hi"}], "conversation_id": theirs},
        ),
        (tools["remember"], {"observations": [{"text": "Likes cats"}], "conversation_id": theirs}),
        (tools["remember"], {"conversation_id": theirs, "end_conversation": True}),
        (tools["recall"], {"conversation_id": theirs}),
    ]
    for tool, args in attempts:
        reply = _call(tool, args)
        assert reply.status == "error", args
        assert "belongs to another customer" in reply.text
    assert len(seeded.conversations.list_messages(theirs)) == 1
    assert seeded.conversations.get(theirs) == before
    assert seeded.profiles.get(OTHER).id != seeded.profiles.get(CUSTOMER).id
    assert seeded.observations.list(OTHER) == []


def test_search_knowledge_is_cited_and_stays_in_the_tenant(knowledge: Memory) -> None:
    search = _tools(knowledge)["search_knowledge"]
    reply = _call(search, {"query": "how long do refunds take", "limit": 2})
    passages = reply.artifact.passages
    assert passages[0].text.startswith("Refunds reach your card within 5 business days")
    assert passages[0].cite_as == (
        "Help center › Returns and refunds › Refunds (help/returns, chunk 2)"
    )
    assert passages[0].citation.uri == "help/returns"
    # What the model reads: each passage with its citation on the next line.
    assert f"[1] {passages[0].text}\nSource: {passages[0].cite_as}" in str(reply.content)
    assert BRAND_B_POLICY not in str(reply.content)
    # Brand B's agent searches brand B's knowledge only.
    brand_b = _tools(knowledge.tenant(BRAND_B))["search_knowledge"]
    theirs = _call(brand_b, {"query": "refunds 5 business days card", "limit": 10})
    assert [p.text for p in theirs.artifact.passages] == [BRAND_B_POLICY]
    retired = _call(search, {"query": "refunds", "top_k": 2})
    assert retired.status == "error"
    assert retired.text == "invalid arguments: top_k: unknown argument"


def test_recall_with_knowledge_mixes_in_cited_passages(knowledge: Memory) -> None:
    recall = _tools(knowledge)["recall"]
    reply = _call(recall, {"query": "refund for a damaged item", "include_knowledge": True})
    out = reply.artifact
    cited = [i for i in out.items if i.type.value == "knowledge"]
    assert cited and all(i.citation is not None for i in cited)
    assert any(i.text.startswith("A damaged item is replaced") for i in cited)
    assert BRAND_B_POLICY not in out.context


def test_engine_errors_reach_the_model_as_tool_errors(memory: Memory) -> None:
    tools = _tools(memory)
    unknown = _call(tools["recall"], {"query": "anything"})
    assert unknown.status == "error"
    assert unknown.text == "no profile with identifier phone:+16175550142 in tenant 'default'"
    no_channel = _call(tools["remember"], {"messages": [{"role": "customer", "text": "Hi"}]})
    assert no_channel.status == "error" and "channel is required" in no_channel.text
    bad = _call(tools["remember"], {"messages": [{"role": "customer", "text": ""}]})
    assert bad.status == "error"
    assert bad.text.startswith("invalid arguments: messages.0.text:")
    assert memory.profiles.find(CUSTOMER) is None  # nothing half-written

    raising = _tools(memory, handle_tool_error=False)["recall"]
    with pytest.raises(ToolException, match="no profile with identifier") as info:
        raising.invoke({"query": "anything"})
    assert isinstance(info.value.__cause__, NotFoundError)


async def test_async_tools_run_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    loop_thread = threading.get_ident()
    tools = _tools(AsyncMemory(memory), channel="chat")

    saved = await _acall(
        tools["remember"], {"messages": [{"role": "customer", "text": "A brand new message"}]}
    )
    found = await _acall(tools["search_knowledge"], {"query": "a never seen question"})
    recalled = await _acall(tools["recall"], {"query": "brand new message"})

    assert saved.status == found.status == recalled.status == "success"
    assert "A brand new message" in recalled.artifact.context
    assert len(embedder.threads) == 3
    assert loop_thread not in embedder.threads


def test_a_tool_calling_model_drives_the_tools(knowledge: Memory) -> None:
    """A scripted model calls the tools; their messages go back to it, errors included."""
    tools = _tools(knowledge, channel="chat")
    script = [
        AIMessage(
            content="",
            tool_calls=[
                {
                    "name": "search_knowledge",
                    "args": {"query": "change delivery address"},
                    "id": "a",
                },
                {"name": "recall", "args": {"query": "delivery", "max_messages": 99}, "id": "b"},
            ],
        ),
        AIMessage("You can change it until the parcel ships."),
    ]
    model = GenericFakeChatModel(messages=iter(script))
    history: list[Any] = [HumanMessage("Can I still change my delivery address?")]
    decision = model.invoke(history)
    assert isinstance(decision, AIMessage)
    history.append(decision)
    for call in decision.tool_calls:
        history.append(tools[call["name"]].invoke(call))
    answer = model.invoke(history)

    found, refused = history[2], history[3]
    assert "You can change the delivery address until the parcel ships" in found.text
    assert refused.status == "error"
    assert refused.text.startswith("invalid arguments: max_messages:")
    assert answer.text == "You can change it until the parcel ships."


def test_tools_bound_by_profile_id_reach_the_same_customer(seeded: Memory) -> None:
    profile_id = seeded.profiles.get(CUSTOMER).id
    tools = _tools(seeded, profile_id)
    saved = _call(
        tools["remember"],
        {"channel": "email", "messages": [{"role": "customer", "text": "Invoice copy, please."}]},
    )
    assert saved.artifact.profile_id == profile_id
    recalled = _call(tools["recall"], {"query": "invoice copy"}).artifact
    assert recalled.profile_id == profile_id
    assert recalled.items[0].text == "Invoice copy, please."
    with pytest.raises(ValueError, match="no customer-bound tool 'forget'"):
        memory_tools(seeded, profile_id, names=["forget"])
