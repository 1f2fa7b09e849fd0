"""The knowledge part of ``convmem bench``: indexing throughput and search
latency, each beside a baseline measured in the same run.

- Indexing (chunks/s) end to end -- parse, chunk, embed, stage, publish -- on
  fresh text, beside the embedder alone on the same chunk texts (the
  baseline); and at each size with embeddings cached (the pipeline's own cost).
- Search latency p50/p95/p99 at each size (chunks spread over sources of 1,000
  documents in two knowledge bases): ``memory.knowledge.search`` end to end
  (query embedding included), hybrid search with the query vector given, the
  same filtered to one knowledge base, and vector search -- beside an exact
  numpy top-k over the same chunk vectors held in memory.

Documents are sections of real prose (the Python reference manual shipped
with CPython, so the vocabulary is natural and nothing is downloaded), each
one chunk (a few make two), drawn from a pool of distinct sections embedded
once, so 100k chunks do not take 100k model calls (as in the message
benchmark). Queries are 4-9 word spans of those sections.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from memory_core.backends.base import Collection, SearchMode, SupportsExport, Vectors, Where
from memory_core.bench.timing import (
    Latency,
    Progress,
    machine,
    model_alone,
    numpy_topk,
    seconds,
    ticker,
    timed,
)
from memory_core.config import load_settings
from memory_core.errors import ConfigError
from memory_core.knowledge.chunking import context_line
from memory_core.knowledge.search import DEFAULT_ALPHA, KnowledgeFilter, KnowledgeSearcher
from memory_core.knowledge.types import DocumentIn
from memory_core.memory import Memory
from memory_core.recall import count_tokens

__all__ = [
    "KnowledgeBenchReport",
    "KnowledgeSizeReport",
    "print_knowledge_bench",
    "run_knowledge_bench",
]

_TOPICS = [
    "Billing",
    "Returns",
    "Shipping",
    "Warranty",
    "Accounts",
    "Routers",
    "Mobile plans",
    "Streaming",
    "Stores",
    "Security",
]
_DOCS_PER_SOURCE = 1000


@dataclass
class KnowledgeSizeReport:
    chunks: int
    sources: int
    build_seconds: float
    index_cached_chunks_per_s: float
    search_end_to_end: Latency
    hybrid: Latency
    hybrid_one_kb: Latency
    vector: Latency
    numpy_baseline: Latency
    vector_ratio: float
    keyword: Latency | None = None  # keyword search alone, every knowledge base
    bm25s_baseline: Latency | None = None  # the bm25s package on the same chunks (bench extra)
    keyword_ratio: float | None = None
    # The backend's BM25 ranking alone: its 10 best chunks, as bm25s returns its 10
    # best (the knowledge search above also reads 50 candidates and checks sources).
    keyword_ranking: Latency | None = None
    keyword_ranking_ratio: float | None = None


@dataclass
class KnowledgeBenchReport:
    machine: str
    embedder: str
    fresh_chunks: int
    index_chunks_per_s: float
    embedder_alone_chunks_per_s: float
    sizes: list[KnowledgeSizeReport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _paragraphs() -> list[tuple[str, str]]:
    """(topic, ~80-word passage) pairs of real English prose with a natural
    vocabulary: the Python reference manual's topics, shipped with CPython."""
    from pydoc_data.topics import topics

    out: list[tuple[str, str]] = []
    for topic, text in sorted(topics.items()):
        words: list[str] = []
        for para in text.split("\n\n"):
            para_words = para.split()
            if len(para_words) < 8 or para.lstrip().startswith(("*", "=", ">>>")):
                continue
            words += para_words
            if len(words) >= 70:
                passage = " ".join(words[:90])
                if count_tokens(passage) <= 180:  # about one chunk each
                    out.append((topic, passage))
                words = []
    return out


