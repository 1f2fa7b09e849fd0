"""Indexing a source's pages: only what changed, staged, then published at once.

Visibility rule: a chunk is searchable while its ``since`` (the source
version that wrote it) is one of its source's ``generations``. An update:

1. **Claim** the source (status ``processing``, a heartbeat lease, so two
   writers never index one source at once; a stale lease is taken over and
   its leftovers removed).
2. **Diff** the new pages against the live chunks by page URI and content
   hash: unchanged pages keep their chunks (nothing re-embedded), changed and
   new pages are chunked and embedded, pages that disappeared go.
3. **Stage** the new chunks under ``pending_version = version + 1`` in small
   transactions. They are invisible: that version is not a live generation.
4. **Publish** in one transaction: delete the old chunks of changed and
   removed pages, set ``version``/``generations`` to include the new one,
   bump the knowledge base's ``epoch``. A search sees the old version or the
   new one, never a mix and never nothing (see :mod:`memory_core.knowledge.search`).

A failure removes the staged chunks and marks the source ``failed`` with the
reason; the last published version stays searchable.

The indexer only writes; the engine (:mod:`memory_core.services.knowledge`) audits
each run (``on_publish`` is called inside the publishing transaction) and,
when a run removed chunks, forgets their cached embeddings
(:attr:`IndexReport.removed_texts`) and purges their text from the backend's files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from memory_core.backends.base import Backend, Collection, Vectors, Where
from memory_core.embedding.base import Embedder
from memory_core.errors import ConflictError, NotFoundError, NothingToIndex
from memory_core.knowledge.chunking import ChunkingConfig, Piece, chunk_page, context_line
from memory_core.knowledge.types import Page, ProgressFn
from memory_core.models import Chunk, KnowledgeBase, Source, SourceStatus, new_id, utcnow

__all__ = ["LEASE", "IndexReport", "Indexer", "NothingToIndex", "OnPublish", "live_where"]

LEASE = timedelta(minutes=10)
"""A ``processing`` source whose heartbeat is older than this is taken over."""
_HEARTBEAT = timedelta(seconds=30)
_STAGE_BATCH = 128
_MAX_NOTES = 50


@dataclass
class IndexReport:
    """What one indexing run did."""

    pages: int = 0
    unchanged: int = 0
    changed: int = 0
    removed: int = 0
    kept_after_error: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    notes: list[str] = field(default_factory=list)
    #: The (embedded) texts of the chunks this run removed, to forget cached vectors.
    removed_texts: list[str] = field(default_factory=list, repr=False)


OnPublish = Callable[[Source, IndexReport], None]
"""Called with the published source inside the publishing transaction (to audit it)."""


def _gen(source_id: str, version: int) -> str:
    return f"{source_id}:{version}"


def live_where(source: Source) -> Where:
    """The source's searchable chunks."""
    return Where(
        eq={"source_id": source.id},
        any_of={"gen": [_gen(source.id, g) for g in source.generations]},
    )


