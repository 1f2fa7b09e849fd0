"""Recall: resolve the profile and the query once, then ask each recall source
(:mod:`memory_core.recall_sources`) for its ranked candidates and render them
into a delimited context within the token budget.

A given query is embedded in a worker thread while the profile is resolved and
the lookups that do not need the embedding run (traits, keyword searches): the
embedder (onnxruntime) and SQLite release the GIL, so the two overlap."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext

from memory_core.backends.base import (
    Collection,
    SearchMode,
    SupportsSnapshot,
    Vectors,
    Where,
)
from memory_core.context import ProfileRef
from memory_core.errors import ValidationError
from memory_core.recall import (
    ItemType,
    RecallItem,
    RecallOptions,
    RecallQuery,
    RecallResult,
    render_context,
    token_counter,
)
from memory_core.services._base import Service
from memory_core.validation import optional_text, record_id

__all__ = ["Recaller"]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's query-embedding workers, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="convmem-recall")
        return _pool


class Recaller(Service):
    """:meth:`memory_core.Memory.recall` for this handle's tenant."""

    __slots__ = ()

    def recall(
        self,
        ref: ProfileRef,
        query: str | None = None,
        *,
        conversation_id: str | None = None,
        options: RecallOptions | None = None,
    ) -> RecallResult:
        if options is not None and not isinstance(options, RecallOptions):
            raise ValidationError(
                f"options must be a RecallOptions, not {type(options).__name__} "
                "(build one with RecallOptions(...))"
            )
        opts = options or RecallOptions()
        if opts.min_score is None:  # the store's default floor, for this embedder
            opts = opts.model_copy(update={"min_score": self._ctx.min_score()})
        limits = self._ctx.settings.limits
        query = optional_text(query, "query", limits.query_chars, limit="query_chars")
        if conversation_id is not None:
            record_id(conversation_id, "conversation")
        tenant = self._tenant
        if query is not None and not query.strip():
            query = None
        embedding: Future[Vectors] | None = None
        if query is not None and opts.mode is not SearchMode.KEYWORD:
            embedding = _executor().submit(self._ctx.query_vectors, tenant, [query])
        backend = self._backend
        with backend.snapshot() if isinstance(backend, SupportsSnapshot) else nullcontext():
            return self._recall(ref, query, conversation_id, opts, embedding)

    def _recall(
        self,
        ref: ProfileRef,
        query: str | None,
        conversation_id: str | None,
        opts: RecallOptions,
        embedding: Future[Vectors] | None,
    ) -> RecallResult:
        """:meth:`recall` after its arguments are checked, in one read snapshot."""
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        exclude: set[str] = set()
        if query is None and conversation_id is not None:
            conv = self._m.conversations.get(conversation_id)
            if conv.profile_id != profile.id:
                raise ValidationError(
                    f"conversation {conversation_id!r} belongs to another profile"
                )
            recent = self._backend.find(
                tenant,
                Collection.MESSAGES,
                Where(eq={"conversation_id": conv.id}),
                order_by="seq",
                descending=True,
                limit=opts.recent_turns,
            )
            query = "\n".join(m.text for m in reversed(recent)) or None
            exclude = {m.id for m in recent}
            if query is not None and opts.mode is not SearchMode.KEYWORD:
                embedding = _executor().submit(self._ctx.query_vectors, tenant, [query])
        q = RecallQuery(
            tenant=tenant,
            profile_id=profile.id,
            text=query,
            embedding=embedding,
            options=opts,
            exclude_ids=frozenset(exclude),
        )
        items: list[RecallItem] = []
        for source in self._ctx.recall_sources:
            if opts.limit(source.type):
                items += source.candidates(q)
        q.vector  # noqa: B018 - surfaces an embedding error even when no source needed it
        context, tokens, shown = render_context(
            profile.id,
            items,
            opts.token_budget,
            {ItemType.KNOWLEDGE: opts.knowledge_token_share},
            count=token_counter(self._ctx.embedder),
        )
        return RecallResult(
            tenant=tenant,
            profile_id=profile.id,
            query=query,
            items=tuple(items),
            context=context,
            context_tokens=tokens,
            context_ids=tuple(item.id for item in shown),
        )
