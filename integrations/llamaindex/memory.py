"""LlamaIndex memory backed by Conversation Memory.

llama-index-core 0.14 favours ``llama_index.core.memory.Memory`` with memory
blocks. A block only receives the messages flushed out of the short-term
queue once it overflows its token limit (by default ~21k tokens), so a block
cannot capture a conversation as it happens. Hence two pieces:

* :class:`ConversationChatMemory` - a ``BaseMemory`` (the type agents and chat
  engines accept; ``Memory`` itself is one) whose chat history *is* the
  customer's conversation: each ``put`` is ingested at once, and ``get``
  returns the recalled customer context as a system message followed by the
  recent turns. No second chat store, and a session resumes after a restart.
* :class:`ConversationMemoryBlock` - for apps already composing a
  ``Memory`` from blocks: feeds the recalled customer context, captures nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.memory import BaseMemory, BaseMemoryBlock
from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from memory_core.aio import AsyncMemory
from memory_core.errors import ConflictError, ValidationError
from memory_core.memory import Memory
from memory_core.models import Channel, Message, MessageIn, Role
from memory_core.recall import RecallOptions, RecallResult, count_tokens

from .._common import (
    ConversationSession,
    CustomerRef,
    message_in,
    refuse_tenant,
    split_memory,
)

__all__ = ["ConversationChatMemory", "ConversationMemoryBlock"]

_ROLES = {
    MessageRole.USER: Role.CUSTOMER,
    MessageRole.ASSISTANT: Role.AI_AGENT,
    MessageRole.CHATBOT: Role.AI_AGENT,
    MessageRole.MODEL: Role.AI_AGENT,
    MessageRole.SYSTEM: Role.SYSTEM,
    MessageRole.DEVELOPER: Role.SYSTEM,
}
_SIDE = {
    Role.CUSTOMER: MessageRole.USER,
    Role.AI_AGENT: MessageRole.ASSISTANT,
    Role.HUMAN_AGENT: MessageRole.ASSISTANT,
    Role.SYSTEM: MessageRole.SYSTEM,
}


def to_message_in(message: ChatMessage) -> MessageIn | None:
    """The message to store, or None for what is not a conversation turn
    (tool and function results, assistant messages that only call tools)."""
    if message.role in (MessageRole.TOOL, MessageRole.FUNCTION):
        return None
    role = _ROLES.get(message.role)
    if role is None:  # pragma: no cover - every MessageRole is mapped above
        raise ValidationError(f"cannot store a {message.role.value!r} message")
    return message_in(role, message.content or "")


def to_chat_message(message: Message) -> ChatMessage:
    return ChatMessage(role=_SIDE[message.role], content=message.text)


def _storable(messages: Sequence[ChatMessage]) -> list[MessageIn]:
    return [m for m in map(to_message_in, messages) if m is not None]


def _last_user_text(messages: Sequence[ChatMessage] | None) -> str | None:
    for message in reversed(messages or []):
        if message.role is MessageRole.USER and message.content:
            return message.content
    return None


class ConversationChatMemory(BaseMemory):
    """Agent / chat-engine memory kept as one customer's conversation.

    * ``put`` / ``put_messages`` ingest each message into the conversation at
      once (user -> customer, assistant -> ai_agent, system -> system); tool
      results and tool-call-only assistant messages are not conversation turns
      and are not stored. The conversation is created on the first message
      (with ``conversation_id`` as its id when given); an existing one is
      resumed and must belong to ``customer``.
    * ``get`` returns a system message with the recalled customer context
      (delimited, marked as data; bounded by ``options.token_budget``) and then
      the latest turns within ``token_limit``. While the conversation is open
      its last turns are the recall query, so the recall adds what the chat
      does not already show.
    * ``set`` takes the full chat history: the stored conversation only grows,
      so messages beyond those already stored are appended, and a history
      that differs from the stored one raises ``ConflictError``.
    * ``reset`` ends the conversation (kept, not deleted); the next message
      starts a new one.

    The conversation lives in the tenant of the ``memory`` handle
    (``engine.tenant("acme")`` for another one). The async methods run the
    engine in worker threads, never on the event loop.

    Example::

        memory = ConversationChatMemory(engine, customer="phone:+16175550142")
        response = await agent.run("Where is my order?", memory=memory)
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    token_limit: int = Field(default=3000, gt=0, description="Token budget of the chat turns.")
    options: RecallOptions = Field(default_factory=RecallOptions)
    _session: ConversationSession = PrivateAttr()

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef | None = None,
        *,
        channel: Channel | str = Channel.CHAT,
        conversation_id: str | None = None,
        options: RecallOptions | None = None,
        token_limit: int = 3000,
    ) -> None:
        # pydantic fields (mypy runs without the pydantic plugin here)
        super().__init__(token_limit=token_limit, options=options or RecallOptions())  # type: ignore[call-arg]
        self._session = ConversationSession(
            memory, customer, channel=channel, conversation_id=conversation_id
        )

    @classmethod
    def class_name(cls) -> str:
        return "ConversationChatMemory"

    @classmethod
    def from_defaults(cls, **kwargs: Any) -> ConversationChatMemory:
        """Same as the constructor (``memory=`` and ``customer=`` by keyword)."""
        return cls(**kwargs)

    @property
    def conversation_id(self) -> str:
        """The current conversation's id (stored from the first message on)."""
        return self._session.conversation_id

    @property
    def session(self) -> ConversationSession:
        return self._session

    # -- composing what the model sees -------------------------------------------
    def _window(self, stored: list[Message]) -> list[ChatMessage]:
        budget = self.token_limit
        kept: list[Message] = []
        for message in reversed(stored):
            cost = count_tokens(message.text)
            if kept and cost > budget:
                break
            kept.append(message)
            budget -= cost
        kept.reverse()
        while len(kept) > 1 and kept[0].role in (Role.AI_AGENT, Role.HUMAN_AGENT):
            kept.pop(0)  # start on a customer turn, as chat models expect
        return [to_chat_message(m) for m in kept]

    def _compose(self, stored: list[Message], result: RecallResult | None) -> list[ChatMessage]:
        chat = self._window(stored)
        if result is not None and result.context:
            return [ChatMessage(role=MessageRole.SYSTEM, content=result.context), *chat]
        return chat

    def _suffix(self, stored: list[Message], messages: Sequence[ChatMessage]) -> list[MessageIn]:
        wanted = _storable(messages)
        have = [(_SIDE[m.role], m.text) for m in stored]
        if [(_SIDE[w.role], w.text) for w in wanted[: len(have)]] != have:
            raise ConflictError(
                f"this chat history differs from conversation {self.conversation_id!r}, "
                "which only grows; call reset() to start a new conversation"
            )
        return wanted[len(have) :]

    # -- sync ---------------------------------------------------------------------
    def get(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        """Recalled customer context (as a system message), then the latest turns."""
        stored = self._session.messages()
        result = self._session.recall(None if stored else input, self.options)
        return self._compose(stored, result)

    def get_all(self) -> list[ChatMessage]:
        """Every stored turn of the conversation."""
        return [to_chat_message(m) for m in self._session.messages()]

    def put(self, message: ChatMessage) -> None:
        self._session.add(_storable([message]))

    def put_messages(self, messages: list[ChatMessage]) -> None:
        self._session.add(_storable(messages))

    def set(self, messages: list[ChatMessage]) -> None:
        self._session.add(self._suffix(self._session.messages(), messages))

    def reset(self) -> None:
        """End the conversation (kept, not deleted); the next message starts a new one."""
        self._session.end()

    # -- async --------------------------------------------------------------------
    async def aget(self, input: str | None = None, **kwargs: Any) -> list[ChatMessage]:
        stored = await self._session.amessages()
        result = await self._session.arecall(None if stored else input, self.options)
        return self._compose(stored, result)

    async def aget_all(self) -> list[ChatMessage]:
        return [to_chat_message(m) for m in await self._session.amessages()]

    async def aput(self, message: ChatMessage) -> None:
        await self._session.aadd(_storable([message]))

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        await self._session.aadd(_storable(messages))

    async def aset(self, messages: list[ChatMessage]) -> None:
        stored = await self._session.amessages()
        await self._session.aadd(self._suffix(stored, messages))

    async def areset(self) -> None:
        await self._session.aend()


class ConversationMemoryBlock(BaseMemoryBlock[str]):
    """A memory block that feeds what Conversation Memory recalls about the customer.

    The query is the latest user message of the chat (none: the most recent
    context); the content is the engine's rendered context, delimited and
    marked as data, bounded by ``options.token_budget``. It captures nothing:
    llama-index hands blocks only the messages flushed out of short-term
    memory, so capture the chat with :class:`ConversationChatMemory` (or
    ``memory.ingest``) instead. It recalls in the tenant of the ``memory`` handle.

    Example::

        from llama_index.core.memory import Memory as ChatMemory

        chat_memory = ChatMemory.from_defaults(
            session_id="chat-4711",
            memory_blocks=[ConversationMemoryBlock(memory=engine, customer="phone:+16175550142")],
        )
    """

    name: str = Field(default="conversation_memory", description="The block's name.")
    description: str | None = Field(
        default="What Conversation Memory recalls about the customer.",
        description="A description of the memory block.",
    )
    accept_short_term_memory: bool = Field(
        default=False, description="Flushed messages are not captured here."
    )
    memory: Memory
    customer: CustomerRef
    options: RecallOptions = Field(default_factory=RecallOptions)

    @field_validator("memory", mode="before")
    @classmethod
    def _sync_memory(cls, value: Any) -> Any:
        return value.sync if isinstance(value, AsyncMemory) else value

    @model_validator(mode="before")
    @classmethod
    def _no_tenant(cls, data: Any) -> Any:
        return refuse_tenant(data)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        _, aio = split_memory(self.memory)
        profile = await aio.profiles.find(self.customer)
        if profile is None:
            return ""
        result = await aio.recall(profile.id, _last_user_text(messages), options=self.options)
        return result.context

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Nothing to do: see the class docstring."""
