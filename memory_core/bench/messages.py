"""The message part of ``convmem bench``: ingest throughput and recall latency,
each beside its floor measured in the same run, so that ratios hold on a noisy,
shared machine.

- Ingest throughput (messages/s) end to end with the local embedder, one call
  per conversation and as a bulk import (embeddings batched across
  conversations), beside the embedder alone on the same texts, and with the
  embeddings cached (the store's own write path).
- Recall at each size (messages spread over N profiles): ``memory.recall``
  exactly as callers use it (hybrid, query embedded per call, every source),
  beside its floor -- the same query embedded by the model alone plus an exact
  numpy top-k over the profile's vectors held in memory -- timed query by
  query, interleaved; twice: first with queries whose words the process has
  not searched yet (a word's first search reads its keyword postings and
  statistics), then with other queries of the same vocabulary (the steady state
  of a running service; every query still embedded per call). Then recall's CPU
  time without the model (the query's embedding cached), and the backend's
  keyword and vector searches alone.
- Tenant-wide vector search beside numpy over the whole matrix in memory.
- Peak RSS of the process.

Stores are built from precomputed vectors: a pool of distinct synthetic
customer-service texts is embedded once, each profile's first conversation is
ingested through ``memory.ingest`` (creating the profile and its identifier),
and the rest are written straight to the backend with the pool's vectors, so
a million messages take minutes, not a million model calls.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from memory_core.backends.base import Collection, SearchMode, Vectors, Where
from memory_core.bench.timing import (
    Latency,
    Progress,
    cpu_seconds,
    machine,
    model_alone,
    numpy_topk,
    peak_rss_mb,
    seconds,
    ticker,
    timed,
)
from memory_core.config import load_settings
from memory_core.embedding.texts import embedding_texts
from memory_core.memory import Memory
from memory_core.models import Channel, Conversation, ConversationIn, Message, MessageIn, Role

__all__ = [
    "BenchReport",
    "SizeReport",
    "print_message_bench",
    "run_bench",
    "synthetic_texts",
]

_PRODUCTS = [
    "router",
    "fiber plan",
    "mobile plan",
    "TV box",
    "modem",
    "Premium plan",
    "SIM card",
    "streaming add-on",
    "landline",
    "smart watch",
    "tablet",
    "hotspot",
]
_CITIES = [
    "Denver",
    "Boston",
    "Austin",
    "Seattle",
    "Chicago",
    "Miami",
    "Portland",
    "Atlanta",
    "Phoenix",
    "Detroit",
    "Nashville",
    "San Diego",
]
_TEMPLATES = [
    "My {p} stopped working again after the update on {d}.",
    "I was charged twice for the {p} this month, can you refund it?",
    "Please text me instead of calling, I am at work until {h}.",
    "I'm moving to {c} next month and need to transfer my {p}.",
    "The {p} keeps dropping every evening around {h}.",
    "Can I upgrade my {p} to the faster tier before {d}?",
    "I'd like to cancel the {p}, the price went up again.",
    "Thanks, the technician fixed the {p} on {d}.",
    "Do you have a store in {c} where I can return the {p}?",
    "My invoice for {d} shows a fee for the {p} that I never ordered.",
    "I prefer email for anything about the {p}, please.",
    "The agent promised a callback about my {p} on {d} but nobody called.",
]
_DAYS = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "March 3rd",
    "April 12th",
    "May 1st",
    "June 20th",
    "the weekend",
]
_HOURS = ["5 pm", "6 pm", "7 pm", "8 pm", "9 pm", "noon"]


def synthetic_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct customer-service sentences (deterministic)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        text = rng.choice(_TEMPLATES).format(
            p=rng.choice(_PRODUCTS),
            c=rng.choice(_CITIES),
            d=rng.choice(_DAYS),
            h=rng.choice(_HOURS),
        )
        if len(seen) > n // 2 or text in seen:
            text = f"{text} (ticket {rng.randrange(10**6):06d})"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


_BUILD_BATCH = 5000  # messages per backend write while building a store
_PER_CONVERSATION = 10
_T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class SizeReport:
    messages: int
    profiles: int
    build_seconds: float
    recall: Latency  # memory.recall, wall clock, query embedded per call
    floor: Latency  # the model alone on the same query + exact numpy over the profile
    recall_ratio: float  # recall p50 / floor p50
    recall_seen: Latency  # recall again, other queries of words searched before
    floor_seen: Latency  # their floor
    recall_seen_ratio: float  # recall_seen p50 / floor_seen p50
    recall_cpu: Latency  # CPU time of memory.recall with the query's embedding cached
    keyword_cpu: Latency  # CPU time of the backend's keyword search (the profile's)
    vector_cpu: Latency  # CPU time of the backend's vector search (the profile's)
    numpy_cpu: Latency  # CPU time of exact numpy over the profile's vectors
    tenant_vector_search: Latency
    tenant_numpy_baseline: Latency
    tenant_ratio: float
    store_mb: float | None = None  # the embedded store on disk after this size (cumulative)


@dataclass
class BenchReport:
    machine: str
    backend: str
    embedder: str
    ingest_messages: int
    ingest_msgs_per_s: float
    bulk_ingest_msgs_per_s: float
    embedder_alone_msgs_per_s: float
    ingest_no_embedding_msgs_per_s: float
    sizes: list[SizeReport] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _conversations(
    texts: Sequence[str], profile: int, per_conv: int, prefix: str
) -> list[ConversationIn]:
    convs = []
    for c, start in enumerate(range(0, len(texts), per_conv)):
        convs.append(
            ConversationIn(
                id=f"{prefix}-p{profile}-c{c}",
                channel=(Channel.SMS, Channel.CHAT, Channel.VOICE)[c % 3],
                customer=[f"custom:bench=p{profile}"],
                messages=[
                    MessageIn(role=Role.CUSTOMER if i % 2 == 0 else Role.HUMAN_AGENT, text=t)
                    for i, t in enumerate(texts[start : start + per_conv])
                ],
            )
        )
    return convs


def bench_ingest(memory: Memory, n: int, tenant: str) -> tuple[float, float, float, float]:
    """(end-to-end msgs/s one call per conversation, bulk import msgs/s, embedder-alone
    msgs/s, ingest with embeddings cached msgs/s), into tenant ``tenant`` (created)."""
    texts = synthetic_texts(n, seed=11)
    bulk_texts = synthetic_texts(n, seed=12)
    # The baseline embeds exactly what ingest embeds: each message with its
    # conversation context (conversations of 10 messages, as below).
    context = memory.settings.embed_context_turns
    batches = [embedding_texts(texts[s : s + 10], None, context) for s in range(0, n, 10)]
    alone = n / sum(seconds(model_alone(memory.embedder).embed_batch, batches))
    handle = memory.tenants.add(tenant)
    end_to_end = n / sum(seconds(handle.ingest, _conversations(texts, 0, 10, "ingest")))
    bulk = _conversations(bulk_texts, 2, 10, "ingest-bulk")
    start = time.perf_counter()
    handle.conversations._ingest_many(bulk)
    bulk_rate = n / (time.perf_counter() - start)
    # Same texts again, into fresh conversations: the embedding cache answers.
    cached = n / sum(seconds(handle.ingest, _conversations(texts, 1, 10, "ingest-cached")))
    return end_to_end, bulk_rate, alone, cached


@dataclass
class _Store:
    """A built store: each profile's id and the pool rows of its messages' vectors."""

    profile_ids: list[str]
    rows: list[list[int]]


def build_store(
    handle: Memory,
    n: int,
    profiles: int,
    pool: list[str],
    vectors: npt.NDArray[np.float32],
    tick: Callable[[int], None],
) -> _Store:
    """``n`` messages over ``profiles`` profiles in ``handle``'s tenant, from the pool's
    precomputed ``vectors``: each profile's first conversation goes through
    ``ingest`` (its first message is a pool text, whose embedding is cached), the rest
    are written to the backend directly, in conversations of 10."""
    rng = random.Random(n)
    per_profile = max(1, n // profiles)
    backend, tenant, model_id = handle.backend, handle.name, handle.embedder.model_id
    store = _Store([], [])
    for p in range(profiles):
        first = rng.randrange(len(pool))
        result = handle.ingest(
            ConversationIn(
                id=f"{tenant}-p{p}-c0",
                channel=Channel.CHAT,
                customer=[f"custom:bench=p{p}"],
                messages=[MessageIn(role=Role.CUSTOMER, text=pool[first])],
            )
        )
        store.profile_ids.append(result.profile.id)
        store.rows.append([first])
    tick(profiles)
    messages: list[Message] = []
    rows: list[int] = []
    conversations: list[Conversation] = []

    def flush() -> None:
        with backend.batch():
            backend.upsert(tenant, Collection.CONVERSATIONS, conversations)
            backend.upsert(tenant, Collection.MESSAGES, messages, Vectors(model_id, vectors[rows]))
        tick(len(messages))
        messages.clear()
        rows.clear()
        conversations.clear()

    serial = 0
    for p, profile_id in enumerate(store.profile_ids):
        for c, start in enumerate(range(1, per_profile, _PER_CONVERSATION), start=1):
            conv_id = f"{tenant}-p{p}-c{c}"
            channel = (Channel.SMS, Channel.CHAT, Channel.VOICE)[c % 3]
            started = _T0 + timedelta(seconds=serial)
            conversations.append(
                Conversation(
                    id=conv_id, tenant=tenant, profile_id=profile_id, channel=channel,
                    started_at=started,
                )
            )  # fmt: skip
            for seq in range(min(_PER_CONVERSATION, per_profile - start)):
                row = rng.randrange(len(pool))
                serial += 1
                messages.append(
                    Message(
                        id=f"{conv_id}-m{seq}", tenant=tenant, conversation_id=conv_id,
                        profile_id=profile_id, channel=channel,
                        role=Role.CUSTOMER if seq % 2 == 0 else Role.HUMAN_AGENT,
                        text=pool[row], ts=_T0 + timedelta(seconds=serial), seq=seq,
                    )
                )  # fmt: skip
                rows.append(row)
                store.rows[p].append(row)
            if len(messages) >= _BUILD_BATCH:
                flush()
    if messages:
        flush()
    return store


def bench_size(
    memory: Memory,
    n: int,
    profiles: int,
    queries: int,
    pool: list[str],
    vectors: npt.NDArray[np.float32],
    progress: Progress | None,
    stage: str,
    tenant: str | None = None,
) -> SizeReport:
    """Build ``n`` messages over ``profiles`` profiles in tenant ``tenant`` (created;
    default ``bench-<n>``), then time ``queries`` recalls and searches there."""
    handle = memory.tenants.add(tenant or f"bench-{n}")
    t0 = time.perf_counter()
    store = build_store(
        handle, n, profiles, pool, vectors, ticker(progress, f"{stage}: building {n:,}", n)
    )
    build = time.perf_counter() - t0
    backend, embedder, name = handle.backend, handle.embedder, handle.name
    model = model_alone(embedder)
    rng = random.Random(1)
    query_texts = [f"{q} {i}" for i, q in enumerate(synthetic_texts(queries, seed=99))]
    picks = [rng.randrange(len(store.profile_ids)) for _ in range(queries)]
    tick = ticker(progress, f"{stage}: timing {queries} recalls at {n:,}", 4 * queries)

    # Recall as callers use it, and its floor, query by query, interleaved: first
    # with words not searched yet, then other queries (same vocabulary) once seen.
    handle.recall(store.profile_ids[picks[0]], "warm up")  # loads the model and caches

    def interleaved(texts: list[str]) -> tuple[Latency, Latency]:
        recall_s: list[float] = []
        floor_s: list[float] = []
        for pick, text in zip(picks, texts, strict=True):
            start = time.perf_counter()
            handle.recall(store.profile_ids[pick], text)
            recall_s.append(time.perf_counter() - start)
            own = vectors[store.rows[pick]]
            start = time.perf_counter()
            numpy_topk(own, model.embed_batch([text])[0], 8)
            floor_s.append(time.perf_counter() - start)
            tick(1)
        return Latency.of(recall_s), Latency.of(floor_s)

    recall, floor = interleaved(query_texts)
    seen_texts = [f"{q} {i}" for i, q in enumerate(synthetic_texts(queries, seed=98))]
    recall_seen, floor_seen = interleaved(seen_texts)

    # CPU time without the model: the query embeddings are cached now.
    qvecs = embedder.embed_batch(query_texts)
    recall_cpu = Latency.of(
        cpu_seconds(
            lambda pq: handle.recall(store.profile_ids[pq[0]], pq[1]),
            zip(picks, query_texts, strict=True),
        )
    )
    tick(queries)
    mine = [Where(eq={"profile_id": store.profile_ids[p]}) for p in picks]
    vecs = [Vectors(embedder.model_id, qv[None, :]) for qv in qvecs]
    keyword_cpu = Latency.of(
        cpu_seconds(
            lambda tw: backend.search(
                name, Collection.MESSAGES, mode=SearchMode.KEYWORD, text=tw[0], where=tw[1],
                limit=8,
            ),
            zip(query_texts, mine, strict=True),
        )
    )  # fmt: skip
    vector_cpu = Latency.of(
        cpu_seconds(
            lambda vw: backend.search(
                name, Collection.MESSAGES, mode=SearchMode.VECTOR, vector=vw[0], where=vw[1],
                limit=8,
            ),
            zip(vecs, mine, strict=True),
        )
    )  # fmt: skip
    numpy_cpu = Latency.of(
        cpu_seconds(
            lambda pq: numpy_topk(vectors[store.rows[pq[0]]], pq[1], 8),
            zip(picks, qvecs, strict=True),
        )
    )
    tick(queries)

    matrix = vectors[[row for rows in store.rows for row in rows]]
    wide = min(50, queries)
    tsearch = timed(
        lambda vec: backend.search(
            name, Collection.MESSAGES, mode=SearchMode.VECTOR, vector=vec, limit=10
        ),
        vecs[:wide],
        warmup=1,
    )
    tbase = timed(lambda qv: numpy_topk(matrix, qv, 10), qvecs[:wide], warmup=1)
    return SizeReport(
        messages=n,
        profiles=profiles,
        build_seconds=round(build, 1),
        recall=recall,
        floor=floor,
        recall_ratio=round(recall.p50_ms / max(floor.p50_ms, 1e-6), 2),
        recall_seen=recall_seen,
        floor_seen=floor_seen,
        recall_seen_ratio=round(recall_seen.p50_ms / max(floor_seen.p50_ms, 1e-6), 2),
        recall_cpu=recall_cpu,
        keyword_cpu=keyword_cpu,
        vector_cpu=vector_cpu,
        numpy_cpu=numpy_cpu,
        tenant_vector_search=tsearch,
        tenant_numpy_baseline=tbase,
        tenant_ratio=round(tsearch.p50_ms / max(tbase.p50_ms, 1e-6), 2),
    )


def run_bench(
    sizes: Sequence[int],
    *,
    profiles: int = 1000,
    queries: int = 200,
    ingest_messages: int = 1000,
    embedder: str | None = None,
    progress: Progress | None = None,
    backend: str | None = None,
) -> BenchReport:
    """The benchmark on a throwaway embedded store, or on ``backend`` (a backend
    setting such as ``weaviate://host:8080``): there in tenants of its own,
    dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="convmem-bench-") as tmp:
        spec = backend or f"sqlite:///{Path(tmp) / 'bench.db'}"
        run = "" if backend is None else f"-{uuid.uuid4().hex[:8]}"
        tenants = [f"bench-ingest{run}", *(f"bench-{n}{run}" for n in sizes)]
        settings = load_settings(backend=spec, embedder=embedder)
        with Memory.open(settings=settings) as memory:
            try:
                report = _run_bench(
                    memory, sizes, tenants, profiles, queries, ingest_messages, progress,
                    None if backend is not None else Path(tmp),
                )  # fmt: skip
            finally:
                if backend is not None:
                    for tenant in tenants:
                        memory.backend.drop_tenant(tenant)
    report.peak_rss_mb = peak_rss_mb()
    return report


