"""Knowledge in recall, and citations of knowledge chunks.

:func:`recall_knowledge` supplies the knowledge items of a recall (the
``KnowledgeSource`` of :mod:`memory_core.recall_sources` calls it).
:func:`citation` and :func:`citations` build the structured
:class:`~memory_core.knowledge.types.Citation` of stored chunks (for example
of the knowledge items a recall returned, which carry the chunk id);
:func:`hit` turns a scored chunk into the :class:`KnowledgeHit` that
``memory.knowledge.search`` returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from memory_core.backends.base import Collection
from memory_core.knowledge.search import DEFAULT_ALPHA, KnowledgeFilter, ScoredChunk
from memory_core.knowledge.types import Citation, KnowledgeHit
from memory_core.models import Chunk, Source
from memory_core.recall import ItemType, Provenance, RecallItem, RecallQuery

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = ["citation", "citations", "hit", "recall_knowledge"]


def citation(chunk: Chunk, source: Source | None = None) -> Citation:
    """The citation of a chunk; ``source`` (the chunk's source) gives its title."""
    return Citation(
        source_id=chunk.source_id,
        kb_id=chunk.kb_id,
        source_title=source.title if source is not None else "",
        uri=chunk.page_uri,
        page_title=chunk.page_title,
        heading_path=chunk.heading_path,
        position=chunk.position,
        page=chunk.page,
    )


def citations(ctx: Context, tenant: str, chunk_ids: Sequence[str]) -> dict[str, Citation]:
    """The citations of stored chunks, by chunk id (chunks that no longer exist are
    left out)."""
    if not chunk_ids:
        return {}
    chunks = [
        c
        for c in ctx.backend.get(tenant, Collection.CHUNKS, list(chunk_ids))
        if isinstance(c, Chunk)
    ]
    wanted = list(dict.fromkeys(c.source_id for c in chunks))
    sources = {
        s.id: s
        for s in ctx.backend.get(tenant, Collection.SOURCES, wanted)
        if isinstance(s, Source)
    }
    return {c.id: citation(c, sources.get(c.source_id)) for c in chunks}


def hit(s: ScoredChunk) -> KnowledgeHit:
    """A search result: the chunk's passage, its score (capped at 1) and citation."""
    return KnowledgeHit(
        id=s.chunk.id,
        text=s.chunk.passage,
        score=min(1.0, s.score),
        citation=citation(s.chunk, s.source),
    )


def recall_knowledge(ctx: Context, q: RecallQuery) -> list[RecallItem]:
    """The knowledge chunks of a recall, best first: from the knowledge bases named
    in ``q.options.knowledge_bases`` (ids or names in ``q.tenant``; all of the
    tenant's when None), each with its one-line citation as provenance (as stored:
    the context renderer escapes it, like every attribute). Empty when knowledge was
    not asked for or there is no query text."""
    opts = q.options
    limit = opts.limit(ItemType.KNOWLEDGE)
    if not limit or q.text is None:
        return []
    kbs = opts.knowledge_bases
    alpha = opts.alpha if "alpha" in opts.model_fields_set else DEFAULT_ALPHA
    scored = ctx.searcher.search(
        q.tenant,
        q.text,
        q.vector,
        KnowledgeFilter(kbs=tuple(kbs) if kbs else None),
        limit=limit,
        mode=opts.mode,
        alpha=alpha,
    )
    return [
        RecallItem(
            type=ItemType.KNOWLEDGE,
            id=s.chunk.id,
            text=s.chunk.passage,
            score=min(1.0, s.score),
            provenance=Provenance(source=str(citation(s.chunk, s.source))),
        )
        for s in scored
        if s.score >= opts.floor(0.0)  # knowledge scores have their own scale
    ]
