"""Searching knowledge: scope, visibility and hybrid fusion.

A search reads the tenant's knowledge bases (their ``epoch``\\ s) and sources
(cached per epochs), searches the chunks, and reads the epochs again: if any
changed meanwhile (a version was published, staging began, a source went) it
searches again, so results always come from one published state -- never a
mix of two versions of a source, never a source missing mid-update.

The filter passed to the backend is as loose as correctness allows, because
unfiltered searches are the fastest (SQLite scans no candidate list):

- nothing is being staged in scope and the scope is the whole tenant: no filter;
- else sources/tags/knowledge bases narrow it (``source_id`` / ``kb_id``);
- while some source in scope is being staged: exactly the live generations
  (``gen``), so staged chunks can never crowd out live ones.

Hybrid fusion is convex: ``alpha`` x vector side + ``(1 - alpha)`` x keyword
side, the keyword side (BM25) divided by its best score and the vector side
(cosine) taken as is, so scores stay comparable across queries and a
``min_score`` threshold means the same thing for every query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from memory_core.backends.base import Backend, Collection, Hit, SearchMode, Vectors, Where
from memory_core.errors import NotFoundError, ValidationError
from memory_core.models import Chunk, KnowledgeBase, Record, Source

__all__ = ["DEFAULT_ALPHA", "KnowledgeFilter", "KnowledgeSearcher", "ScoredChunk", "fuse"]

DEFAULT_ALPHA = 0.6
"""Hybrid weight of the vector side; best of a sweep on SciFact (see docs/knowledge.md)."""
_MAX_ATTEMPTS = 8
_CACHE_ENTRIES = 32


@dataclass(frozen=True)
class KnowledgeFilter:
    """Which chunks a search may return: knowledge bases (ids or names), source
    ids, and tags (sources carrying any of them). ``None`` means no restriction."""

    kbs: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float
    source: Source


def fuse(
    keyword: Sequence[Hit[Record]], vector: Sequence[Hit[Record]], alpha: float
) -> list[tuple[Record, float]]:
    """Convex fusion of a BM25 list (scaled by its best score) and a cosine
    list (clipped to [0, 1]), best first."""
    scores: dict[str, float] = {}
    records: dict[str, Record] = {}
    best = max((h.score for h in keyword), default=0.0)
    for hit in keyword:
        records[hit.record.id] = hit.record
        scores[hit.record.id] = (1.0 - alpha) * (hit.score / best if best > 0 else 0.0)
    for hit in vector:
        records[hit.record.id] = hit.record
        cosine = min(1.0, max(0.0, hit.score))
        scores[hit.record.id] = scores.get(hit.record.id, 0.0) + alpha * cosine
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(records[rid], score) for rid, score in ranked]


class KnowledgeSearcher:
    """Searches one backend's knowledge chunks (thread-safe; caches source lists)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._cache: OrderedDict[tuple[object, ...], tuple[Source, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def forget(self, tenant: str) -> None:
        """Drop the cached source lists of ``tenant`` (after a deletion there)."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == tenant]:
                del self._cache[key]

    def knowledge_bases(self, tenant: str) -> dict[str, KnowledgeBase]:
        found = self.backend.find(tenant, Collection.KNOWLEDGE_BASES)
        return {kb.id: kb for kb in found if isinstance(kb, KnowledgeBase)}

    def sources(self, tenant: str, kbs: dict[str, KnowledgeBase]) -> tuple[Source, ...]:
        """Every source of the tenant, as of the knowledge bases' epochs."""
        key = (tenant, tuple(sorted((kb.id, kb.epoch) for kb in kbs.values())))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        found = tuple(
            s for s in self.backend.find(tenant, Collection.SOURCES) if isinstance(s, Source)
        )
        with self._lock:
            self._cache[key] = found
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return found

    @staticmethod
    def resolve_kbs(kbs: dict[str, KnowledgeBase], wanted: Sequence[str] | None) -> set[str]:
        if wanted is None:
            return set(kbs)
        by_name = {kb.name: kb.id for kb in kbs.values()}
        out: set[str] = set()
        for ref in wanted:
            kb_id = ref if ref in kbs else by_name.get(ref)
            if kb_id is None:
                raise NotFoundError(f"knowledge base {ref!r} does not exist", kind="knowledge_base")
            out.add(kb_id)
        return out

    def search(
        self,
        tenant: str,
        text: str,
        vector: Vectors | None,
        flt: KnowledgeFilter,
        *,
        limit: int,
        mode: SearchMode,
        alpha: float,
        depth: int | None = None,
    ) -> list[ScoredChunk]:
        """The best ``limit`` live chunks for a query, best first, from one published state."""
        if mode is not SearchMode.KEYWORD and vector is None:
            raise ValidationError(f"{mode.value} search needs a query vector")
        depth = max(depth or 0, limit * 3, 50)
        result: list[ScoredChunk] = []
        for _ in range(_MAX_ATTEMPTS):
            kbs = self.knowledge_bases(tenant)
            result = self._attempt(tenant, text, vector, flt, kbs, limit, mode, alpha, depth)
            after = self.knowledge_bases(tenant)
            if {k: v.epoch for k, v in kbs.items()} == {k: v.epoch for k, v in after.items()}:
                return result
        return result  # still changing after several tries: the last consistent-looking answer

    def _attempt(
        self,
        tenant: str,
        text: str,
        vector: Vectors | None,
        flt: KnowledgeFilter,
        kbs: dict[str, KnowledgeBase],
        limit: int,
        mode: SearchMode,
        alpha: float,
        depth: int,
    ) -> list[ScoredChunk]:
        kb_ids = self.resolve_kbs(kbs, flt.kbs)
        every = self.sources(tenant, kbs)
        if flt.sources is not None:
            unknown = set(flt.sources) - {s.id for s in every}
            if unknown:
                raise NotFoundError(
                    f"source(s) {', '.join(sorted(unknown))} do not exist", kind="source"
                )
        in_kbs = [s for s in every if s.kb_id in kb_ids]
        scoped = [
            s
            for s in in_kbs
            if (flt.sources is None or s.id in flt.sources)
            and (flt.tags is None or set(s.tags) & set(flt.tags))
        ]
        live = {s.id: s for s in scoped if s.generations}
        if not live:
            return []
        staging = any(s.pending_version is not None for s in (every if not flt.kbs else in_kbs))
        if staging:
            gens = [f"{s.id}:{g}" for s in live.values() for g in s.generations]
            where = Where(any_of={"gen": gens})
        elif flt.sources is not None or flt.tags is not None:
            where = Where(any_of={"source_id": sorted(live)})
        elif kb_ids != set(kbs):
            where = Where(any_of={"kb_id": sorted(kb_ids)})
        else:
            where = Where()
        keyword: list[Hit[Record]] = []
        nearest: list[Hit[Record]] = []
        if mode is not SearchMode.VECTOR:
            keyword = self.backend.search(
                tenant,
                Collection.CHUNKS,
                mode=SearchMode.KEYWORD,
                text=text,
                where=where,
                limit=depth,
            )
        if mode is not SearchMode.KEYWORD:
            nearest = self.backend.search(
                tenant,
                Collection.CHUNKS,
                mode=SearchMode.VECTOR,
                vector=vector,
                where=where,
                limit=depth,
            )
        weight = {SearchMode.KEYWORD: 0.0, SearchMode.VECTOR: 1.0}.get(mode, alpha)
        out: list[ScoredChunk] = []
        for record, score in fuse(keyword, nearest, weight):
            if not isinstance(record, Chunk):
                continue
            source = live.get(record.source_id)
            if source is None or record.since not in source.generations:
                continue  # staged, or outside the scope
            out.append(ScoredChunk(record, score, source))
            if len(out) >= limit:
                break
        return out
