"""``AsyncMemory``: the async mirror of :class:`memory_core.memory.Memory`.

Every namespace and method of the sync handle exists here, awaitable; each call
runs the one sync implementation in a worker thread, so there is a single copy
of the logic. ``tests/test_async.py`` pins the two surfaces to one written list.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from memory_core.config import Settings
from memory_core.embedding.base import Embedder
from memory_core.knowledge.chunking import ChunkingConfig
from memory_core.memory import Memory
from memory_core.services import (
    ApiKeys,
    AuditLog,
    Conversations,
    Governance,
    Knowledge,
    KnowledgeBases,
    KnowledgeSources,
    Observations,
    Policies,
    Profiles,
    Summaries,
    Tenants,
    Traits,
)

if TYPE_CHECKING:
    from memory_core.extraction.base import Extractor
    from memory_core.extraction.reconcile import Reconciler

__all__ = ["AsyncMemory"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


class _Async(Generic[S]):
    """An async view of one sync service (``self.sync``)."""

    __slots__ = ("sync",)

    def __init__(self, sync: S) -> None:
        self.sync = sync


def _in_thread(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[_Async[S], P], Coroutine[Any, Any, T]]:
    async def call(self: _Async[S], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncProfiles(_Async[Profiles]):
    __slots__ = ()
    identifier = _in_thread(Profiles.identifier)
    find = _in_thread(Profiles.find)
    get = _in_thread(Profiles.get)
    list = _in_thread(Profiles.list)
    identifiers = _in_thread(Profiles.identifiers)
    add = _in_thread(Profiles.add)
    link = _in_thread(Profiles.link)
    merge = _in_thread(Profiles.merge)
    pending_merges = _in_thread(Profiles.pending_merges)
    confirm_merge = _in_thread(Profiles.confirm_merge)
    reject_merge = _in_thread(Profiles.reject_merge)
    unmerge = _in_thread(Profiles.unmerge)
    export = _in_thread(Profiles.export)
    delete = _in_thread(Profiles.delete)


class AsyncTraits(_Async[Traits]):
    __slots__ = ()
    set = _in_thread(Traits.set)
    list = _in_thread(Traits.list)
    views = _in_thread(Traits.views)
    conflicts = _in_thread(Traits.conflicts)
    delete = _in_thread(Traits.delete)
    declare = _in_thread(Traits.declare)
    schema = _in_thread(Traits.schema)


class AsyncConversations(_Async[Conversations]):
    __slots__ = ()
    add = _in_thread(Conversations.add)
    get = _in_thread(Conversations.get)
    list = _in_thread(Conversations.list)
    end = _in_thread(Conversations.end)
    delete = _in_thread(Conversations.delete)
    add_message = _in_thread(Conversations.add_message)
    add_messages = _in_thread(Conversations.add_messages)
    get_message = _in_thread(Conversations.get_message)
    list_messages = _in_thread(Conversations.list_messages)
    delete_message = _in_thread(Conversations.delete_message)


class AsyncObservations(_Async[Observations]):
    __slots__ = ()
    list = _in_thread(Observations.list)
    get = _in_thread(Observations.get)
    add = _in_thread(Observations.add)
    history = _in_thread(Observations.history)
    explain = _in_thread(Observations.explain)
    retract = _in_thread(Observations.retract)
    delete = _in_thread(Observations.delete)
    extract = _in_thread(Observations.extract)
    extract_profile = _in_thread(Observations.extract_profile)
    extract_all = _in_thread(Observations.extract_all)
    extract_in_background = _in_thread(Observations.extract_in_background)
    wait_background = _in_thread(Observations.wait_background)
    extraction_status = _in_thread(Observations.extraction_status)

    @property
    def extractor(self) -> Extractor:
        return self.sync.extractor

    @extractor.setter
    def extractor(self, value: Extractor) -> None:
        self.sync.extractor = value

    @property
    def reconciler(self) -> Reconciler:
        return self.sync.reconciler

    @reconciler.setter
    def reconciler(self, value: Reconciler) -> None:
        self.sync.reconciler = value


class AsyncSummaries(_Async[Summaries]):
    __slots__ = ()
    get = _in_thread(Summaries.get)
    list = _in_thread(Summaries.list)


class AsyncKnowledgeBases(_Async[KnowledgeBases]):
    __slots__ = ()
    add = _in_thread(KnowledgeBases.add)
    get = _in_thread(KnowledgeBases.get)
    list = _in_thread(KnowledgeBases.list)
    delete = _in_thread(KnowledgeBases.delete)


class AsyncKnowledgeSources(_Async[KnowledgeSources]):
    __slots__ = ()
    add = _in_thread(KnowledgeSources.add)
    get = _in_thread(KnowledgeSources.get)
    list = _in_thread(KnowledgeSources.list)
    refresh = _in_thread(KnowledgeSources.refresh)
    delete = _in_thread(KnowledgeSources.delete)


class AsyncKnowledge(_Async[Knowledge]):
    __slots__ = ("bases", "sources")
    search = _in_thread(Knowledge.search)

    def __init__(self, sync: Knowledge) -> None:
        super().__init__(sync)
        self.bases = AsyncKnowledgeBases(sync.bases)
        self.sources = AsyncKnowledgeSources(sync.sources)

    @property
    def chunking(self) -> ChunkingConfig:
        return self.sync.chunking

    @chunking.setter
    def chunking(self, value: ChunkingConfig) -> None:
        self.sync.chunking = value


class AsyncPolicies(_Async[Policies]):
    __slots__ = ()
    get = _in_thread(Policies.get)
    set = _in_thread(Policies.set)


class AsyncAuditLog(_Async[AuditLog]):
    __slots__ = ()
    list = _in_thread(AuditLog.list)
    export = _in_thread(AuditLog.export)


class AsyncApiKeys(_Async[ApiKeys]):
    __slots__ = ()
    add = _in_thread(ApiKeys.add)
    get = _in_thread(ApiKeys.get)
    list = _in_thread(ApiKeys.list)
    revoke = _in_thread(ApiKeys.revoke)


class AsyncGovernance(_Async[Governance]):
    __slots__ = ("audit", "keys", "policy")
    redact = _in_thread(Governance.redact)
    gc = _in_thread(Governance.gc)

    def __init__(self, sync: Governance) -> None:
        super().__init__(sync)
        self.policy = AsyncPolicies(sync.policy)
        self.audit = AsyncAuditLog(sync.audit)
        self.keys = AsyncApiKeys(sync.keys)


class AsyncTenants(_Async[Tenants]):
    __slots__ = ()
    list = _in_thread(Tenants.list)
    delete = _in_thread(Tenants.delete)
    authorize = _in_thread(Tenants.authorize)
    audit = _in_thread(Tenants.audit)
    gc = _in_thread(Tenants.gc)

    async def add(self, name: str) -> AsyncMemory:
        """Create a tenant (idempotent) and return its async handle."""
        return AsyncMemory(await asyncio.to_thread(self.sync.add, name))


class AsyncMemory(_Async[Memory]):
    """Async access to a :class:`Memory` handle; every operation is awaitable.

    ``AsyncMemory(memory)`` wraps a sync handle (kept as ``.sync``);
    :meth:`open` opens a store like :meth:`Memory.open`.
    """

    ingest = _in_thread(Memory.ingest)
    recall = _in_thread(Memory.recall)

    def __init__(self, memory: Memory) -> None:
        super().__init__(memory)
        self.profiles = AsyncProfiles(memory.profiles)
        self.traits = AsyncTraits(memory.traits)
        self.conversations = AsyncConversations(memory.conversations)
        self.observations = AsyncObservations(memory.observations)
        self.summaries = AsyncSummaries(memory.summaries)
        self.knowledge = AsyncKnowledge(memory.knowledge)
        self.governance = AsyncGovernance(memory.governance)
        self.tenants = AsyncTenants(memory.tenants)

    @classmethod
    async def open(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | str | None = None,
        extractor: Extractor | None = None,
        reconciler: Reconciler | None = None,
        settings: Settings | None = None,
    ) -> AsyncMemory:
        memory = await asyncio.to_thread(
            Memory.open,
            path,
            embedder=embedder,
            extractor=extractor,
            reconciler=reconciler,
            settings=settings,
        )
        return cls(memory)

    def tenant(self, name: str) -> AsyncMemory:
        """The async handle of tenant ``name`` over the same store."""
        return AsyncMemory(self.sync.tenant(name))

    @property
    def name(self) -> str:
        return self.sync.name

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncMemory tenant={self.sync.name!r}>"
