"""Enterprise knowledge: knowledge bases, sources and cited search
(``memory.knowledge``: ``bases``, ``sources``, ``search``, ``chunking``).

A source is identified by its knowledge base and URI (a file's ``file://``
URI, a site's start URL, ``inline:<hash>`` for content given directly, or the
``uri`` the caller names it by). Adding a source that already exists
refreshes it -- only what changed is re-indexed -- so re-running an import is
cheap and never duplicates anything. See :mod:`memory_core.knowledge.indexer`
for how updates stay atomic for searches.

Governance applies as everywhere in the engine: page text (titles, headings,
blocks) is redacted by the tenant's policy before it is chunked, hashed and
embedded; every write is audited (``create_knowledge_base``, ``add_source``,
``refresh_source``, ``remove_source``, ``delete_knowledge_base``: ids and
counts, never text); and deleted chunks leave nothing behind -- removing a
source or a knowledge base, or a refresh that drops or replaces pages, forgets
their cached embeddings and purges their text from the backend's files
(:mod:`memory_core.governance.erasure`).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from memory_core import validation
from memory_core.backends.base import Collection, SearchMode, Where
from memory_core.config import Limits
from memory_core.errors import (
    ConflictError,
    CrawlError,
    NotFoundError,
    NothingToIndex,
    ValidationError,
)
from memory_core.governance import erasure
from memory_core.governance.screening import redact_pages, redact_texts
from memory_core.knowledge.crawl import CrawlResult, crawl, normalize_url
from memory_core.knowledge.indexer import Indexer, IndexReport
from memory_core.knowledge.parse import (
    decode_text,
    infer_type,
    parse_bytes,
    parse_html,
    parse_markdown,
    parse_pdf,
    parse_text,
    read_file,
    type_from_extension,
)
from memory_core.knowledge.recalling import hit
from memory_core.knowledge.search import DEFAULT_ALPHA, KnowledgeFilter
from memory_core.knowledge.types import DocumentIn, KnowledgeHit, Page, ProgressFn
from memory_core.models import (
    CrawlOptions,
    DeletionReceipt,
    KnowledgeBase,
    Source,
    SourceStatus,
    SourceType,
    new_id,
)
from memory_core.services._base import Service

if TYPE_CHECKING:
    from memory_core.knowledge.chunking import ChunkingConfig
    from memory_core.memory import Memory

__all__ = ["Knowledge", "KnowledgeBases", "KnowledgeSources"]

_NAME = re.compile(r"^[^\x00-\x1f]{1,100}$")
_TAG = re.compile(r"^[\w.:/-]{1,64}$")


def _check_name(name: str) -> str:
    validation.text(name, "knowledge base name", 100, required=True, single_line=True)
    if not _NAME.fullmatch(name) or name != name.strip():
        raise ValidationError(
            f"invalid knowledge base name {name!r}: 1-100 characters, no control "
            "characters or surrounding spaces"
        )
    if name.startswith("kb_"):
        raise ValidationError(f"knowledge base names may not start with 'kb_' (ids do): {name!r}")
    return name


def _check_tags(tags: Sequence[str] | None, limits: Limits) -> tuple[str, ...] | None:
    if tags is None:
        return None
    given = validation.items(tags, "tags", limits.list_items)
    for tag in given:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ValidationError(
                f"invalid tag {validation.shown(tag)}: 1-64 letters, digits or '_', '-', '.', "
                "':', '/'"
            )
    return tuple(dict.fromkeys(given))


def _check_kb(kb: object) -> str:
    """A knowledge base reference: its name or id."""
    return validation.text(kb, "knowledge base", 200, required=True, single_line=True)


def _content_bytes(content: object, max_bytes: int) -> bytes:
    """Content given as text or bytes, within ``max_bytes``."""
    if isinstance(content, str):
        data = validation.clean_text(content, "content").encode("utf-8")
    elif isinstance(content, bytes | bytearray):
        data = bytes(content)
    else:
        raise ValidationError(f"content must be text or bytes, not {type(content).__name__}")
    if len(data) > max_bytes:
        raise ValidationError(
            f"the content is {len(data):,} bytes, over the {max_bytes:,}-byte limit "
            f"(max_bytes=, or {validation.limits_hint('source_bytes')})"
        )
    return data


def _document_page(doc: DocumentIn, index: int) -> Page:
    uri = doc.uri or f"doc:{index}"
    if doc.format == "markdown":
        return parse_markdown(doc.text, uri=uri, title=doc.title)
    if doc.format == "html":
        return parse_html(doc.text, uri=uri, title=doc.title)
    return parse_text(doc.text, uri=uri, title=doc.title or uri)


def _document_pages(documents: Sequence[DocumentIn], max_bytes: int, limits: Limits) -> list[Page]:
    pages: list[Page] = []
    size = 0
    for index, doc in enumerate(validation.items(documents, "documents", validation.MAX_COUNT)):
        if not isinstance(doc, DocumentIn):
            raise ValidationError(f"documents[{index}] is not a DocumentIn")
        where = f"documents[{index}]"
        validation.clean_text(doc.text, f"{where}.text")
        validation.text(doc.title, f"{where}.title", limits.title_chars, limit="title_chars")
        validation.optional_text(
            doc.uri, f"{where}.uri", limits.uri_chars, limit="uri_chars", single_line=True
        )
        size += len(doc.text.encode("utf-8"))
        if size > max_bytes:
            raise ValidationError(
                f"the documents exceed the {max_bytes:,}-byte limit "
                f"(max_bytes=, or {validation.limits_hint('source_bytes')})"
            )
        pages.append(_document_page(doc, index))
    uris = [p.uri for p in pages]
    if len(set(uris)) != len(uris):
        raise ValidationError("two documents have the same uri")
    return pages


def _web_pages(result: CrawlResult) -> tuple[list[Page], list[str], list[str]]:
    """Parsed pages, notes on what was skipped, and URIs to keep from before."""
    pages: list[Page] = []
    notes: list[str] = []
    for fetched in result.pages:
        try:
            if fetched.kind == "html":
                pages.append(parse_html(fetched.data, uri=fetched.url))
            elif fetched.kind == "pdf":
                pages.append(parse_pdf(fetched.data, uri=fetched.url))
            else:
                text = decode_text(fetched.data, fetched.url)
                parse = parse_markdown if fetched.kind == "markdown" else parse_text
                pages.append(parse(text, uri=fetched.url))
        except ValidationError as exc:
            notes.append(f"{fetched.url}: {exc}")
    notes += [f"{url}: {why}" for url, why in result.skipped]
    notes += [f"{url}: {why} (kept its last indexed version)" for url, why in result.transient]
    return pages, notes, [url for url, _ in result.transient]


class Knowledge(Service):
    """Enterprise knowledge of this handle's tenant: knowledge bases
    (``bases``), their sources (``sources``: files, content, documents, web
    sites) and cited search (:meth:`search`)."""

    __slots__ = ("bases", "sources")

    bases: KnowledgeBases
    """Knowledge bases: ``add``, ``list``, ``get``, ``delete``."""
    sources: KnowledgeSources
    """Sources of knowledge bases: ``add``, ``list``, ``get``, ``refresh``, ``delete``."""

    def __init__(self, memory: Memory) -> None:
        super().__init__(memory)
        self.bases = KnowledgeBases(memory)
        self.sources = KnowledgeSources(memory)

    @property
    def chunking(self) -> ChunkingConfig:
        """How pages are cut into chunks (changing it re-indexes pages on refresh).
        Shared by every handle over the same store."""
        return self._ctx.chunking

    @chunking.setter
    def chunking(self, value: ChunkingConfig) -> None:
        self._ctx.chunking = value

    def search(
        self,
        query: str,
        *,
        kb: str | Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
        mode: SearchMode | str = SearchMode.HYBRID,
        alpha: float = DEFAULT_ALPHA,
    ) -> list[KnowledgeHit]:
        """The chunks that best answer ``query``, best first, each with its citation.

        Filters: knowledge bases (ids or names), source ids, tags (sources
        carrying any of them). ``min_score`` drops hits scoring below it
        (scores are in [0, 1]); ``alpha`` weights the vector side of hybrid search.
        """
        limits = self._ctx.settings.limits
        validation.text(query, "query", limits.query_chars, limit="query_chars", required=True)
        limit = validation.integer(limit, "limit", 1, 1000)
        min_score = validation.number(min_score, "min_score", 0.0, 1.0)
        alpha = validation.number(alpha, "alpha", 0.0, 1.0)
        mode = validation.choice(SearchMode, mode, "mode")
        kbs = None
        if kb is not None:
            given = [kb] if isinstance(kb, str) else validation.items(kb, "kb", limits.list_items)
            kbs = tuple(_check_kb(k) for k in given)
        if sources is not None:
            sources = validation.strings(
                sources, "sources", max_items=limits.list_items, max_chars=200
            )
        tenant = self._tenant
        flt = KnowledgeFilter(
            kbs=kbs,
            sources=tuple(sources) if sources is not None else None,
            tags=_check_tags(tags, limits),
        )
        vector = None
        if mode is not SearchMode.KEYWORD:
            vector = self._ctx.query_vectors(self._tenant, [query])
        scored = self._ctx.searcher.search(
            tenant, query, vector, flt, limit=limit, mode=mode, alpha=alpha
        )
        return [hit(s) for s in scored if s.score >= min_score]


class KnowledgeBases(Service):
    """The knowledge bases of this handle's tenant (``memory.knowledge.bases``)."""

    __slots__ = ()

    def add(self, name: str, *, description: str = "") -> KnowledgeBase:
        """Create a knowledge base; names are unique within a tenant (ConflictError)."""
        limits = self._ctx.settings.limits
        _check_name(name)
        validation.text(
            description, "description", limits.description_chars, limit="description_chars"
        )
        tenant = self._tenant
        with self._backend.batch():
            if self._backend.find(tenant, Collection.KNOWLEDGE_BASES, Where(eq={"name": name})):
                raise ConflictError(
                    f"knowledge base {name!r} already exists in tenant {tenant!r}",
                    kind="knowledge_base",
                )
            kb = KnowledgeBase(id=new_id("kb"), tenant=tenant, name=name, description=description)
            self._backend.upsert(tenant, Collection.KNOWLEDGE_BASES, [kb])
            self._ctx.audit(tenant, "create_knowledge_base", f"knowledge_base:{kb.id}")
        return kb

    def list(self) -> builtins.list[KnowledgeBase]:
        """The tenant's knowledge bases, by name."""
        tenant = self._tenant
        found = self._backend.find(tenant, Collection.KNOWLEDGE_BASES, order_by="name")
        return [kb for kb in found if isinstance(kb, KnowledgeBase)]

    def get(self, kb: str) -> KnowledgeBase:
        """A knowledge base by id (``kb_...``) or name."""
        _check_kb(kb)
        tenant = self._tenant
        if kb.startswith("kb_"):
            found = self._backend.get(tenant, Collection.KNOWLEDGE_BASES, [kb])
        else:
            found = self._backend.find(tenant, Collection.KNOWLEDGE_BASES, Where(eq={"name": kb}))
        if not found or not isinstance(found[0], KnowledgeBase):
            raise NotFoundError(
                f"knowledge base {kb!r} does not exist in tenant {tenant!r}",
                kind="knowledge_base",
            )
        return found[0]

    def delete(self, kb: str) -> DeletionReceipt:
        """Delete a knowledge base with all its sources and chunks, from every index;
        their text is purged from the store's files and the deletion audited."""
        tenant = self._tenant
        with self._backend.batch():
            record = self.get(kb)
            where = Where(eq={"kb_id": record.id})
            counts = {
                Collection.CHUNKS.value: self._backend.delete(tenant, Collection.CHUNKS, where),
                Collection.SOURCES.value: self._backend.delete(tenant, Collection.SOURCES, where),
                Collection.KNOWLEDGE_BASES.value: self._backend.delete(
                    tenant, Collection.KNOWLEDGE_BASES, Where(eq={"id": record.id})
                ),
            }
        receipt = DeletionReceipt(
            tenant=tenant, target=f"knowledge_base:{record.id}", deleted=counts
        )
        self._ctx.forget_tenant_caches(tenant)
        return self._ctx.erased(receipt, "delete_knowledge_base")


