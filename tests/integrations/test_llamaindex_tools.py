"""The LlamaIndex tool spec: the memory_core.tools specs as FunctionTools bound to
the customer, driven end to end by llama-index agents with a scripted
function-calling LLM, on a real SQLite memory with the hash embedder."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")

from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM, MockLLM
from llama_index.core.tools import FunctionTool
from llama_index.core.tools.tool_spec.base import BaseToolSpec

from convmem_integrations._tools import CUSTOMER_FIELDS
from convmem_integrations.llamaindex import ConversationMemoryToolSpec
from memory_core import AsyncMemory
from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.tools import RecallOutput, tool_spec
from tests.integrations.conftest import CUSTOMER, OTHER, ThreadRecordingEmbedder

# llama-index-workflows builds an agent with inspect.getmembers() over it (a
# pydantic model), which reads attributes pydantic 2.x deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore::pydantic.warnings.PydanticDeprecationWarning:inspect"
)


def _tools(memory: Memory | AsyncMemory, **kw: Any) -> dict[str, FunctionTool]:
    spec = ConversationMemoryToolSpec(memory, CUSTOMER, **kw)
    return {t.metadata.name: t for t in spec.to_tool_list() if t.metadata.name}


def _calls(*calls: tuple[str, dict[str, Any]]) -> ChatMessage:
    return ChatMessage(
        role=MessageRole.ASSISTANT,
        blocks=[
            ToolCallBlock(tool_call_id=f"call_{n}", tool_name=name, tool_kwargs=args)
            for n, (name, args) in enumerate(calls)
        ],
    )


def _scripted(*steps: ChatMessage, sent: list[list[ChatMessage]]) -> MockFunctionCallingLLM:
    """llama-index's mock function-calling LLM playing ``steps`` in turn (tool
    calls or a final answer); ``sent`` collects the messages of each call."""
    pending = iter(steps)

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        sent.append(list(messages))
        return next(pending)

    return MockFunctionCallingLLM(response_generator=respond)


def test_the_tools_are_the_specs_minus_the_bound_customer(memory: Memory) -> None:
    spec = ConversationMemoryToolSpec(memory, CUSTOMER, channel="chat")
    assert isinstance(spec, BaseToolSpec)
    tools = {t.metadata.name: t for t in spec.to_tool_list()}
    assert list(tools) == ["recall", "search_knowledge", "remember"]
    for name, tool in tools.items():
        source = tool_spec(name)
        assert tool.metadata.description == source.description
        schema = tool.metadata.get_parameters_dict()
        fields = set(source.input_model.model_fields)
        assert set(schema["properties"]) == fields - CUSTOMER_FIELDS - {"channel"}
    # a subset, and the async conversion
    assert [t.metadata.name for t in spec.to_tool_list(spec_functions=["recall"])] == ["recall"]
    with pytest.raises(ValueError, match="no tool 'forget'"):
        spec.to_tool_list(spec_functions=["forget"])
    with pytest.raises(ValueError, match="no customer-bound tool 'forget'"):
        ConversationMemoryToolSpec(memory, CUSTOMER, names=["forget"])


def test_calls_run_for_the_bound_customer_and_errors_are_readable(seeded: Memory) -> None:
    tools = _tools(seeded, channel="chat")
    saved = tools["remember"].call(
        observations=[{"text": "Prefers deliveries to the office", "kind": "preference"}]
    )
    assert saved.raw_output.profile_id == seeded.profiles.get(CUSTOMER).id
    assert saved.content == tool_spec("remember").text(saved.raw_output)
    recalled = tools["recall"].call(query="office deliveries")
    assert isinstance(recalled.raw_output, RecallOutput)
    assert "Prefers deliveries to the office" in recalled.content
    assert "9001" not in recalled.content  # nothing of the other customer
    with pytest.raises(ValidationError, match="customer"):
        tools["recall"].call(query="x", customer=OTHER)  # the customer is bound, not chosen
    other_conversation = seeded.conversations.list(seeded.profiles.get(OTHER).id)[0].id
    with pytest.raises(ValidationError, match="belongs to another customer"):
        tools["remember"].call(
            conversation_id=other_conversation,
            messages=[{"role": "customer", "text": "hi"}],
        )


async def test_function_agent_calls_recall_remember_and_search_knowledge(
    knowledge: Memory,
) -> None:
    sent: list[list[ChatMessage]] = []
    llm = _scripted(
        _calls(
            ("recall", {"query": "how to contact them"}),
            ("search_knowledge", {"query": "damaged item replaced"}),
        ),
        _calls(
            (
                "remember",
                {"observations": [{"text": "Wants a replacement, not a refund", "kind": "intent"}]},
            ),
            ("recall", {"query": "x", "token_budget": -1}),  # refused: the error reaches the LLM
        ),
        ChatMessage(role=MessageRole.ASSISTANT, content="Your replacement is free; I'll text you."),
        sent=sent,
    )
    tools = ConversationMemoryToolSpec(knowledge, CUSTOMER, channel="chat").to_tool_list()
    agent = FunctionAgent(llm=llm, tools=tools, system_prompt="You are Acme's support agent.")

    response = await agent.run("My screen arrived cracked. What now?")

    assert str(response) == "Your replacement is free; I'll text you."
    # Calls of one step run concurrently: look the results up by call.
    results = {
        (t.tool_name, t.tool_kwargs.get("query")): t.tool_output for t in response.tool_calls
    }
    assert len(response.tool_calls) == 4
    assert not results[("recall", "how to contact them")].is_error
    assert "text me updates" in results[("recall", "how to contact them")].content
    found = results[("search_knowledge", "damaged item replaced")]
    assert not found.is_error and "replaced free of charge" in found.content
    assert not results[("remember", None)].is_error
    refused = results[("recall", "x")]
    assert refused.is_error and refused.content.startswith("invalid arguments: token_budget")
    assert [o.text for o in knowledge.observations.list(CUSTOMER)] == [
        "Wants a replacement, not a refund"
    ]
    # The LLM read the tool results (the knowledge passage among them) before answering.
    tool_results = [m.content or "" for m in sent[-1] if m.role is MessageRole.TOOL]
    assert any("replaced free of charge" in r for r in tool_results)


# ReActAgent itself calls a deprecated workflows API (llama-index-core 0.14.x).
@pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning")
async def test_react_agent_calls_the_tools(seeded: Memory) -> None:
    """A ReActAgent (text-based tool calls) with llama-index's mock LLM scripted."""
    replies = iter(
        [
            "Thought: I need the customer's context.\nAction: recall\n"
            'Action Input: {"query": "contact preferences"}',
            "Thought: I can answer without using any more tools.\n"
            "Answer: I will text you rather than call.",
        ]
    )
    prompts: list[str] = []

    class ScriptedLLM(MockLLM):
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            prompts.append(prompt)
            return super().complete(next(replies), formatted=True)

    tools = ConversationMemoryToolSpec(seeded, CUSTOMER).to_tool_list(spec_functions=["recall"])
    agent = ReActAgent(llm=ScriptedLLM(), tools=tools, streaming=False)
    response = await agent.run("Please don't call me.")
    assert "I will text you rather than call." in str(response)
    (call,) = response.tool_calls
    assert call.tool_name == "recall" and not call.tool_output.is_error
    assert "I can't take calls at work" in call.tool_output.content
    assert any("I can't take calls at work" in p for p in prompts[1:])


async def test_async_tool_calls_run_off_the_event_loop(
    recording: tuple[Memory, ThreadRecordingEmbedder],
) -> None:
    memory, embedder = recording
    tools = _tools(AsyncMemory(memory))
    output = await tools["recall"].acall(query="cracked screen")
    assert "cracked screen" in output.content
    assert isinstance(output.raw_output, RecallOutput)
    assert embedder.threads and threading.get_ident() not in embedder.threads