class Indexer:
    """Writes one tenant's knowledge: source claims, staging and publishing."""

    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        tenant: str,
        config: ChunkingConfig,
        progress: ProgressFn | None = None,
    ) -> None:
        self.backend = backend
        self.embedder = embedder
        self.tenant = tenant
        self.config = config
        self.progress = progress

    # -- small helpers (call inside backend.batch()) ------------------------------
    def get_source(self, source_id: str) -> Source:
        found = self.backend.get(self.tenant, Collection.SOURCES, [source_id])
        if not found or not isinstance(found[0], Source):
            raise NotFoundError(
                f"source {source_id!r} does not exist in tenant {self.tenant!r}", kind="source"
            )
        return found[0]

    def touch_kb(self, kb_id: str) -> None:
        """Bump the knowledge base's epoch: searches in flight will retry."""
        found = self.backend.get(self.tenant, Collection.KNOWLEDGE_BASES, [kb_id])
        if found and isinstance(found[0], KnowledgeBase):
            kb = found[0]
            self.backend.upsert(
                self.tenant,
                Collection.KNOWLEDGE_BASES,
                [kb.model_copy(update={"epoch": kb.epoch + 1})],
            )

    def save(self, source: Source, *, touch: bool = True) -> Source:
        source = source.model_copy(update={"updated_at": utcnow()})
        self.backend.upsert(self.tenant, Collection.SOURCES, [source])
        if touch:
            self.touch_kb(source.kb_id)
        return source

    def _drop_staged(self, source: Source) -> int:
        if source.pending_version is None:
            return 0
        return self.backend.delete(
            self.tenant,
            Collection.CHUNKS,
            Where(eq={"source_id": source.id}, gte={"since": source.pending_version}),
        )

    # -- lifecycle ------------------------------------------------------------------
    def claim(self, source_id: str) -> Source:
        """Mark the source ``processing`` under a lease; ConflictError if another
        writer holds a live lease on it."""
        with self.backend.batch():
            source = self.get_source(source_id)
            now = utcnow()
            if (
                source.status is SourceStatus.PROCESSING
                and source.heartbeat_at is not None
                and now - source.heartbeat_at < LEASE
            ):
                raise ConflictError(
                    f"source {source_id!r} is being indexed by another call (since "
                    f"{source.heartbeat_at:%H:%M:%S} UTC); retry when it is done"
                )
            self._drop_staged(source)
            return self.save(
                source.model_copy(
                    update={
                        "status": SourceStatus.PROCESSING,
                        "heartbeat_at": now,
                        "pending_version": None,
                        "error": None,
                    }
                )
            )

    def fail(self, source_id: str, reason: str) -> Source | None:
        """Drop staged chunks and mark the source failed (the published version stays)."""
        with self.backend.batch():
            found = self.backend.get(self.tenant, Collection.SOURCES, [source_id])
            if not found or not isinstance(found[0], Source):
                return None
            source = found[0]
            self._drop_staged(source)
            return self.save(
                source.model_copy(
                    update={
                        "status": SourceStatus.FAILED,
                        "error": reason,
                        "pending_version": None,
                        "heartbeat_at": None,
                        "title": source.title or source.uri,
                    }
                )
            )

    def _owned(self, source_id: str, pending: int | None) -> Source:
        source = self.get_source(source_id)
        if source.status is not SourceStatus.PROCESSING or source.pending_version != pending:
            raise ConflictError(
                f"source {source_id!r} was taken over by another call while indexing"
            )
        return source

    # -- indexing -------------------------------------------------------------------
    def index(
        self,
        source: Source,
        pages: Sequence[Page],
        *,
        keep: Sequence[str] = (),
        notes: Sequence[str] = (),
        title: str | None = None,
        on_publish: OnPublish | None = None,
    ) -> tuple[Source, IndexReport]:
        """Bring the claimed ``source`` to ``pages``. ``keep``: URIs that failed
        transiently, whose last published chunks stay. ``on_publish`` is called
        with the result inside the transaction that publishes it."""
        report = IndexReport(notes=list(notes))
        salt = f"{self.config.signature}:{self.embedder.model_id}"  # a new model re-indexes
        fresh: dict[str, tuple[Page, str]] = {}
        for page in pages:
            if not page.blocks:
                report.notes.append(f"{page.uri}: no text to index")
                continue
            report.notes.extend(page.notes)
            fresh.setdefault(page.uri, (page, page.content_hash(salt)))
        existing = (
            self.backend.find(self.tenant, Collection.CHUNKS, live_where(source))
            if source.generations
            else []
        )
        old: dict[str, tuple[str, int]] = {}
        old_count: dict[str, int] = {}
        for chunk in existing:
            if isinstance(chunk, Chunk):
                old[chunk.page_uri] = (chunk.page_hash, chunk.since)
                old_count[chunk.page_uri] = old_count.get(chunk.page_uri, 0) + 1
        keep_set = {uri for uri in keep if uri in old and uri not in fresh}
        unchanged = {u for u, (_, h) in fresh.items() if u in old and old[u][0] == h}
        changed = [u for u in fresh if u not in unchanged]
        removed = [u for u in old if u not in fresh and u not in keep_set]
        report.pages = len(fresh) + len(keep_set)
        report.unchanged, report.changed = len(unchanged), len(changed)
        report.removed, report.kept_after_error = len(removed), len(keep_set)
        if not fresh and not keep_set:
            raise NothingToIndex("no page with text to index" + _why(report.notes))
        digest = hashlib.sha256()
        for uri in sorted(fresh):
            digest.update(f"{uri}\x00{fresh[uri][1]}\x00".encode())
        content_hash = digest.hexdigest()
        updates: dict[str, object] = {
            "status": SourceStatus.READY,
            "error": None,
            "heartbeat_at": None,
            "pending_version": None,
            "page_count": report.pages,
            "notes": tuple(report.notes[:_MAX_NOTES]),
        }
        if title:
            updates["title"] = title
        if not changed and not removed:
            with self.backend.batch():
                current = self._owned(source.id, None)
                done = self.save(current.model_copy(update=updates))
                if on_publish is not None:
                    on_publish(done, report)
            return done, report

        version = source.version + 1
        staged = [
            (uri, page, page_hash, piece)
            for uri in changed
            for page, page_hash in [fresh[uri]]
            for piece in chunk_page(page, self.config)
        ]
        with self.backend.batch():
            current = self._owned(source.id, None)
            current = self.save(current.model_copy(update={"pending_version": version}))
        beat = utcnow()
        done_count = 0
        for start in range(0, len(staged), _STAGE_BATCH):
            part = staged[start : start + _STAGE_BATCH]
            chunks, vectors = self._prepare(current, version, part)
            with self.backend.batch():  # still ours? then write (one transaction)
                owned = self._owned(source.id, version)
                self.backend.upsert(self.tenant, Collection.CHUNKS, chunks, vectors)
                if utcnow() - beat > _HEARTBEAT:
                    beat = utcnow()
                    self.save(owned.model_copy(update={"heartbeat_at": beat}), touch=False)
            done_count += len(part)
            if self.progress:
                self.progress("embedding", done_count, len(staged))
        report.chunks_added = len(staged)
        with self.backend.batch():
            current = self._owned(source.id, version)
            gone = [*changed, *removed]
            if gone:
                went = set(gone)
                report.removed_texts = [
                    c.text for c in existing if isinstance(c, Chunk) and c.page_uri in went
                ]
                report.chunks_removed = self.backend.delete(
                    self.tenant,
                    Collection.CHUNKS,
                    Where(
                        eq={"source_id": source.id},
                        any_of={"page_uri": gone},
                        lt={"since": version},
                    ),
                )
            kept_since = {old[u][1] for u in (*unchanged, *keep_set)}
            kept_chunks = sum(old_count[u] for u in (*unchanged, *keep_set))
            updates |= {
                "version": version,
                "generations": tuple(sorted(kept_since | {version})),
                "content_hash": content_hash,
                "chunk_count": kept_chunks + len(staged),
            }
            published = self.save(current.model_copy(update=updates))
            if on_publish is not None:
                on_publish(published, report)
        return published, report

    def _prepare(
        self, source: Source, version: int, part: Sequence[tuple[str, Page, str, Piece]]
    ) -> tuple[list[Chunk], Vectors]:
        """The chunks of a batch of pieces and their embeddings."""
        texts: list[str] = []
        starts: list[int] = []
        for _, page, _, piece in part:
            context = context_line(page.title, piece.heading_path) if self.config.context else ""
            prefix = f"{context}\n" if context else ""
            texts.append(prefix + piece.passage)
            starts.append(len(prefix))
        vectors = self.embedder.embed_batch(texts)
        chunks = [
            Chunk(
                id=new_id("chk"),
                tenant=self.tenant,
                kb_id=source.kb_id,
                source_id=source.id,
                since=version,
                gen=_gen(source.id, version),
                page_uri=uri,
                page_title=page.title,
                page_hash=page_hash,
                text=text,
                passage_start=start,
                heading_path=piece.heading_path,
                position=piece.position,
                page=piece.page,
            )
            for (uri, page, page_hash, piece), text, start in zip(part, texts, starts, strict=True)
        ]
        return chunks, Vectors(self.embedder.model_id, vectors)


def _why(notes: Sequence[str]) -> str:
    return f" ({'; '.join(notes[:3])})" if notes else ""