class KnowledgeSources(Service):
    """The sources of this handle's knowledge bases (``memory.knowledge.sources``)."""

    __slots__ = ()

    def _indexer(self, tenant: str, progress: ProgressFn | None = None) -> Indexer:
        return Indexer(self._backend, self._ctx.embedder, tenant, self._ctx.chunking, progress)

    def add(
        self,
        kb: str,
        location: str | Path | None = None,
        *,
        source_type: SourceType | str | None = None,
        content: str | bytes | None = None,
        documents: Sequence[DocumentIn] | None = None,
        uri: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        crawl: CrawlOptions | None = None,
        max_bytes: int | None = None,
        progress: ProgressFn | None = None,
    ) -> Source:
        """Add a source to a knowledge base (by id or name) and index it.

        Give exactly one of: ``location`` (a file path -- type from its
        extension unless ``source_type`` -- or an http(s) URL, crawled per
        ``crawl``), ``content`` (text or bytes of ``source_type``, default
        text) or ``documents`` (several documents, refreshed one by one).

        A file over ``max_bytes`` (default ``Settings.limits.source_bytes``, 50 MB;
        it bounds content and documents too) or that cannot be parsed raises
        ValidationError and nothing is stored. A web source that cannot be
        crawled is stored with status ``failed`` and the reason in ``error``.
        Adding a source whose URI the knowledge base already has refreshes it
        (only changed pages are re-indexed; ``title``/``tags``/``crawl`` given
        here replace the stored ones); a different type there is a ConflictError.
        """
        limits = self._ctx.settings.limits
        if max_bytes is None:
            max_bytes = limits.source_bytes
        max_bytes = validation.integer(max_bytes, "max_bytes", 1, 2**62)
        if isinstance(location, os.PathLike):
            location = os.fspath(location)
        if location is not None:
            location = validation.text(location, "location", 4096, required=True, single_line=True)
        kind = None if source_type is None else validation.choice(SourceType, source_type, "type")
        uri = validation.optional_text(
            uri, "uri", limits.uri_chars, limit="uri_chars", single_line=True
        )
        title = validation.optional_text(
            title, "title", limits.title_chars, limit="title_chars", single_line=True
        )
        if crawl is not None and not isinstance(crawl, CrawlOptions):
            raise ValidationError(f"crawl must be a CrawlOptions, not {type(crawl).__name__}")
        validation.callback(progress, "progress")
        tenant = self._tenant
        base = self._m.knowledge.bases.get(kb)
        tags = _check_tags(tags, limits)
        if title:  # the caller's title is stored and indexed like page titles
            title = redact_texts(self._ctx, tenant, [title])[0]
        if sum(x is not None for x in (location, content, documents)) != 1:
            raise ValidationError(
                "give exactly one of: a location (path or URL), content, documents"
            )
        pages: builtins.list[Page] | None = None
        if documents is not None:
            if isinstance(documents, str | bytes) or not documents:
                raise ValidationError("documents must be a non-empty list of DocumentIn")
            kind = kind or SourceType.TEXT
            if uri is None and not title:
                raise ValidationError("a documents source needs a uri or a title to be known by")
            uri = uri or f"documents:{title}"
            pages = _document_pages(documents, max_bytes, limits)
        elif content is not None:
            data = _content_bytes(content, max_bytes)
            kind = kind or (type_from_extension(uri) if uri else None) or SourceType.TEXT
            uri = uri or f"inline:{hashlib.sha256(data).hexdigest()[:24]}"
            pages = [parse_bytes(data, kind, uri=uri, title=title or "")]
        else:
            text = str(location)
            if kind is SourceType.WEB or re.match(r"^https?://", text, re.IGNORECASE):
                kind, uri = SourceType.WEB, normalize_url(text)
            else:
                path = Path(text).expanduser().resolve()
                kind = kind or infer_type(text)
                uri = path.as_uri()
                pages = [parse_bytes(read_file(path, max_bytes), kind, uri=uri, title=title or "")]
        if kind is SourceType.WEB and pages is not None:
            raise ValidationError("a web source is given by its URL as the location")
        assert uri is not None
        source, created = self._register(tenant, base, kind, uri, title, tags, crawl)
        action = "add_source" if created else "refresh_source"
        return self._index(tenant, source, pages, progress, action)

    def _register(
        self,
        tenant: str,
        kb: KnowledgeBase,
        kind: SourceType,
        uri: str,
        title: str | None,
        tags: tuple[str, ...] | None,
        crawl_options: CrawlOptions | None,
    ) -> tuple[Source, bool]:
        """The existing source for (kb, uri), updated, or a new queued one (True)."""
        indexer = self._indexer(tenant)
        with self._backend.batch():
            found = self._backend.find(
                tenant, Collection.SOURCES, Where(eq={"kb_id": kb.id, "uri": uri})
            )
            if found and isinstance(found[0], Source):
                existing = found[0]
                if existing.type is not kind:
                    raise ConflictError(
                        f"{uri} is already source {existing.id} of type {existing.type.value} "
                        f"in {kb.name!r}; remove it first to add it as {kind.value}",
                        kind="source",
                    )
                changes: dict[str, object] = {}
                if title is not None:
                    changes["title"] = title
                if tags is not None:
                    changes["tags"] = tags
                if crawl_options is not None:
                    changes["crawl"] = crawl_options
                if not changes:
                    return existing, False
                return indexer.save(existing.model_copy(update=changes)), False
            source = Source(
                id=new_id("src"),
                tenant=tenant,
                kb_id=kb.id,
                type=kind,
                uri=uri,
                title=title or "",
                tags=tags or (),
                crawl=(crawl_options or CrawlOptions()) if kind is SourceType.WEB else None,
            )
            return indexer.save(source), True

    def _audit_indexed(
        self, tenant: str, action: str, source: Source, report: IndexReport | None = None
    ) -> None:
        """The audit event of one indexing run: ids, status and counts, no text."""
        details: dict[str, int | str] = {
            "kb": source.kb_id,
            "type": source.type.value,
            "status": source.status.value,
            "version": source.version,
            "chunks": source.chunk_count,
        }
        if report is not None:
            details |= {
                "pages": report.pages,
                "added": report.chunks_added,
                "removed": report.chunks_removed,
            }
        self._ctx.audit(tenant, action, f"source:{source.id}", details)

    def _failed(self, indexer: Indexer, action: str, source_id: str, reason: str) -> Source | None:
        """Mark the source failed (staged chunks dropped) and audit the run; None
        if the source is gone."""
        with self._backend.batch():
            failed = indexer.fail(source_id, reason)
            if failed is not None:
                self._audit_indexed(indexer.tenant, action, failed)
        return failed

    def _index(
        self,
        tenant: str,
        source: Source,
        pages: builtins.list[Page] | None,
        progress: ProgressFn | None,
        action: str,
    ) -> Source:
        """Claim, fetch (web), index and publish; failures are recorded on the source.
        The run is audited as ``action``; chunks it removed are purged."""
        indexer = self._indexer(tenant, progress)
        claimed = indexer.claim(source.id)
        try:
            notes: builtins.list[str] = []
            keep: builtins.list[str] = []
            if pages is None:
                if claimed.type is not SourceType.WEB:
                    raise ValidationError(f"source {claimed.id} has no content to index")
                result = crawl(claimed.uri, claimed.crawl or CrawlOptions(), progress=progress)
                pages, notes, keep = _web_pages(result)
            pages = redact_pages(self._ctx, tenant, pages)  # tenant policy: before chunking
            title = claimed.title or (pages[0].title if pages else "") or claimed.uri
            published, report = indexer.index(
                claimed,
                pages,
                keep=keep,
                notes=notes,
                title=title,
                on_publish=lambda done, rep: self._audit_indexed(tenant, action, done, rep),
            )
        except (CrawlError, NothingToIndex, ValidationError) as exc:
            failed = self._failed(indexer, action, claimed.id, str(exc))
            if failed is None:
                raise NotFoundError(
                    f"source {claimed.id!r} was removed while indexing", kind="source"
                ) from None
            return failed
        except ConflictError:
            raise
        except BaseException as exc:
            failed = self._failed(indexer, action, claimed.id, f"{type(exc).__name__}: {exc}")
            if failed is None:  # removed meanwhile: leave nothing behind
                self._backend.delete(tenant, Collection.CHUNKS, Where(eq={"source_id": claimed.id}))
                erasure.purge(self._ctx)
            raise
        if report.chunks_removed:  # replaced or vanished pages: their text goes for real
            erasure.forget_cached(self._ctx, report.removed_texts)
            erasure.purge(self._ctx)
        return published

    def list(
        self, kb: str | None = None, *, status: SourceStatus | str | None = None
    ) -> builtins.list[Source]:
        """Sources of one knowledge base (or all), oldest first by id."""
        tenant = self._tenant
        where = Where()
        if kb is not None:
            where = Where(eq={"kb_id": self._m.knowledge.bases.get(kb).id})
        if status is not None:
            status = validation.choice(SourceStatus, status, "status")
            where = where.and_(Where(eq={"status": status.value}))
        found = self._backend.find(tenant, Collection.SOURCES, where)
        return sorted(
            (s for s in found if isinstance(s, Source)), key=lambda s: (s.created_at, s.id)
        )

    def get(self, source_id: str) -> Source:
        """A source by id."""
        validation.record_id(source_id, "source")
        tenant = self._tenant
        return self._indexer(tenant).get_source(source_id)

    def refresh(
        self,
        source_id: str,
        *,
        content: str | bytes | None = None,
        documents: Sequence[DocumentIn] | None = None,
        progress: ProgressFn | None = None,
    ) -> Source:
        """Re-read a source (re-crawl a site, re-read a file) and re-index what
        changed. Sources added as ``content``/``documents`` are refreshed by
        passing the new content. A failure is recorded on the source (status
        ``failed`` with the reason) and its last published version stays."""
        limits = self._ctx.settings.limits
        validation.callback(progress, "progress")
        tenant = self._tenant
        source = self.get(source_id)
        pages: builtins.list[Page] | None = None
        if documents is not None:
            pages = _document_pages(documents, limits.source_bytes, limits)
        elif content is not None:
            data = _content_bytes(content, limits.source_bytes)
            pages = [parse_bytes(data, source.type, uri=source.uri, title=source.title)]
        elif source.type is not SourceType.WEB:
            if not source.uri.startswith("file://"):
                raise ValidationError(
                    f"source {source_id} was given as content; refresh it with content= or "
                    "documents="
                )
            path = Path(unquote(urlsplit(source.uri).path))
            try:
                data = read_file(path, limits.source_bytes)
                pages = [parse_bytes(data, source.type, uri=source.uri, title=source.title)]
            except ValidationError as exc:
                indexer = self._indexer(tenant)
                indexer.claim(source.id)
                failed = self._failed(indexer, "refresh_source", source.id, str(exc))
                if failed is None:
                    raise NotFoundError(
                        f"source {source.id!r} was removed meanwhile", kind="source"
                    ) from None
                return failed
        return self._index(tenant, source, pages, progress, "refresh_source")

    def delete(self, source_id: str) -> DeletionReceipt:
        """Remove a source and every chunk of it, from every index; their text is
        purged from the store's files and the removal audited."""
        validation.record_id(source_id, "source")
        tenant = self._tenant
        indexer = self._indexer(tenant)
        with self._backend.batch():
            source = indexer.get_source(source_id)
            chunks = self._backend.delete(
                tenant, Collection.CHUNKS, Where(eq={"source_id": source.id})
            )
            sources = self._backend.delete(tenant, Collection.SOURCES, Where(eq={"id": source.id}))
            indexer.touch_kb(source.kb_id)
        receipt = DeletionReceipt(
            tenant=tenant,
            target=f"source:{source.id}",
            deleted={Collection.CHUNKS.value: chunks, Collection.SOURCES.value: sources},
        )
        self._ctx.forget_tenant_caches(tenant)
        return self._ctx.erased(receipt, "remove_source")
