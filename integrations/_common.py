"""Framework-neutral parts of the LangChain and LlamaIndex adapters (each
adapter package imports its framework on import, so the shared code lives here).

* :class:`ConversationSession` - one customer's chat as a Conversation Memory
  conversation: created on the first write, resumed by id, ended on request.
* :func:`item_metadata` - the flat metadata of a recalled item.
* :class:`KnowledgeSearch` - what a knowledge retriever searches (knowledge bases,
  sources, tags, how many chunks, how good), :func:`search_knowledge` to run it,
  and :func:`knowledge_metadata`, the flat metadata of a cited chunk.
* :func:`split_memory` - a sync :class:`Memory` and its :class:`AsyncMemory`.

Every adapter works in the tenant of the handle it is given: pass
``memory.tenant("acme")`` to serve tenant ``acme``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from memory_core.aio import AsyncMemory
from memory_core.backends.base import SearchMode
from memory_core.errors import NotFoundError, ValidationError
from memory_core.knowledge import DEFAULT_ALPHA, KnowledgeHit
from memory_core.memory import Memory
from memory_core.models import (
    Channel,
    Conversation,
    ConversationIn,
    ConversationStatus,
    Identifier,
    Message,
    MessageIn,
    Profile,
    Role,
    new_id,
)
from memory_core.recall import RecallItem, RecallOptions, RecallResult

__all__ = [
    "ConversationSession",
    "CustomerRef",
    "KnowledgeSearch",
    "asearch_knowledge",
    "is_profile_id",
    "item_metadata",
    "knowledge_metadata",
    "message_in",
    "refuse_tenant",
    "search_knowledge",
    "split_memory",
]

CustomerRef = str | Identifier
"""A profile id (``prf_...``), an :class:`Identifier`, or ``kind:value`` text."""


def split_memory(memory: Memory | AsyncMemory) -> tuple[Memory, AsyncMemory]:
    """The sync tenant handle and an async facade over it, from either one."""
    if isinstance(memory, AsyncMemory):
        return memory.sync, memory
    if isinstance(memory, Memory):
        return memory, AsyncMemory(memory)
    raise TypeError(f"expected a memory_core.Memory or AsyncMemory, got {type(memory).__name__}")


def refuse_tenant(data: Any) -> Any:
    """For a ``mode="before"`` model validator: an adapter model's tenant is its
    handle's, so a ``tenant`` argument (an older API) is refused rather than ignored."""
    if isinstance(data, dict) and "tenant" in data:
        raise ValueError(
            "there is no tenant argument: the tenant is the memory handle's, "
            "pass memory=memory.tenant(name)"
        )
    return data


def message_in(role: Role, text: str) -> MessageIn | None:
    """A chat message to store in a conversation; None when its text is blank."""
    if not text.strip():
        return None
    try:
        return MessageIn(role=role, text=text)
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid message: {exc}") from exc


def item_metadata(item: RecallItem, result: RecallResult) -> dict[str, Any]:
    """Flat, JSON-ready metadata of a recalled item: what it is, its score and
    where it came from. Empty provenance fields are left out."""
    p = item.provenance
    meta: dict[str, Any] = {
        "id": item.id,
        "kind": item.type.value,
        "score": item.score,
        "profile_id": result.profile_id,
        "tenant": result.tenant,
        "conversation_id": p.conversation_id,
        "channel": p.channel.value if p.channel is not None else None,
        "role": p.role.value if p.role is not None else None,
        "ts": p.ts.isoformat() if p.ts is not None else None,
        "source": p.source,
        "message_ids": list(p.message_ids) or None,
    }
    return {k: v for k, v in meta.items() if v is not None}