_POOL = 2000  # distinct texts embedded once per run


def _run_bench(
    memory: Memory,
    sizes: Sequence[int],
    tenants: list[str],
    profiles: int,
    queries: int,
    ingest_messages: int,
    progress: Progress | None,
    store_dir: Path | None = None,
) -> BenchReport:
    stages = 2 + len(sizes)
    if progress:
        progress(f"1/{stages} ingest: {ingest_messages:,} messages, three ways", 0, 1)
    e2e, bulk, alone, cached = bench_ingest(memory, ingest_messages, tenants[0])
    pool = synthetic_texts(_POOL, seed=3)
    tick = ticker(progress, f"2/{stages} embedding a pool of {_POOL:,} texts", _POOL)
    parts = []
    for start in range(0, _POOL, 250):
        parts.append(memory.embedder.embed_batch(pool[start : start + 250]))
        tick(len(parts[-1]))
    vectors = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    report = BenchReport(
        machine=machine(),
        backend=memory.backend.name,
        embedder=memory.embedder.model_id,
        ingest_messages=ingest_messages,
        ingest_msgs_per_s=round(e2e, 1),
        bulk_ingest_msgs_per_s=round(bulk, 1),
        embedder_alone_msgs_per_s=round(alone, 1),
        ingest_no_embedding_msgs_per_s=round(cached, 1),
    )
    for i, (n, tenant) in enumerate(zip(sizes, tenants[1:], strict=True), start=3):
        stage = f"{i}/{stages} {memory.backend.name}"
        report.sizes.append(
            bench_size(memory, n, profiles, queries, pool, vectors, progress, stage, tenant)
        )
        if store_dir is not None:
            report.sizes[-1].store_mb = _disk_mb(store_dir)
    return report