def _sections(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (title, heading, passage) sections of about 80 words."""
    rng = random.Random(seed)
    paragraphs = _paragraphs()
    rng.shuffle(paragraphs)
    out = []
    for i in range(n):
        topic, body = paragraphs[i % len(paragraphs)]
        part = i // len(paragraphs)
        title = f"{rng.choice(_TOPICS)} handbook {seed}-{part}"
        out.append((title, topic.replace("-", " ").capitalize(), body))
    return out


def _questions(pool: Sequence[tuple[str, str, str]], n: int) -> list[str]:
    """Queries of 4-9 words picked from the pool's passages (as a user would phrase a lookup)."""
    rng = random.Random(99)
    out = []
    for _ in range(n):
        words = rng.choice(pool)[2].split()
        size = rng.randint(4, 9)
        start = rng.randrange(max(1, len(words) - size))
        out.append(" ".join(words[start : start + size]))
    return out


def _documents(
    sections: Sequence[tuple[str, str, str]], picks: Sequence[int], start: int
) -> list[DocumentIn]:
    return [
        DocumentIn(
            uri=f"https://help.example.com/a/{start + j}",
            title=sections[i][0],
            text=f"# {sections[i][1]}\n\n{sections[i][2]}",
            format="markdown",
        )
        for j, i in enumerate(picks)
    ]


def bench_fresh(memory: Memory, n: int) -> tuple[float, float]:
    """(end-to-end chunks/s, embedder-alone chunks/s) on ``n`` fresh one-chunk documents,
    indexed in the handle's tenant."""
    sections = _sections(n, seed=101)
    memory.knowledge.bases.add("bench-fresh")
    docs = _documents(sections, range(n), 0)
    t = time.perf_counter()
    source = memory.knowledge.sources.add("bench-fresh", documents=docs, title="fresh")
    end_to_end = source.chunk_count / (time.perf_counter() - t)
    mine = Where(eq={"source_id": source.id})
    texts = [c.text for c in memory.backend.find(memory.name, Collection.CHUNKS, mine)]
    batches = [texts[start : start + 128] for start in range(0, len(texts), 128)]
    alone = len(texts) / sum(seconds(model_alone(memory.embedder).embed_batch, batches))
    return end_to_end, alone


def bench_size(
    memory: Memory,
    n: int,
    pool: Sequence[tuple[str, str, str]],
    queries: int,
    tick: Callable[[int], None],
) -> KnowledgeSizeReport:
    """Index ``n`` chunks in tenant ``kbench-<n>`` (created), then time searches there."""
    handle = memory.tenants.add(f"kbench-{n}")
    kbs = ["kb-a", "kb-b"]
    for kb in kbs:
        handle.knowledge.bases.add(kb)
    rng = random.Random(n)
    t0 = time.perf_counter()
    chunks = sources = 0
    for start in range(0, n, _DOCS_PER_SOURCE):
        picks = [rng.randrange(len(pool)) for _ in range(min(_DOCS_PER_SOURCE, n - start))]
        source = handle.knowledge.sources.add(
            kbs[sources % 2],
            documents=_documents(pool, picks, start),
            title=f"help centre part {sources}",
        )
        chunks += source.chunk_count
        sources += 1
        tick(len(picks))
    build = time.perf_counter() - t0

    questions = _questions(pool, queries)
    # The first call of each measurement warms caches (the vector matrix), untimed.
    end_to_end = timed(handle.knowledge.search, [questions[0], *questions], warmup=1)
    vectors = handle.embedder.embed_batch(questions)
    # The searcher behind memory.knowledge.search, given the query vector.
    searcher = KnowledgeSearcher(handle.backend)
    model = handle.embedder.model_id

    def run(q: int, mode: SearchMode, flt: KnowledgeFilter) -> object:
        return searcher.search(
            handle.name,
            questions[q],
            Vectors(model, vectors[q : q + 1]),
            flt,
            limit=10,
            mode=mode,
            alpha=DEFAULT_ALPHA,
        )

    everything, one_kb = KnowledgeFilter(), KnowledgeFilter(kbs=("kb-a",))
    ids = [0, *range(queries)]
    hybrid = timed(lambda q: run(q, SearchMode.HYBRID, everything), ids, warmup=1)
    hybrid_kb = timed(lambda q: run(q, SearchMode.HYBRID, one_kb), ids, warmup=1)
    vector = timed(lambda q: run(q, SearchMode.VECTOR, everything), ids, warmup=1)
    matrix = _stored_vectors(handle, model)
    baseline = timed(lambda q: numpy_topk(matrix, vectors[q], 10), ids, warmup=1)
    keyword = timed(lambda q: run(q, SearchMode.KEYWORD, everything), ids, warmup=1)
    ranking = timed(
        lambda q: handle.backend.search(
            handle.name, Collection.CHUNKS, mode=SearchMode.KEYWORD, text=questions[q], limit=10
        ),
        ids,
        warmup=1,
    )
    bm25s = _bm25s_baseline(handle, questions, ids)
    return KnowledgeSizeReport(
        keyword=keyword,
        bm25s_baseline=bm25s,
        keyword_ratio=None if bm25s is None else round(keyword.p50_ms / max(bm25s.p50_ms, 1e-6), 2),
        keyword_ranking=ranking,
        keyword_ranking_ratio=(
            None if bm25s is None else round(ranking.p50_ms / max(bm25s.p50_ms, 1e-6), 2)
        ),
        chunks=chunks,
        sources=sources,
        build_seconds=round(build, 1),
        index_cached_chunks_per_s=round(chunks / build, 1),
        search_end_to_end=end_to_end,
        hybrid=hybrid,
        hybrid_one_kb=hybrid_kb,
        vector=vector,
        numpy_baseline=baseline,
        vector_ratio=round(vector.p50_ms / max(baseline.p50_ms, 1e-6), 2),
    )


def _bm25s_baseline(memory: Memory, questions: Sequence[str], ids: list[int]) -> Latency | None:
    """Keyword search of the same chunks with the ``bm25s`` package (sparse matrices,
    in memory; query tokenisation included), or None without the ``bench`` extra."""
    try:
        import bm25s
    except ImportError:
        return None
    texts = [c.text for c in memory.backend.find(memory.name, Collection.CHUNKS)]
    retriever = bm25s.BM25(k1=memory.settings.bm25_k1, b=memory.settings.bm25_b)
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)

    def search(q: int) -> object:
        tokens = bm25s.tokenize([questions[q]], stopwords="en", show_progress=False)
        return retriever.retrieve(tokens, k=10, show_progress=False)

    return timed(search, ids, warmup=1)


