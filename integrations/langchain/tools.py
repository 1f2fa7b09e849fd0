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

The tool's content is the spec's output model as JSON (what an MCP client
gets); the output model itself is the tool message's artifact. Engine errors
(:class:`memory_core.MemoryCoreError`) become :class:`ToolException` with the
engine's message, which says what to do; by default the tool hands it to the
model as a ``ToolMessage`` with ``status="error"`` (LangGraph's ``ToolNode``
re-raises a plain ``ToolException`` unless the tool handles it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, create_model
from pydantic import ValidationError as PydanticValidationError

from memory_core.aio import AsyncMemory
from memory_core.errors import MemoryCoreError, NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import Channel
from memory_core.tools import TOOLS, ToolSpec, tool_spec, validate_input

from .._common import CustomerRef, is_profile_id, split_memory

__all__ = [
    "CUSTOMER_FIELDS",
    "TOOL_NAMES",
    "args_schema",
    "customer_bindings",
    "memory_tools",
    "spec_tool",
]

#: The tools :func:`memory_tools` makes, in this order (those the engine has).
TOOL_NAMES = ("recall", "search_knowledge", "remember")

#: Input fields that name the customer; bound, never chosen by the model.
CUSTOMER_FIELDS = frozenset({"profile", "profile_id", "customer"})

#: Tools that can be bound to one customer: every input that could reach
#: another customer's data is one of the bound fields or is checked.
_BINDABLE = frozenset(TOOL_NAMES)


def args_schema(spec: ToolSpec, bound: Collection[str] = ()) -> type[BaseModel]:
    """The spec's input model without the ``bound`` fields: what the model fills in.

    Field types, defaults, bounds and descriptions are the input model's own;
    unknown arguments (a bound field among them) are rejected.
    """
    source = spec.input_model
    unknown = set(bound) - set(source.model_fields)
    if unknown:
        raise ValueError(f"{spec.name} has no field {', '.join(sorted(unknown))} to bind")
    fields: dict[str, Any] = {
        name: (field.annotation, field)
        for name, field in source.model_fields.items()
        if name not in bound
    }
    config = ConfigDict(**{**source.model_config, "extra": "forbid"})
    model: type[BaseModel] = create_model(
        f"{source.__name__.removesuffix('Input')}Args",
        __config__=config,
        __doc__=source.__doc__,
        **fields,
    )
    return model


def customer_bindings(spec: ToolSpec, customer: CustomerRef) -> dict[str, Any]:
    """The values of ``spec``'s customer fields (:data:`CUSTOMER_FIELDS`) for ``customer``."""
    ref = str(customer)
    by_id = is_profile_id(customer)
    values = {
        "profile": ref,
        "profile_id": ref if by_id else None,
        "customer": [] if by_id else [ref],
    }
    return {name: values[name] for name in spec.input_model.model_fields if name in values}


def _invalid_arguments(exc: Exception) -> str:
    """A rejected tool call, described the way ``memory_core.tools.validate_input`` does."""
    if not isinstance(exc, PydanticValidationError):  # pragma: no cover - pydantic v1 models
        return f"invalid arguments: {exc}"
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return f"invalid arguments: {'; '.join(parts)}"


def _check_conversation(memory: Memory, customer: CustomerRef, request: BaseModel) -> None:
    """A conversation the request names must be the bound customer's (or not exist yet)."""
    conversation_id = getattr(request, "conversation_id", None)
    if not isinstance(conversation_id, str):
        return
    try:
        conversation = memory.conversations.get(conversation_id)
    except NotFoundError:
        return  # a new conversation: it is started for the bound customer
    owner = memory.profiles.find(customer)
    if owner is None or owner.id != conversation.profile_id:
        raise ValidationError(
            f"conversation {conversation_id!r} belongs to another customer; give one of this "
            "customer's conversations, or omit conversation_id"
        )


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
    if customer is not None and spec.name not in _BINDABLE:
        raise ValueError(
            f"the {spec.name} tool cannot be bound to one customer; bindable: "
            + ", ".join(sorted(_BINDABLE))
        )
    values = {
        **(customer_bindings(spec, customer) if customer is not None else {}),
        **(bound or {}),
    }
    schema = args_schema(spec, values)
    sync, _ = split_memory(memory)

    def run(**arguments: Any) -> tuple[str, BaseModel]:
        try:
            request = validate_input(spec.input_model, {**arguments, **values})
            if customer is not None:
                _check_conversation(sync, customer, request)
            output = spec.run(sync, request)
        except MemoryCoreError as exc:
            raise ToolException(str(exc)) from exc
        return output.model_dump_json(), output

    async def arun(**arguments: Any) -> tuple[str, BaseModel]:
        # The whole call in one worker thread: the engine never runs on the event loop.
        return await asyncio.to_thread(run, **arguments)

    return StructuredTool(
        name=spec.name,
        description=spec.description,
        args_schema=schema,
        func=run,
        coroutine=arun,
        response_format="content_and_artifact",
        handle_tool_error=handle_tool_error,
        handle_validation_error=_invalid_arguments if handle_tool_error else False,
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
    available = [spec.name for spec in TOOLS]
    wanted = list(names) if names is not None else [n for n in TOOL_NAMES if n in available]
    tools: list[BaseTool] = []
    for name in wanted:
        if name not in _BINDABLE:
            raise ValueError(
                f"no customer-bound tool {name!r}; choose from: " + ", ".join(TOOL_NAMES)
            )
        spec = tool_spec(name)
        fixed: dict[str, Any] = {}
        if channel is not None and "channel" in spec.input_model.model_fields:
            fixed["channel"] = Channel(channel)
        tools.append(
            spec_tool(
                spec,
                memory,
                customer,
                bound=fixed,
                handle_tool_error=handle_tool_error,
            )
        )
    return tools
