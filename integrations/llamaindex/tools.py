"""Agent tools for LlamaIndex: the :mod:`memory_core.tools` specs as a ``BaseToolSpec``.

:class:`ConversationMemoryToolSpec` turns the specs - the same ones the MCP
server serves - into ``FunctionTool`` objects for a ``FunctionAgent``, a
``ReActAgent`` or any LlamaIndex tool user: same names, same descriptions,
same argument schemas and validation, same behaviour. They are built from the
specs when the tool list is made, so a tool or a field the specs gain later
appears by itself.

The tools are bound to the customer the agent is serving, as the LangChain
ones are (see :mod:`convmem_integrations._tools`): the fields that name the
customer are left out of the arguments the model sees and filled in on every
call, the tenant is the handle's, and a ``conversation_id`` the model gives must
be one of this customer's conversations (or a new one).

A tool's content (what the LLM reads) is the spec's text of the output, as an
MCP client reads it (``spec.text``: for ``recall`` the context block, for
``search_knowledge`` the cited passages, otherwise compact JSON);
``ToolOutput.raw_output`` is the output model itself.
A failure raises :class:`memory_core.MemoryCoreError` with a message that says
what to do (bad arguments: ``invalid arguments: ...``); LlamaIndex agents hand
it to the LLM as an error tool result. Async calls run the engine in a worker
thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from pydantic import BaseModel

from memory_core.aio import AsyncMemory
from memory_core.memory import Memory
from memory_core.models import Channel

from .._common import CustomerRef
from .._tools import BoundTool, bound_tools

__all__ = ["ConversationMemoryToolSpec"]


class ConversationMemoryToolSpec(BaseToolSpec):
    """The agent tools for an agent serving ``customer``: ``recall``,
    ``search_knowledge`` and ``remember`` (or those in ``names``), run against
    ``memory`` in its tenant. With ``channel``, ``remember`` stores on that
    channel and the model is not asked for one.

    Example::

        tools = ConversationMemoryToolSpec(memory, "phone:+16175550142").to_tool_list()
        agent = FunctionAgent(llm=llm, tools=tools)
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef,
        *,
        channel: Channel | str | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        self._tools: dict[str, BoundTool] = {
            tool.name: tool for tool in bound_tools(memory, customer, channel=channel, names=names)
        }
        self.spec_functions: list[SPEC_FUNCTION_TYPE] = list(self._tools)

    def _tool(self, name: str) -> BoundTool:
        try:
            return self._tools[name]
        except KeyError:
            raise ValueError(
                f"no tool {name!r} in this spec; it has: {', '.join(self._tools)}"
            ) from None

    def get_fn_schema_from_fn_name(
        self, fn_name: str, spec_functions: list[SPEC_FUNCTION_TYPE] | None = None
    ) -> type[BaseModel] | None:
        """The arguments the model fills in for the tool ``fn_name``."""
        return self._tool(fn_name).schema

    def get_metadata_from_fn_name(
        self, fn_name: str, spec_functions: list[SPEC_FUNCTION_TYPE] | None = None
    ) -> ToolMetadata | None:
        """The tool's name, the spec's description (written for the LLM) and its schema."""
        tool = self._tool(fn_name)
        return ToolMetadata(name=tool.name, description=tool.description, fn_schema=tool.schema)

    def to_tool_list(
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """One ``FunctionTool`` per tool (those named in ``spec_functions``, default all)."""
        names = [f if isinstance(f, str) else f[0] for f in spec_functions or self.spec_functions]
        mapping = func_to_metadata_mapping or {}
        tools = []
        for name in names:
            tool = self._tool(name)
            metadata = mapping.get(name) or self.get_metadata_from_fn_name(name)
            tools.append(_function_tool(tool, metadata))
        return tools


def _function_tool(tool: BoundTool, metadata: ToolMetadata | None) -> FunctionTool:
    def call(**arguments: Any) -> BaseModel:
        return tool.run(arguments)

    async def acall(**arguments: Any) -> BaseModel:
        return await tool.arun(arguments)

    def content(output: BaseModel) -> str:
        return tool.spec.text(output)

    async def acontent(output: BaseModel) -> str:
        return tool.spec.text(output)

    # The callbacks turn the output model into the content; it stays the raw_output.
    return FunctionTool.from_defaults(
        fn=call,
        async_fn=acall,
        tool_metadata=metadata,
        callback=content,
        async_callback=acontent,
    )