def _stored_vectors(memory: Memory, model: str) -> npt.NDArray[np.float32]:
    """The tenant's chunk vectors as stored (read back where the backend can export)."""
    backend = memory.backend
    if not isinstance(backend, SupportsExport):  # pragma: no cover - every backend here can
        raise ConfigError(f"the {backend.name} backend cannot export vectors for the baseline")
    arrays = [
        vectors.array
        for _, vectors in backend.export(memory.name, Collection.CHUNKS, batch_size=10_000)
        if vectors is not None and vectors.model_id == model
    ]
    return np.ascontiguousarray(np.concatenate(arrays))


def run_knowledge_bench(
    sizes: Sequence[int],
    *,
    queries: int = 200,
    fresh_chunks: int = 500,
    pool_size: int = 2000,
    embedder: str | None = None,
    progress: Progress | None = None,
) -> KnowledgeBenchReport:
    """The knowledge benchmark on a throwaway embedded store."""
    with tempfile.TemporaryDirectory(prefix="convmem-kbench-") as tmp:
        settings = load_settings(backend=f"sqlite:///{Path(tmp) / 'bench.db'}", embedder=embedder)
        with Memory.open(settings=settings) as memory:
            if progress:
                progress("knowledge: indexing fresh text", 0, fresh_chunks)
            e2e, alone = bench_fresh(memory, fresh_chunks)
            report = KnowledgeBenchReport(
                machine=machine(),
                embedder=memory.embedder.model_id,
                fresh_chunks=fresh_chunks,
                index_chunks_per_s=round(e2e, 1),
                embedder_alone_chunks_per_s=round(alone, 1),
            )
            pool = _sections(pool_size, seed=7)
            texts = [f"{context_line(t, (t, h))}\n{b}" for t, h, b in pool]
            for start in range(0, len(texts), 128):
                memory.embedder.embed_batch(texts[start : start + 128])
                if progress:
                    progress("knowledge: embedding the section pool", start, len(texts))
            for n in sizes:
                tick = ticker(progress, f"knowledge: indexing {n:,} chunks", n)
                report.sizes.append(bench_size(memory, n, pool, queries, tick))
    return report


def print_knowledge_bench(console: Console, report: KnowledgeBenchReport) -> None:
    """The report as tables."""
    console.print(f"[bold]knowledge bench[/] — {report.machine}, embedder {report.embedder}")
    table = Table(title=f"Knowledge indexing (chunks/s, {report.fresh_chunks} fresh chunks)")
    for column in ("end to end", "embedder alone (baseline)"):
        table.add_column(column, justify="right")
    table.add_row(f"{report.index_chunks_per_s:.0f}", f"{report.embedder_alone_chunks_per_s:.0f}")
    console.print(table)
    lat = Table(title="Knowledge search latency (ms, p50 / p95 / p99)")
    for column in (
        "chunks",
        "indexing cached (chunks/s)",
        "search_knowledge (embed incl.)",
        "hybrid",
        "hybrid, one KB",
        "vector",
        "numpy baseline",
        "ratio",
        "keyword",
        "bm25s (baseline)",
        "ratio",
        "ranking alone",
        "ratio",
    ):
        lat.add_column(column, justify="right")
    for s in report.sizes:
        lat.add_row(
            f"{s.chunks:,}",
            f"{s.index_cached_chunks_per_s:.0f}",
            s.search_end_to_end.text(1),
            s.hybrid.text(1),
            s.hybrid_one_kb.text(1),
            s.vector.text(1),
            s.numpy_baseline.text(1),
            f"{s.vector_ratio:.2f}x",
            s.keyword.text(1) if s.keyword else "-",
            s.bm25s_baseline.text(1) if s.bm25s_baseline else "not installed",
            "-" if s.keyword_ratio is None else f"{s.keyword_ratio:.2f}x",
            s.keyword_ranking.text(1) if s.keyword_ranking else "-",
            "-" if s.keyword_ranking_ratio is None else f"{s.keyword_ranking_ratio:.2f}x",
        )
    console.print(lat)
