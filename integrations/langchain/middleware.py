"""LangChain v1 agent middleware: the customer's memory around every agent run.

:class:`ConversationMemoryMiddleware` plugs into ``langchain.agents.create_agent``
(``middleware=[...]``). For each run of the agent:

1. ``before_agent`` records the customer's new message(s) in their
   conversation, then recalls what matters about the customer in the context
   of that conversation (its latest turns are the query and are left out of
   the result: the model sees them in the chat anyway);
2. ``wrap_model_call`` adds the recalled context - the engine's delimited block,
   marked as data - to the system message of every model call of the run
   (the state's messages are not changed, so it is never stored twice);
3. ``after_agent`` records the agent's reply (every AI message with text; tool
   calls and tool results are not conversation turns).

The conversation is the LangGraph thread: its id is the ``thread_id`` of the
run's config (so a thread resumes its conversation, across restarts too), or a
new id when the run has none; the id is kept in the agent's state. A thread id
that names another customer's conversation is refused (``ValidationError``).
Messages are stored with their LangChain message ids, so sending the same
message again (a retry, a client that re-sends the history) stores it once.

The customer is the one given to the middleware, or the run's ``context``
(``create_agent(..., context_schema=...)``) when it has a ``customer`` key or
attribute - one agent can then serve every customer. The tenant is the handle's
(``memory.tenant("acme")``). The async hooks run the engine in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import ModelCallResult, PrivateStateAttr
from langchain_core.messages import AnyMessage, SystemMessage
from langgraph.channels.untracked_value import UntrackedValue
from langgraph.config import get_config
from langgraph.runtime import Runtime

from memory_core.aio import AsyncMemory
from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.models import Channel, MessageIn
from memory_core.recall import RecallOptions

from .._common import ConversationSession, CustomerRef, split_memory
from .chat_history import to_message_in

__all__ = ["ConversationMemoryMiddleware", "ConversationMemoryState"]

_MAX_ID = 200  # the engine's limit on a message id


class ConversationMemoryState(AgentState[Any]):
    """The agent state :class:`ConversationMemoryMiddleware` adds (private to it)."""

    #: The conversation the run records into.
    convmem_conversation_id: NotRequired[Annotated[str, PrivateStateAttr]]
    #: Id of the last message recorded (the next run records what follows it).
    convmem_recorded: NotRequired[Annotated[str, PrivateStateAttr]]
    #: The recalled context of this run (not checkpointed).
    convmem_context: NotRequired[Annotated[str, UntrackedValue, PrivateStateAttr]]


def with_context(system: SystemMessage | None, context: str) -> SystemMessage:
    """``system`` with the recalled ``context`` appended (or the context alone)."""
    if system is None:
        return SystemMessage(content=context)
    content = system.content
    if isinstance(content, str):
        joined: str | list[str | dict[Any, Any]] = f"{content}\n\n{context}" if content else context
    else:
        joined = [*content, {"type": "text", "text": context}]
    return system.model_copy(update={"content": joined})


def _thread_id() -> str | None:
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:  # pragma: no cover - hooks always run inside a graph
        return None
    thread = configurable.get("thread_id")
    return str(thread) if thread is not None else None


def _unrecorded(messages: Sequence[AnyMessage], marker: str | None) -> list[AnyMessage]:
    """The messages after the last recorded one (all of them when it is not there:
    the ids make storing one twice a no-op)."""
    if marker is not None:
        for n in range(len(messages) - 1, -1, -1):
            if messages[n].id == marker:
                return list(messages[n + 1 :])
    return list(messages)


def _storable(messages: Sequence[AnyMessage]) -> list[MessageIn]:
    out = []
    for message in messages:
        item = to_message_in(message)
        if item is None:
            continue
        mid = message.id
        if mid and len(mid) <= _MAX_ID and not any(c.isspace() for c in mid):
            item = item.model_copy(update={"id": mid})
        out.append(item)
    return out


class ConversationMemoryMiddleware(AgentMiddleware[ConversationMemoryState, Any]):
    """Recalled customer context before the model, the turn recorded around it;
    see the module docstring.

    ``memory`` is a :class:`Memory` or :class:`AsyncMemory` handle (its tenant is
    used); ``customer`` a profile id or an identifier such as
    ``"phone:+16175550142"`` (or None, to take it from each run's ``context``);
    ``channel`` the channel of new conversations; ``options`` the
    :class:`RecallOptions` of the recall (``token_budget`` bounds the context).

    Example::

        agent = create_agent(
            model,
            tools=memory_tools(memory, "phone:+16175550142", channel="chat"),
            middleware=[ConversationMemoryMiddleware(memory, "phone:+16175550142")],
            checkpointer=InMemorySaver(),
        )
        agent.invoke({"messages": [{"role": "user", "content": "Hi"}]},
                     {"configurable": {"thread_id": "chat-4711"}})
    """

    state_schema = ConversationMemoryState

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef | None = None,
        *,
        channel: Channel | str = Channel.CHAT,
        options: RecallOptions | None = None,
    ) -> None:
        super().__init__()
        self._sync, self._aio = split_memory(memory)
        try:
            self.channel = Channel(channel)
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise ValidationError(f"unknown channel {channel!r}; use one of: {allowed}") from None
        self.customer = customer
        self.options = options or RecallOptions()
        self.tools = []

    # -- who and which conversation ---------------------------------------------------
    def customer_for(self, runtime: Runtime[Any]) -> CustomerRef:
        """The run's customer: its context's ``customer``, else the middleware's."""
        context = runtime.context
        found: Any = None
        if isinstance(context, Mapping):
            found = context.get("customer")
        elif context is not None:
            found = getattr(context, "customer", None)
        customer = found if found is not None else self.customer
        if customer is None:
            raise ValidationError(
                "no customer for this run: give ConversationMemoryMiddleware(memory, customer) "
                "or a run context with a customer (context={'customer': 'phone:+16175550142'})"
            )
        return customer

    def _session(
        self, state: ConversationMemoryState, runtime: Runtime[Any]
    ) -> ConversationSession:
        return ConversationSession(
            self._sync,
            self.customer_for(runtime),
            channel=self.channel,
            conversation_id=state.get("convmem_conversation_id") or _thread_id(),
        )

    def _record(
        self, state: ConversationMemoryState, session: ConversationSession
    ) -> dict[str, Any]:
        messages = state["messages"]
        session.add(_storable(_unrecorded(messages, state.get("convmem_recorded"))))
        update: dict[str, Any] = {"convmem_conversation_id": session.conversation_id}
        if messages and messages[-1].id:
            update["convmem_recorded"] = messages[-1].id
        return update

    # -- hooks --------------------------------------------------------------------------
    def before_agent(
        self, state: ConversationMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Record the customer's new message(s), then recall in the conversation's context."""
        session = self._session(state, runtime)
        update = self._record(state, session)
        result = session.recall(None, self.options)
        update["convmem_context"] = result.context if result is not None else ""
        return update

    async def abefore_agent(
        self, state: ConversationMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.before_agent, state, runtime)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelCallResult[Any]:
        """Give the model the recalled context in its system message."""
        return handler(self._with_context(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelCallResult[Any]:
        return await handler(self._with_context(request))

    @staticmethod
    def _with_context(request: ModelRequest[Any]) -> ModelRequest[Any]:
        context = request.state.get("convmem_context")
        if not isinstance(context, str) or not context:
            return request
        return request.override(system_message=with_context(request.system_message, context))

    def after_agent(
        self, state: ConversationMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        """Record the agent's reply in the conversation."""
        return self._record(state, self._session(state, runtime))

    async def aafter_agent(
        self, state: ConversationMemoryState, runtime: Runtime[Any]
    ) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.after_agent, state, runtime)