def _disk_mb(folder: Path) -> float:
    """Megabytes of the files under ``folder`` (the store, its WAL and vector files)."""
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return round(total / 1e6, 1)


def run_benches(
    sizes: Sequence[int],
    *,
    profiles: int,
    queries: int,
    progress: Progress | None = None,
    backend: str | None = None,
) -> list[BenchReport]:
    """The benchmark on the embedded store; with ``backend`` (not SQLite) also on
    ``backend``, in the same process, one after the other."""
    targets: list[str | None] = [None]
    if backend is not None and backend != "sqlite" and not backend.startswith("sqlite:"):
        targets.append(backend)
    elif backend is not None:
        targets = [backend]
    return [
        run_bench(sizes, profiles=profiles, queries=queries, progress=progress, backend=target)
        for target in targets
    ]


def print_message_bench(console: Console, reports: Sequence[BenchReport]) -> None:
    """The reports (one per backend) as tables."""
    first = reports[0]
    console.print(f"[bold]convmem bench[/] — {first.machine}, embedder {first.embedder}")
    table = Table(title=f"Ingest ({first.ingest_messages:,} messages, messages/s)")
    for col in (
        "backend",
        "one call per conversation",
        "bulk import",
        "embedder alone (floor)",
        "embeddings cached",
    ):
        table.add_column(col, justify="right")
    for report in reports:
        table.add_row(
            report.backend,
            f"{report.ingest_msgs_per_s:.0f}",
            f"{report.bulk_ingest_msgs_per_s:.0f}",
            f"{report.embedder_alone_msgs_per_s:.0f}",
            f"{report.ingest_no_embedding_msgs_per_s:.0f}",
        )
    console.print(table)
    lat = Table(title="Recall (ms, p50 / p95 / p99; wall clock, query embedded per call)")
    for col in (
        "backend", "messages", "build (s)", "disk (MB)", "recall, new words", "floor", "ratio",
        "recall, words seen", "floor", "ratio",
    ):  # fmt: skip
        lat.add_column(col, justify="right")
    cpu = Table(title="CPU time without the model (ms, p50 / p95)")
    for col in ("backend", "messages", "recall", "keyword search", "vector search", "numpy"):
        cpu.add_column(col, justify="right")
    wide = Table(title="Tenant-wide vector search (ms, p50 / p95 / p99)")
    for col in ("backend", "messages", "search", "numpy over every vector", "ratio"):
        wide.add_column(col, justify="right")
    for report in reports:
        for s in report.sizes:
            size = f"{s.messages:,}"
            lat.add_row(
                report.backend, size, f"{s.build_seconds:.0f}",
                "-" if s.store_mb is None else f"{s.store_mb:,.0f}", s.recall.text(),
                s.floor.text(), f"{s.recall_ratio:.2f}x", s.recall_seen.text(),
                s.floor_seen.text(), f"{s.recall_seen_ratio:.2f}x",
            )  # fmt: skip
            cpu.add_row(
                report.backend, size, s.recall_cpu.text(p99=False),
                s.keyword_cpu.text(p99=False), s.vector_cpu.text(p99=False),
                s.numpy_cpu.text(p99=False),
            )  # fmt: skip
            wide.add_row(
                report.backend, size, s.tenant_vector_search.text(),
                s.tenant_numpy_baseline.text(), f"{s.tenant_ratio:.2f}x",
            )  # fmt: skip
    console.print(lat)
    console.print(
        "floor: the same query embedded by the model alone + exact numpy top-k over the "
        "profile's vectors in memory; new words: the process's first searches of the "
        "query's words (their keyword postings and statistics are read); words seen: "
        "other queries of the same vocabulary afterwards (a running service's steady state)"
    )
    console.print(cpu)
    console.print(wide)
    console.print(f"peak RSS {reports[-1].peak_rss_mb:.0f} MB (the whole process)")
