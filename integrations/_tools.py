"""The agent tools of :mod:`memory_core.tools`, bound to one customer, for any
framework (the LangChain and LlamaIndex adapters translate a :class:`BoundTool`).

A bound tool is a :class:`memory_core.tools.ToolSpec` plus what the adapter
fills in on every call, so the model never chooses it:

* the fields that name the customer (:data:`CUSTOMER_FIELDS`) are bound to the
  customer the agent is serving, so the model chooses what to look up or store,
  never whose memory it touches;
* the tenant is the one of the handle the tools are made with (never a field):
  pass ``memory.tenant("acme")`` to serve tenant ``acme``;
* a ``conversation_id`` the model gives must be one of the bound customer's
  conversations (or a new one), so a tool never reads or writes another
  customer's conversation.

Everything is read from the spec when the tool is made (name, description,
input model), so a field or a tool the specs gain later appears by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic import ValidationError as PydanticValidationError

from memory_core.aio import AsyncMemory
from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import Channel
from memory_core.tools import TOOLS, ToolSpec, describe, tool_spec, validate_input

from ._common import CustomerRef, split_memory

__all__ = [
    "BINDABLE",
    "CUSTOMER_FIELDS",
    "TOOL_NAMES",
    "BoundTool",
    "args_schema",
    "bound_tools",
    "customer_bindings",
    "invalid_arguments",
]

#: The tools :func:`bound_tools` makes by default, in this order (those the engine has).
TOOL_NAMES = ("recall", "search_knowledge", "remember")

#: Input fields that name the customer; bound, never chosen by the model:
#: ``customer`` is the served customer, and ``link_identifiers`` stays empty (an
#: identifier of somebody else would merge their profile into this customer's).
CUSTOMER_FIELDS = frozenset({"customer", "link_identifiers"})

#: Tools that can be bound to one customer: every input that could reach
#: another customer's data is one of the bound fields or is checked.
BINDABLE = frozenset(TOOL_NAMES)


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
    """The values of ``spec``'s customer fields (:data:`CUSTOMER_FIELDS`) for ``customer``:
    ``customer`` is its reference (a profile id or ``kind:value``), ``link_identifiers``
    is empty."""
    values: dict[str, Any] = {"customer": str(customer), "link_identifiers": []}
    return {name: values[name] for name in spec.input_model.model_fields if name in values}


def invalid_arguments(exc: Exception) -> str:
    """A rejected tool call, described the way ``memory_core.tools.validate_input`` does
    (``invalid arguments: <argument>: <what>``)."""
    if not isinstance(exc, PydanticValidationError):  # pragma: no cover - pydantic v1 models
        return f"invalid arguments: {exc}"
    return f"invalid arguments: {describe(exc)}"


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


class BoundTool:
    """One spec run against ``memory`` (in the handle's tenant), optionally bound
    to a ``customer`` and with further fields fixed by ``bound``.

    :attr:`schema` is what the model fills in; :meth:`run` validates the
    arguments against it (unknown ones, bound fields among them, are refused
    with a readable :class:`ValidationError`), adds the bound values, checks
    that a named conversation is the customer's and runs the spec. Every
    failure is a :class:`memory_core.MemoryCoreError`.
    """

    def __init__(
        self,
        spec: ToolSpec,
        memory: Memory | AsyncMemory,
        customer: CustomerRef | None = None,
        *,
        bound: Mapping[str, Any] | None = None,
    ) -> None:
        if customer is not None and spec.name not in BINDABLE:
            raise ValueError(
                f"the {spec.name} tool cannot be bound to one customer; bindable: "
                + ", ".join(sorted(BINDABLE))
            )
        self.spec = spec
        self.customer = customer
        self.values: dict[str, Any] = {
            **(customer_bindings(spec, customer) if customer is not None else {}),
            **(bound or {}),
        }
        self.schema = args_schema(spec, self.values)
        self.memory, _ = split_memory(memory)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    def run(self, arguments: Mapping[str, Any]) -> BaseModel:
        """The spec's output for these arguments (the model's, without bound fields)."""
        validate_input(self.schema, dict(arguments))  # readable errors, bound fields refused
        request = validate_input(self.spec.input_model, {**arguments, **self.values})
        if self.customer is not None:
            _check_conversation(self.memory, self.customer, request)
        return self.spec.run(self.memory, request)

    async def arun(self, arguments: Mapping[str, Any]) -> BaseModel:
        """:meth:`run` in one worker thread: the engine never runs on the event loop."""
        return await asyncio.to_thread(self.run, arguments)


def bound_tools(
    memory: Memory | AsyncMemory,
    customer: CustomerRef,
    *,
    channel: Channel | str | None = None,
    names: Sequence[str] | None = None,
) -> list[BoundTool]:
    """The tools for an agent serving ``customer``: those of :data:`TOOL_NAMES`
    the engine has (or those in ``names``), bound to ``customer``. With
    ``channel``, a tool that takes a channel stores on that one and the model is
    not asked for it."""
    available = [spec.name for spec in TOOLS]
    wanted = list(names) if names is not None else [n for n in TOOL_NAMES if n in available]
    tools: list[BoundTool] = []
    for name in wanted:
        if name not in BINDABLE:
            raise ValueError(
                f"no customer-bound tool {name!r}; choose from: " + ", ".join(TOOL_NAMES)
            )
        spec = tool_spec(name)
        fixed: dict[str, Any] = {}
        if channel is not None and "channel" in spec.input_model.model_fields:
            fixed["channel"] = Channel(channel)
        tools.append(BoundTool(spec, memory, customer, bound=fixed))
    return tools
