"""The shared state and helpers of the engine's parts (see :mod:`memory_core.memory`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from memory_core.backends.base import Backend, Collection
from memory_core.config import DEFAULT_TENANT, Settings, load_settings
from memory_core.embedding.base import CachedEmbedder, Embedder
from memory_core.errors import NotFoundError, ValidationError
from memory_core.identity import normalize, parse_identifier
from memory_core.models import Identifier, Profile, Record
from memory_core.recall import RecallItem, RecallQuery

__all__ = [
    "EngineBase",
    "ProfileRef",
    "check_external_id",
    "check_tenant_name",
    "embedding_texts",
]

ProfileRef = str | Identifier
"""A profile id (``prf_...``), an :class:`Identifier`, or ``kind:value`` text."""

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EXTERNAL_ID = re.compile(r"^[^\s\x00]{1,200}$")


def check_tenant_name(tenant: str) -> str:
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise ValidationError(
            f"invalid tenant name {tenant!r}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def check_external_id(value: str, what: str) -> str:
    if not _EXTERNAL_ID.match(value):
        raise ValidationError(f"invalid {what} id {value!r}: 1-200 characters, no whitespace")
    return value


#: Words of each preceding turn embedded as context (bounds the cost of long emails).
CONTEXT_WORDS = 48


def _tail(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else "... " + " ".join(parts[-words:])


def embedding_texts(texts: Sequence[str], previous: str | None, context_turns: int) -> list[str]:
    """The texts embedded for consecutive messages of one conversation.

    Each message is embedded together with the end of up to ``context_turns``
    turns before it ("yes, that one" means nothing alone), at most
    ``CONTEXT_WORDS`` words of each; ``previous`` is the turn stored before
    ``texts[0]``, if any. Keyword indexes hold the message text alone.
    """
    window: list[str] = [previous] if previous is not None else []
    out: list[str] = []
    for text in texts:
        context = window[-context_turns:] if context_turns > 0 else []
        out.append("\n".join([*(_tail(c, CONTEXT_WORDS) for c in context), text]))
        window.append(text)
    return out


class EngineBase:
    """Holds the backend, the embedder and the settings; the parts of
    :class:`memory_core.memory.Memory` build on these helpers."""

    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        *,
        settings: Settings | None = None,
    ) -> None:
        self.backend = backend
        self.embedder: Embedder = (
            embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        )
        self.settings = settings or load_settings()
        self._known_tenants: set[str] = set()
        self._resolve_lock = threading.RLock()

    def _tenant(self, tenant: str) -> str:
        check_tenant_name(tenant)
        if tenant in self._known_tenants:
            return tenant
        if tenant == DEFAULT_TENANT:
            self.backend.ensure_tenant(tenant)
        elif tenant not in self.backend.list_tenants():
            raise NotFoundError(
                f"tenant {tenant!r} does not exist; create it with create_tenant({tenant!r}) "
                f"or `convmem tenants create {tenant}`"
            )
        self._known_tenants.add(tenant)
        return tenant

    def _parse(self, ref: str | Identifier) -> Identifier:
        if isinstance(ref, Identifier):
            return normalize(ref.kind, ref.value, default_region=self.settings.default_region)
        return parse_identifier(ref, default_region=self.settings.default_region)

    def _get_record(self, tenant: str, collection: Collection, rid: str) -> Record | None:
        found = self.backend.get(tenant, collection, [rid])
        return found[0] if found else None

    def _live_profile(self, tenant: str, profile_id: str) -> Profile:
        seen: set[str] = set()
        current = profile_id
        while True:
            record = self._get_record(tenant, Collection.PROFILES, current)
            if not isinstance(record, Profile):
                raise NotFoundError(f"profile {profile_id!r} does not exist in tenant {tenant!r}")
            if record.merged_into is None:
                return record
            if current in seen:  # pragma: no cover - merge chains are flattened on write
                raise NotFoundError(f"profile {profile_id!r} has a merge cycle")
            seen.add(current)
            current = record.merged_into

    def _forget_tenant_caches(self, tenant: str) -> None:
        """Drop in-process caches of the tenant's records after a deletion there
        (parts of the engine that keep such caches override this)."""

    # -- recall hooks: parts of the engine that add item types override these --
    def _recall_observations(self, q: RecallQuery) -> list[RecallItem]:
        """Observations for a recall (the extraction part provides them)."""
        return []

    def _recall_summaries(self, q: RecallQuery) -> list[RecallItem]:
        """Conversation summaries for a recall (the extraction part provides them)."""
        return []

    def _recall_knowledge(self, q: RecallQuery) -> list[RecallItem]:
        """Knowledge chunks for a recall (the knowledge part provides them)."""
        return []
