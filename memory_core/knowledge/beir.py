"""A BEIR corpus through the knowledge pipeline: every document becomes a page
of one documents source (title + text, chunked like any page), and a query's
ranking of documents is its ranking of chunks collapsed to each document's
best chunk (max score). Used by ``convmem eval beir``."""

from __future__ import annotations

from collections.abc import Sequence

from memory_core.backends.base import SearchMode
from memory_core.eval.beir import BeirDataset
from memory_core.knowledge.search import DEFAULT_ALPHA
from memory_core.knowledge.types import DocumentIn, KnowledgeHit, ProgressFn
from memory_core.memory import Memory
from memory_core.models import Source

__all__ = ["DOC_PREFIX", "collapse", "index_corpus", "search_documents"]

DOC_PREFIX = "beir:"
_CHUNKS_PER_DOC = 3  # chunks fetched per wanted document, before collapsing


def index_corpus(
    memory: Memory,
    data: BeirDataset,
    *,
    kb: str = "beir",
    progress: ProgressFn | None = None,
) -> Source:
    """Create knowledge base ``kb`` in the handle's tenant and index the corpus into it
    as one source."""
    memory.knowledge.bases.add(kb)
    documents = [
        DocumentIn(text=doc.text or doc.title or doc.id, title=doc.title, uri=DOC_PREFIX + doc.id)
        for doc in data.corpus.values()
    ]
    return memory.knowledge.sources.add(
        kb,
        documents=documents,
        title=f"BEIR corpus ({len(documents)} documents)",
        max_bytes=2_000_000_000,
        progress=progress,
    )


def collapse(hits: Sequence[KnowledgeHit], k: int) -> list[str]:
    """Document ids, best first, each ranked by its best chunk."""
    out: dict[str, None] = {}
    for hit in hits:  # already best first: the first chunk of a document is its max
        out.setdefault(hit.citation.uri.removeprefix(DOC_PREFIX), None)
        if len(out) == k:
            break
    return list(out)


def search_documents(
    memory: Memory,
    query: str,
    *,
    k: int = 100,
    kb: str = "beir",
    mode: SearchMode = SearchMode.HYBRID,
    alpha: float = DEFAULT_ALPHA,
) -> list[str]:
    """The ``k`` best document ids for ``query``."""
    hits = memory.knowledge.search(
        query, kb=kb, limit=min(1000, k * _CHUNKS_PER_DOC), mode=mode, alpha=alpha
    )
    return collapse(hits, k)
