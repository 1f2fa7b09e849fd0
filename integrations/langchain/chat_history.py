"""LangChain chat message history kept as a Conversation Memory conversation.

Messages a chain adds are ingested into the customer's conversation as they
happen, so they are stored, indexed and recalled like any other channel's
messages; ``RunnableWithMessageHistory`` works with it unchanged.

``BaseChatMessageHistory`` and ``RunnableWithMessageHistory`` are deprecated
in langchain-core 1.x (removal in 2.0) in favour of LangGraph persistence;
they remain the way to keep history in a plain langchain-core chain.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from memory_core.aio import AsyncMemory
from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.models import Channel, Message, MessageIn, Role

from .._common import ConversationSession, CustomerRef, message_in

__all__ = ["ConversationMemoryChatMessageHistory", "session_history_factory"]

_CHAT_ROLES = {
    "user": Role.CUSTOMER,
    "human": Role.CUSTOMER,
    "customer": Role.CUSTOMER,
    "assistant": Role.AI_AGENT,
    "ai": Role.AI_AGENT,
    "ai_agent": Role.AI_AGENT,
    "human_agent": Role.HUMAN_AGENT,
    "system": Role.SYSTEM,
}


def to_message_in(message: BaseMessage) -> MessageIn | None:
    """The message to store for a LangChain message, or None for what is not a
    turn of the conversation (tool results, tool-call-only AI messages)."""
    if isinstance(message, ToolMessage | FunctionMessage):
        return None
    role: Role | None
    if isinstance(message, HumanMessage):
        role = Role.CUSTOMER
    elif isinstance(message, AIMessage):
        role = Role.AI_AGENT
    elif isinstance(message, SystemMessage):
        role = Role.SYSTEM
    elif isinstance(message, ChatMessage):
        role = _CHAT_ROLES.get(message.role.lower())
    else:
        role = None
    if role is None:
        raise ValidationError(
            f"cannot store a {type(message).__name__} ({message.type!r}) in a conversation; "
            "use human, ai or system messages"
        )
    return message_in(role, str(message.text))


def to_langchain(message: Message) -> BaseMessage:
    """A stored message as a LangChain message (human and AI agents both speak as AI)."""
    if message.role is Role.CUSTOMER:
        return HumanMessage(content=message.text, id=message.id)
    if message.role is Role.SYSTEM:
        return SystemMessage(content=message.text, id=message.id)
    return AIMessage(content=message.text, id=message.id)


def _storable(messages: Sequence[BaseMessage]) -> list[MessageIn]:
    return [m for m in map(to_message_in, messages) if m is not None]


class ConversationMemoryChatMessageHistory(BaseChatMessageHistory):
    """Chat history kept as one customer's conversation in Conversation Memory.

    * The conversation is created on the first added message (with
      ``conversation_id`` as its id when given); an existing conversation is
      resumed, and must belong to ``customer`` (else ``ValidationError``).
    * Roles: ``HumanMessage`` -> customer, ``AIMessage`` -> ai_agent,
      ``SystemMessage`` -> system (``ChatMessage`` by its role). Tool results
      and AI messages without text (pure tool calls) are not conversation turns
      and are not stored.
    * :attr:`messages` reads the conversation back (customer -> ``HumanMessage``,
      ai and human agents -> ``AIMessage``, system -> ``SystemMessage``).
    * :meth:`clear` **ends** the conversation; the next added message starts a
      fresh one. Nothing is deleted: the ended conversation and its messages
      stay in memory and in recall (erase with ``memory.conversations.delete``).
      A conversation found ended (e.g. closed by your contact-centre platform)
      is treated as cleared.

    ``memory`` may be a :class:`Memory` or an :class:`AsyncMemory` handle; the
    history lives in its tenant (``memory.tenant("acme")`` for another one). The
    async methods run the engine in worker threads, never on the event loop.
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef | None = None,
        *,
        channel: Channel | str = Channel.CHAT,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__()
        self.session = ConversationSession(
            memory, customer, channel=channel, conversation_id=conversation_id
        )

    @property
    def conversation_id(self) -> str:
        """The current conversation's id (stored from the first added message on)."""
        return self.session.conversation_id

    @property
    def customer(self) -> CustomerRef | None:
        return self.session.customer

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The conversation's messages, oldest first."""
        return [to_langchain(m) for m in self.session.messages()]

    async def aget_messages(self) -> list[BaseMessage]:
        return [to_langchain(m) for m in await self.session.amessages()]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self.session.add(_storable(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await self.session.aadd(_storable(messages))

    def clear(self) -> None:
        """End the conversation (kept, not deleted); the next message starts a new one."""
        self.session.end()

    async def aclear(self) -> None:
        await self.session.aend()


def session_history_factory(
    memory: Memory | AsyncMemory,
    *,
    customer: CustomerRef | None = None,
    channel: Channel | str = Channel.CHAT,
    max_sessions: int = 10_000,
) -> Callable[..., ConversationMemoryChatMessageHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory``: session id -> conversation.

    The session id is the conversation's id, so a session resumes its
    conversation across restarts. The customer is ``customer`` here, or a
    ``customer`` configurable passed per call (declare both keys with
    ``history_factory_config``); a new session needs one of them. The same
    history object serves a session for the life of the factory (the most
    recent ``max_sessions`` are kept), so after ``clear()`` the session goes
    on in its fresh conversation.

    Example::

        chain = RunnableWithMessageHistory(
            prompt | model,
            session_history_factory(memory, customer="phone:+16175550142"),
            input_messages_key="input",
            history_messages_key="history",
        )
        chain.invoke({"input": "Hi"}, {"configurable": {"session_id": "chat-4711"}})
    """
    histories: OrderedDict[str, ConversationMemoryChatMessageHistory] = OrderedDict()
    default_customer = customer

    def get_session_history(
        session_id: str, customer: CustomerRef | None = None
    ) -> ConversationMemoryChatMessageHistory:
        who = customer if customer is not None else default_customer
        history = histories.get(session_id)
        if history is not None and (who is None or str(who) == str(history.customer)):
            histories.move_to_end(session_id)
            return history
        # New, or named with another customer reference: a fresh history checks
        # that the stored conversation belongs to this customer before any use.
        history = ConversationMemoryChatMessageHistory(
            memory, who, channel=channel, conversation_id=session_id
        )
        histories[session_id] = history
        while len(histories) > max_sessions:
            histories.popitem(last=False)
        return history

    return get_session_history
