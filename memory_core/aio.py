"""``AsyncMemory``: the async facade over :class:`memory_core.memory.Memory`.

Each method runs the one sync implementation in a worker thread, so there is a
single copy of the logic; signatures are those of ``Memory`` by construction
(and ``tests/test_async_parity.py`` pins it).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from memory_core.config import Settings
from memory_core.embedding.base import Embedder
from memory_core.memory import Memory

__all__ = ["AsyncMemory"]

P = ParamSpec("P")
T = TypeVar("T")


def _in_thread(
    method: Callable[Concatenate[Memory, P], T],
) -> Callable[Concatenate[AsyncMemory, P], Coroutine[Any, Any, T]]:
    async def call(self: AsyncMemory, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncMemory:
    """Async access to a :class:`Memory`; every public method is awaitable."""

    def __init__(self, memory: Memory) -> None:
        self.sync = memory

    @classmethod
    async def open(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | str | None = None,
        settings: Settings | None = None,
    ) -> AsyncMemory:
        memory = await asyncio.to_thread(Memory.open, path, embedder=embedder, settings=settings)
        return cls(memory)

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    close = _in_thread(Memory.close)
    create_tenant = _in_thread(Memory.create_tenant)
    list_tenants = _in_thread(Memory.list_tenants)
    delete_tenant = _in_thread(Memory.delete_tenant)
    identifier = _in_thread(Memory.identifier)
    find_profile = _in_thread(Memory.find_profile)
    get_profile = _in_thread(Memory.get_profile)
    list_profiles = _in_thread(Memory.list_profiles)
    identifiers = _in_thread(Memory.identifiers)
    create_profile = _in_thread(Memory.create_profile)
    link_identifier = _in_thread(Memory.link_identifier)
    merge_profiles = _in_thread(Memory.merge_profiles)
    set_trait = _in_thread(Memory.set_trait)
    traits = _in_thread(Memory.traits)
    delete_trait = _in_thread(Memory.delete_trait)
    start_conversation = _in_thread(Memory.start_conversation)
    ingest = _in_thread(Memory.ingest)
    add_messages = _in_thread(Memory.add_messages)
    add_message = _in_thread(Memory.add_message)
    end_conversation = _in_thread(Memory.end_conversation)
    get_conversation = _in_thread(Memory.get_conversation)
    list_conversations = _in_thread(Memory.list_conversations)
    get_message = _in_thread(Memory.get_message)
    list_messages = _in_thread(Memory.list_messages)
    delete_message = _in_thread(Memory.delete_message)
    delete_conversation = _in_thread(Memory.delete_conversation)
    delete_profile = _in_thread(Memory.delete_profile)
    recall = _in_thread(Memory.recall)
    # observations, summaries, extraction, trait schema
    extract = _in_thread(Memory.extract)
    extract_profile = _in_thread(Memory.extract_profile)
    extract_all = _in_thread(Memory.extract_all)
    extraction_status = _in_thread(Memory.extraction_status)
    observations = _in_thread(Memory.observations)
    get_observation = _in_thread(Memory.get_observation)
    remember_observation = _in_thread(Memory.remember_observation)
    history = _in_thread(Memory.history)
    explain = _in_thread(Memory.explain)
    retract_observation = _in_thread(Memory.retract_observation)
    delete_observation = _in_thread(Memory.delete_observation)
    summaries = _in_thread(Memory.summaries)
    get_summary = _in_thread(Memory.get_summary)
    declare_trait = _in_thread(Memory.declare_trait)
    trait_schema = _in_thread(Memory.trait_schema)
    trait_views = _in_thread(Memory.trait_views)
    trait_conflicts = _in_thread(Memory.trait_conflicts)
    create_knowledge_base = _in_thread(Memory.create_knowledge_base)
    list_knowledge_bases = _in_thread(Memory.list_knowledge_bases)
    get_knowledge_base = _in_thread(Memory.get_knowledge_base)
    delete_knowledge_base = _in_thread(Memory.delete_knowledge_base)
    add_source = _in_thread(Memory.add_source)
    list_sources = _in_thread(Memory.list_sources)
    get_source = _in_thread(Memory.get_source)
    refresh_source = _in_thread(Memory.refresh_source)
    remove_source = _in_thread(Memory.remove_source)
    search_knowledge = _in_thread(Memory.search_knowledge)
    # governance: policies, audit, retention, subject access, API keys
    get_policy = _in_thread(Memory.get_policy)
    set_policy = _in_thread(Memory.set_policy)
    redact = _in_thread(Memory.redact)
    audit = _in_thread(Memory.audit)
    export_audit = _in_thread(Memory.export_audit)
    gc = _in_thread(Memory.gc)
    export_profile = _in_thread(Memory.export_profile)
    create_api_key = _in_thread(Memory.create_api_key)
    list_api_keys = _in_thread(Memory.list_api_keys)
    revoke_api_key = _in_thread(Memory.revoke_api_key)
    authorize = _in_thread(Memory.authorize)
