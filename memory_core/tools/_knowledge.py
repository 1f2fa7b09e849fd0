"""The knowledge-base management tools, for an administrator's agent:
``list_knowledge_sources``, ``add_knowledge_source`` (a web site by URL, or
text), ``refresh_knowledge_source`` and ``remove_knowledge_source``.

Only URLs and text are accepted: a tool never reads a file of the machine the
server runs on (files are added with ``convmem knowledge add``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import (
    CrawlOptions,
    DeletionReceipt,
    KnowledgeBase,
    Source,
    SourceStatus,
    SourceType,
)
from memory_core.tools._base import KnowledgeBaseRef, Model

__all__ = [
    "AddKnowledgeSourceInput",
    "KnowledgeBaseView",
    "KnowledgeSourcesOutput",
    "ListKnowledgeSourcesInput",
    "RefreshKnowledgeSourceInput",
    "RemoveKnowledgeSourceInput",
    "SourceOut",
    "add_knowledge_source",
    "knowledge_base_view",
    "list_knowledge_sources",
    "refresh_knowledge_source",
    "remove_knowledge_source",
    "source_out",
]

HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
SourceTag = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SourceOut(Model):
    id: str
    kb_id: str
    title: str
    type: SourceType
    uri: str = Field(description="The file, web site or document URI it was added from.")
    status: SourceStatus = Field(
        description="queued or processing (being indexed), ready (searchable), failed "
        "(see error; its last indexed version stays searchable)."
    )
    error: str | None
    version: int = Field(description="The published version (0: nothing searchable yet).")
    pages: int
    chunks: int
    tags: list[str]
    notes: list[str]
    updated_at: datetime


def source_out(s: Source) -> SourceOut:
    return SourceOut(
        id=s.id,
        kb_id=s.kb_id,
        title=s.title,
        type=s.type,
        uri=s.uri,
        status=s.status,
        error=s.error,
        version=s.version,
        pages=s.page_count,
        chunks=s.chunk_count,
        tags=list(s.tags),
        notes=list(s.notes),
        updated_at=s.updated_at,
    )


class KnowledgeBaseView(Model):
    id: str
    name: str
    description: str
    created_at: datetime
    sources: list[SourceOut] = Field(description="Oldest first.")


def knowledge_base_view(kb: KnowledgeBase, sources: list[Source]) -> KnowledgeBaseView:
    return KnowledgeBaseView(
        id=kb.id,
        name=kb.name,
        description=kb.description,
        created_at=kb.created_at,
        sources=[source_out(s) for s in sources],
    )


# -- list_knowledge_sources --------------------------------------------------------


class ListKnowledgeSourcesInput(Model):
    knowledge_base: KnowledgeBaseRef | None = Field(default=None, description="Name or id.")
    status: SourceStatus | None = None


class KnowledgeSourcesOutput(Model):
    knowledge_bases: list[KnowledgeBaseView] = Field(description="By name, with their sources.")


def list_knowledge_sources(
    memory: Memory, request: ListKnowledgeSourcesInput
) -> KnowledgeSourcesOutput:
    """The knowledge bases with their sources (id, status, error, version, counts);
    with ``status``, only the bases having sources in it, and only those sources."""
    knowledge = memory.knowledge
    if request.knowledge_base is not None:
        bases = [knowledge.bases.get(request.knowledge_base)]
    else:
        bases = sorted(knowledge.bases.list(), key=lambda kb: kb.name)
    by_kb: dict[str, list[Source]] = {}
    for source in knowledge.sources.list(status=request.status):
        by_kb.setdefault(source.kb_id, []).append(source)
    views = [knowledge_base_view(kb, by_kb.get(kb.id, [])) for kb in bases]
    if request.status is not None:
        views = [v for v in views if v.sources]
    return KnowledgeSourcesOutput(knowledge_bases=views)


# -- add / refresh / remove --------------------------------------------------------


class AddKnowledgeSourceInput(Model):
    knowledge_base: KnowledgeBaseRef = Field(description="Name (new: created) or id.")
    url: HttpUrl | None = Field(
        default=None,
        description="A site to crawl; with text, where the text is published (not crawled).",
    )
    text: str | None = Field(default=None, min_length=1, description="Markdown or plain text.")
    title: str | None = Field(default=None, max_length=200, description="Needed for text alone.")
    source_tags: list[SourceTag] = Field(default_factory=list, max_length=20)
    max_pages: int = Field(default=50, ge=1, le=1000)


class RefreshKnowledgeSourceInput(Model):
    source_id: str
    text: str | None = Field(
        default=None, min_length=1, description="A text source's new text (a site is re-crawled)."
    )


class RemoveKnowledgeSourceInput(Model):
    source_id: str


def _base(memory: Memory, ref: str) -> KnowledgeBase:
    """The knowledge base ``ref`` (id or name), created when a name is new."""
    try:
        return memory.knowledge.bases.get(ref)
    except NotFoundError:
        if ref.startswith("kb_"):
            raise
        return memory.knowledge.bases.add(ref)


def add_knowledge_source(memory: Memory, request: AddKnowledgeSourceInput) -> SourceOut:
    """Add a web site (crawled now) or a text to a knowledge base and index it; a URL
    the knowledge base already has is refreshed instead. A site that cannot be
    crawled is stored with status failed and the reason in error."""
    if request.url is None and request.text is None:
        raise ValidationError("give url (a web site to crawl) or text (the content itself)")
    if request.text is not None and request.url is None and not request.title:
        raise ValidationError("a text source needs a title (or the url it is published at)")
    kb = _base(memory, request.knowledge_base)
    tags = request.source_tags or None
    if request.text is None:
        source = memory.knowledge.sources.add(
            kb.id,
            request.url,
            title=request.title,
            tags=tags,
            crawl=CrawlOptions(max_pages=request.max_pages),
        )
    else:
        source = memory.knowledge.sources.add(
            kb.id,
            source_type=SourceType.MARKDOWN,
            content=request.text,
            uri=request.url,
            title=request.title,
            tags=tags,
        )
    return source_out(source)


def refresh_knowledge_source(memory: Memory, request: RefreshKnowledgeSourceInput) -> SourceOut:
    """Index a source again: crawl a site again, or replace a text source's text (only
    what changed is re-indexed; the last version stays searchable if it fails)."""
    source = memory.knowledge.sources.get(request.source_id)
    if source.type is SourceType.WEB and request.text is not None:
        raise ValidationError(
            f"source {source.id} is a web site: it is crawled again, give no text"
        )
    kept_as_content = source.type is not SourceType.WEB and not source.uri.startswith("file://")
    if kept_as_content and request.text is None:
        raise ValidationError(f"source {source.id} was added as text: give its new text")
    return source_out(memory.knowledge.sources.refresh(source.id, content=request.text))


def remove_knowledge_source(memory: Memory, request: RemoveKnowledgeSourceInput) -> DeletionReceipt:
    """Remove a source and every passage of it, from every index."""
    return memory.knowledge.sources.delete(request.source_id)
