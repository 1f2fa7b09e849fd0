"""Agent tools for LangChain: the :mod:`memory_core.tools` specs, bound to one customer.

Each tool is a thin translation of a :class:`memory_core.tools.ToolSpec` - the
same one the MCP server serves: same name, same description (written for the
model), same input validation, same behaviour. The arguments the model sees are
the spec's input model minus the *bound* fields, which the adapter fills in on
every call:

* the fields that name the customer (``profile``, ``profile_id``, ``customer``)
  are bound to the customer the agent is serving, so the model chooses what to
  look up or store, never whose memory it touches;
* the tenant is the one of the handle the tools are made with (never a field):
  pass ``memory.tenant("acme")`` to serve tenant ``acme``;
* a ``conversation_id`` the model gives must be one of the bound customer's
  conversations (or a new one), so a tool never reads or writes another
  customer's conversation.

A field a spec gains later appears in the tool's arguments by itself.

The tool's content is the spec's text of the output (what an MCP client reads:
for ``recall`` the context block, for ``search_knowledge`` the cited passages,
otherwise compact JSON); the output model itself is the tool message's artifact. Engine errors
(:class:`memory_core.MemoryCoreError`) become :class:`ToolException` with the
engine's message, which says what to do; by default the tool hands it to the
model as a ``ToolMessage`` with ``status="error"`` (LangGraph's ``ToolNode``
re-raises a plain ``ToolException`` unless the tool handles it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel

from memory_core.aio import AsyncMemory
from memory_core.errors import MemoryCoreError
from memory_core.memory import Memory
from memory_core.models import Channel
from memory_core.tools import ToolSpec

from .._common import CustomerRef
from .._tools import (
    CUSTOMER_FIELDS,
    TOOL_NAMES,
    BoundTool,
    args_schema,
    bound_tools,
    customer_bindings,
    invalid_arguments,
)

__all__ = [
    "CUSTOMER_FIELDS",
    "TOOL_NAMES",
    "args_schema",
    "customer_bindings",
    "memory_tools",
    "spec_tool",
]


def spec_tool(
    spec: ToolSpec,
    memory: Memory | AsyncMemory,
    customer: CustomerRef | None = None,
    *,
    bound: Mapping[str, Any] | None = None,
    handle_tool_error: bool = True,
) -> StructuredTool:
    """The LangChain tool for one spec, run against ``memory`` (in the handle's tenant).

    With a ``customer``, the spec's customer fields are bound to them and any
    ``conversation_id`` must be theirs. ``bound`` fixes further fields (hidden
    from the model, injected on every call), e.g. ``{"channel": "chat"}``.
    With ``handle_tool_error`` (the default) a failure reaches the model as the
    tool's error message; otherwise the :class:`ToolException` is raised.
    """
    return _structured_tool(
        BoundTool(spec, memory, customer, bound=bound), handle_tool_error=handle_tool_error
    )


def _structured_tool(tool: BoundTool, *, handle_tool_error: bool) -> StructuredTool:
    spec = tool.spec

    def run(**arguments: Any) -> tuple[str, BaseModel]:
        try:
            output = tool.run(arguments)
        except MemoryCoreError as exc:
            raise ToolException(str(exc)) from exc
        return spec.text(output), output

    async def arun(**arguments: Any) -> tuple[str, BaseModel]:
        try:
            output = await tool.arun(arguments)  # in a worker thread, off the event loop
        except MemoryCoreError as exc:
            raise ToolException(str(exc)) from exc
        return spec.text(output), output

    return StructuredTool(
        name=spec.name,
        description=spec.description,
        args_schema=tool.schema,
        func=run,
        coroutine=arun,
        response_format="content_and_artifact",
        handle_tool_error=handle_tool_error,
        handle_validation_error=invalid_arguments if handle_tool_error else False,
        metadata={
            "title": spec.title,
            "read_only": spec.read_only,
            "destructive": spec.destructive,
            "idempotent": spec.idempotent,
        },
    )


def memory_tools(
    memory: Memory | AsyncMemory,
    customer: CustomerRef,
    *,
    channel: Channel | str | None = None,
    names: Sequence[str] | None = None,
    handle_tool_error: bool = True,
) -> list[BaseTool]:
    """The agent tools for an agent serving ``customer``: ``recall``,
    ``search_knowledge`` and ``remember`` (or those in ``names``).

    Each is :func:`spec_tool` of the :mod:`memory_core.tools` spec of that name,
    bound to ``customer`` in the tenant of ``memory``. With ``channel``, ``remember`` stores
    on that channel and the model is not asked for one. The async versions run
    the engine in a worker thread, off the event loop.

    Example::

        tools = memory_tools(memory, "phone:+16175550142", channel="chat")
        agent_model = model.bind_tools(tools)
    """
    return [
        _structured_tool(tool, handle_tool_error=handle_tool_error)
        for tool in bound_tools(memory, customer, channel=channel, names=names)
    ]