class KnowledgeSearch(BaseModel):
    """What a knowledge retriever searches and how much it returns: the keyword
    arguments of ``memory.knowledge.search`` besides the query, named as the agent
    tools name them (``memory_core.tools.ARGUMENTS``).

    ``knowledge_bases`` is one knowledge base or several (ids or names; None =
    every one of the tenant), ``sources`` source ids, ``source_tags`` source tags
    (sources with any of them; ``tags`` of the engine, named apart because a
    LangChain runnable's ``tags`` are its tracing tags); ``limit`` is the top-k,
    ``min_score`` the threshold (scores are in [0, 1]).
    """

    model_config = ConfigDict(extra="forbid")

    knowledge_bases: str | Sequence[str] | None = None
    sources: Sequence[str] | None = None
    source_tags: Sequence[str] | None = None
    limit: int = Field(default=4, ge=1, le=1000)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    mode: SearchMode = SearchMode.HYBRID
    alpha: float = Field(default=DEFAULT_ALPHA, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kb" in data:
            raise ValueError(
                "kb is now knowledge_bases (the name every tool and adapter uses): "
                "pass knowledge_bases='help-center' or a list of names or ids"
            )
        return data

    def search_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``memory.knowledge.search`` these settings give."""
        return {
            "kb": self.knowledge_bases,
            "sources": self.sources,
            "tags": self.source_tags,
            "limit": self.limit,
            "min_score": self.min_score,
            "mode": self.mode,
            "alpha": self.alpha,
        }


def search_knowledge(memory: Memory, query: str, search: KnowledgeSearch) -> list[KnowledgeHit]:
    """The best chunks for ``query`` in the handle's tenant, each with its citation
    ([] for a blank query)."""
    if not query.strip():
        return []
    return memory.knowledge.search(query, **search.search_arguments())


async def asearch_knowledge(
    memory: AsyncMemory, query: str, search: KnowledgeSearch
) -> list[KnowledgeHit]:
    if not query.strip():
        return []
    return await memory.knowledge.search(query, **search.search_arguments())


def knowledge_metadata(hit: KnowledgeHit, tenant: str) -> dict[str, Any]:
    """Flat, JSON-ready metadata of a knowledge chunk: its score and citation.

    ``citation`` is the citation as one line (source › page › headings (uri,
    chunk n)), ready to show; the other keys are its parts. ``position`` is the
    chunk's 0-based order within its page. Empty fields are left out."""
    c = hit.citation
    meta: dict[str, Any] = {
        "id": hit.id,
        "kind": "knowledge",
        "score": hit.score,
        "tenant": tenant,
        "citation": str(c),
        "source_title": c.source_title,
        "uri": c.uri,
        "page_title": c.page_title,
        "heading_path": list(c.heading_path),
        "position": c.position,
        "page": c.page,
        "source_id": c.source_id,
        "kb_id": c.kb_id,
    }
    return {k: v for k, v in meta.items() if v is not None and v != "" and v != []}


def is_profile_id(ref: CustomerRef) -> bool:
    """Whether ``ref`` is a profile id rather than an identifier."""
    return isinstance(ref, str) and ref.startswith("prf_")


class ConversationSession:
    """One customer's chat, kept as a Conversation Memory conversation.

    The conversation is created on the first :meth:`add` (with
    ``conversation_id`` as its id when given, so a session id can name it) and
    resumed when it already exists. A resumed conversation must belong to
    ``customer``: otherwise :class:`ValidationError` - one customer's session
    never writes into, or reads from, another's conversation. With
    ``customer=None`` the session can only resume an existing conversation.

    :meth:`end` closes the conversation; the next :meth:`add` opens a fresh one.
    A conversation found ended (by :meth:`end` here or by another process) is
    treated the same way. Nothing is ever deleted.

    A session serves one chat: its calls are meant to come one after another,
    as the turns of a chat do (the engine itself is thread-safe). It reads and
    writes the tenant of the ``memory`` handle.
    """

    def __init__(
        self,
        memory: Memory | AsyncMemory,
        customer: CustomerRef | None = None,
        *,
        channel: Channel | str = Channel.CHAT,
        conversation_id: str | None = None,
    ) -> None:
        self.sync, self.aio = split_memory(memory)
        try:
            self.channel = Channel(channel)
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise ValidationError(f"unknown channel {channel!r}; use one of: {allowed}") from None
        self.customer = customer
        self._id = conversation_id or new_id("cnv")
        self._ready = False  # the conversation exists, is open and was checked
        self._profile_id: str | None = None

    @property
    def conversation_id(self) -> str:
        """The id of the current conversation (it may not be stored yet)."""
        return self._id

    @property
    def tenant(self) -> str:
        """The tenant of the session's handle."""
        return self.sync.name

    # -- checks shared by the sync and async paths ------------------------------
    def _accept(self, conv: Conversation, owner: Profile | None) -> bool:
        if self.customer is not None and (owner is None or owner.id != conv.profile_id):
            raise ValidationError(
                f"conversation {conv.id!r} belongs to another customer than {self.customer!s}"
            )
        self._profile_id = conv.profile_id
        self.channel = conv.channel
        if conv.status is ConversationStatus.ENDED:
            self._rotate()
            return False
        self._ready = True
        return True

    def _rotate(self) -> None:
        self._id = new_id("cnv")
        self._ready = False

    def _opening(self, items: Sequence[MessageIn]) -> ConversationIn:
        ref = self.customer
        customer: list[str]
        profile_id: str | None
        if ref is None and self._profile_id is None:
            raise ValidationError(
                "a new conversation needs the customer: pass customer= a profile id or an "
                "identifier such as 'phone:+16175550142'"
            )
        if ref is None:
            profile_id, customer = self._profile_id, []
        elif is_profile_id(ref):
            profile_id, customer = str(ref), []
        else:
            profile_id, customer = None, [str(ref)]
        return ConversationIn(
            channel=self.channel,
            id=self._id,
            customer=customer,
            profile_id=profile_id,
            messages=list(items),
            ended=False,
        )

    def _recall_ref(self) -> CustomerRef | None:
        return self.customer if self.customer is not None else self._profile_id

    # -- sync -------------------------------------------------------------------
    def _check(self) -> bool:
        """Whether the current conversation exists (and is ours and open)."""
        if self._ready:
            return True
        try:
            conv = self.sync.conversations.get(self._id)
        except NotFoundError:
            return False
        owner = None
        if self.customer is not None:
            owner = self.sync.profiles.find(self.customer)
        return self._accept(conv, owner)

    def messages(self) -> list[Message]:
        """The current conversation's messages, in order ([] before the first add)."""
        if not self._check():
            return []
        return self.sync.conversations.list_messages(self._id)

    def add(self, items: Sequence[MessageIn]) -> list[Message]:
        """Append messages, opening the conversation on the first call."""
        if not items:
            return []
        if self._check():
            return self.sync.conversations.add_messages(self._id, list(items))
        result = self.sync.ingest(self._opening(items))
        self._profile_id = result.profile.id
        self._ready = True
        return result.messages

    def end(self) -> None:
        """End the conversation (kept, with its messages); the next add opens a new one."""
        if self._check():
            self.sync.conversations.end(self._id)
        self._rotate()

    def recall(
        self, query: str | None, options: RecallOptions | None = None
    ) -> RecallResult | None:
        """Recall for the customer (None while nothing is known about them).

        With no query and an open conversation, its last turns are the query
        and are left out of the result (they are in the chat already).
        """
        ready = self._check()
        ref = self._recall_ref()
        profile = None if ref is None else self.sync.profiles.find(ref)
        if profile is None:
            return None
        return self.sync.recall(
            profile.id,
            query,
            conversation_id=self._id if ready and not query else None,
            options=options,
        )

    # -- async (the engine runs in worker threads, never on the event loop) -----
    async def _acheck(self) -> bool:
        if self._ready:
            return True
        try:
            conv = await self.aio.conversations.get(self._id)
        except NotFoundError:
            return False
        owner = None
        if self.customer is not None:
            owner = await self.aio.profiles.find(self.customer)
        return self._accept(conv, owner)

    async def amessages(self) -> list[Message]:
        if not await self._acheck():
            return []
        return await self.aio.conversations.list_messages(self._id)

    async def aadd(self, items: Sequence[MessageIn]) -> list[Message]:
        if not items:
            return []
        if await self._acheck():
            return await self.aio.conversations.add_messages(self._id, list(items))
        result = await self.aio.ingest(self._opening(items))
        self._profile_id = result.profile.id
        self._ready = True
        return result.messages

    async def aend(self) -> None:
        if await self._acheck():
            await self.aio.conversations.end(self._id)
        self._rotate()

    async def arecall(
        self, query: str | None, options: RecallOptions | None = None
    ) -> RecallResult | None:
        ready = await self._acheck()
        ref = self._recall_ref()
        profile = None if ref is None else await self.aio.profiles.find(ref)
        if profile is None:
            return None
        return await self.aio.recall(
            profile.id,
            query,
            conversation_id=self._id if ready and not query else None,
            options=options,
        )
