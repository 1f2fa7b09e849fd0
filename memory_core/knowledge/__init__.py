"""Enterprise knowledge: index FAQs, policies, product docs and web pages into
knowledge bases, and search them with citations.

Use it through ``memory.knowledge`` (``bases.add``, ``sources.add``,
``sources.refresh``, ``sources.delete``, ``search``; see
:mod:`memory_core.services.knowledge`; ``RecallOptions(include_knowledge=True)``
mixes knowledge into a recall) or the ``convmem knowledge`` commands. Importing
this package loads no optional dependency: HTML and web sources import
trafilatura/httpx, PDFs pypdf, when used.
"""

from memory_core.knowledge.chunking import ChunkingConfig
from memory_core.knowledge.search import DEFAULT_ALPHA
from memory_core.knowledge.types import Citation, DocumentIn, KnowledgeHit
from memory_core.models import (
    Chunk,
    CrawlOptions,
    KnowledgeBase,
    Source,
    SourceStatus,
    SourceType,
)

__all__ = [
    "DEFAULT_ALPHA",
    "ChunkingConfig",
    "Chunk",
    "Citation",
    "CrawlOptions",
    "DocumentIn",
    "KnowledgeBase",
    "KnowledgeHit",
    "Source",
    "SourceStatus",
    "SourceType",
]
