"""Per-conversation summaries (``memory.summaries``), written by extraction
(:meth:`memory_core.services.observations.Observations.extract`)."""

from __future__ import annotations

import builtins

from memory_core.backends.base import Collection, Where
from memory_core.context import ProfileRef
from memory_core.errors import NotFoundError
from memory_core.extraction.writing import summary_id
from memory_core.models import Summary
from memory_core.services._base import Service
from memory_core.validation import MAX_COUNT, optional_integer

__all__ = ["Summaries"]


class Summaries(Service):
    """The summaries of a tenant's conversations: ``get``, ``list``."""

    __slots__ = ()

    def list(self, ref: ProfileRef, *, limit: int | None = 20) -> builtins.list[Summary]:
        """A profile's conversation summaries, newest first."""
        limit = optional_integer(limit, "limit", 0, MAX_COUNT)
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        return self._backend.find(
            tenant,
            Collection.SUMMARIES,
            Where(eq={"profile_id": profile.id}),
            order_by="ts",
            descending=True,
            limit=limit,
        )

    def get(self, conversation_id: str) -> Summary:
        """The summary of one conversation."""
        tenant = self._tenant
        self._m.conversations.get(conversation_id)
        found = self._backend.get(tenant, Collection.SUMMARIES, [summary_id(conversation_id)])
        if not found:
            raise NotFoundError(
                f"conversation {conversation_id!r} has no summary yet; "
                "run memory.observations.extract() on it",
                kind="summary",
            )
        return found[0]
