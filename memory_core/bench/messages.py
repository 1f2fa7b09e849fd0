"""The message part of ``convmem bench``: ingest throughput and recall latency,
each beside a baseline measured in the same run so that ratios hold on a noisy,
shared machine.

- Ingest throughput (messages/s) end to end with the local embedder, beside
  the embedder alone on the same texts (the baseline), and with embedding
  excluded (every text already in the embedding cache).
- Recall latency p50/p95/p99 at each size (messages spread over N profiles),
  query embedding included; the search part beside an exact numpy top-k over
  the same profile's vectors held in memory; and tenant-wide vector search
  beside numpy over the whole matrix.
- Peak RSS of the process.

Synthetic customer-service messages are generated from templates; a pool of
distinct texts is embedded once and reused, so building 100k messages does not
take 100k model calls.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from memory_core.backends.base import Collection, SearchMode, Vectors, Where
from memory_core.bench.timing import (
    Latency,
    Progress,
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
from memory_core.models import Channel, ConversationIn, MessageIn, Role

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


@dataclass
class SizeReport:
    messages: int
    profiles: int
    build_seconds: float
    recall: Latency
    search: Latency
    search_numpy_baseline: Latency
    search_ratio: float
    tenant_vector_search: Latency
    tenant_numpy_baseline: Latency
    tenant_ratio: float


@dataclass
class BenchReport:
    machine: str
    backend: str
    embedder: str
    ingest_messages: int
    ingest_msgs_per_s: float
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


def bench_ingest(memory: Memory, n: int, tenant: str) -> tuple[float, float, float]:
    """(end-to-end msgs/s, embedder-alone msgs/s, ingest with embedding cached msgs/s),
    ingesting into tenant ``tenant`` (created)."""
    texts = synthetic_texts(n, seed=11)
    # The baseline embeds exactly what ingest embeds: each message with its
    # conversation context (conversations of 10 messages, as below).
    context = memory.settings.embed_context_turns
    batches = [embedding_texts(texts[s : s + 10], None, context) for s in range(0, n, 10)]
    alone = n / sum(seconds(model_alone(memory.embedder).embed_batch, batches))
    handle = memory.tenants.add(tenant)
    end_to_end = n / sum(seconds(handle.ingest, _conversations(texts, 0, 10, "ingest")))
    # Same texts again, into fresh conversations: the embedding cache answers.
    cached = n / sum(seconds(handle.ingest, _conversations(texts, 1, 10, "ingest-cached")))
    return end_to_end, alone, cached


def _build(
    memory: Memory, n: int, profiles: int, pool: list[str], tick: Callable[[int], None]
) -> None:
    rng = random.Random(n)
    per_profile = max(1, n // profiles)
    for p in range(profiles):
        texts = [rng.choice(pool) for _ in range(per_profile)]
        for conv in _conversations(texts, p, 10, memory.name):
            memory.ingest(conv)
        tick(per_profile)


def bench_size(
    memory: Memory,
    n: int,
    profiles: int,
    queries: int,
    pool: list[str],
    tick: Callable[[int], None],
    tenant: str | None = None,
) -> SizeReport:
    """Build ``n`` messages over ``profiles`` profiles in tenant ``tenant`` (created;
    default ``bench-<n>``), then time ``queries`` recalls and searches there."""
    handle = memory.tenants.add(tenant or f"bench-{n}")
    t0 = time.perf_counter()
    _build(handle, n, profiles, pool, tick)
    build = time.perf_counter() - t0
    backend, embedder, name = handle.backend, handle.embedder, handle.name
    rng = random.Random(1)
    query_texts = [f"{q} {i}" for i, q in enumerate(synthetic_texts(queries, seed=99))]
    prof_ids = [
        handle.profiles.get(f"custom:bench=p{rng.randrange(profiles)}").id for _ in range(queries)
    ]
    recall = timed(lambda pq: handle.recall(*pq), zip(prof_ids, query_texts, strict=True))

    qvecs = embedder.embed_batch(query_texts)
    mine = [Where(eq={"profile_id": pid}) for pid in prof_ids]
    vecs = [Vectors(embedder.model_id, qv[None, :]) for qv in qvecs]
    search = timed(
        lambda vw: backend.search(
            name, Collection.MESSAGES, mode=SearchMode.VECTOR, vector=vw[0], where=vw[1], limit=8
        ),
        zip(vecs, mine, strict=True),
    )
    # Each profile's own vectors, embedded (untimed) as the baseline needs them.
    own = (
        (embedder.embed_batch([m.text for m in backend.find(name, Collection.MESSAGES, where)]), qv)
        for where, qv in zip(mine, qvecs, strict=True)
    )
    base = timed(lambda mq: numpy_topk(mq[0], mq[1], 8), own)

    everything = backend.find(name, Collection.MESSAGES)
    matrix = embedder.embed_batch([m.text for m in everything])  # cached: pool texts
    wide = min(50, queries)
    tsearch = timed(
        lambda vec: backend.search(
            name, Collection.MESSAGES, mode=SearchMode.VECTOR, vector=vec, limit=10
        ),
        vecs[:wide],
    )
    tbase = timed(lambda qv: numpy_topk(matrix, qv, 10), qvecs[:wide])
    return SizeReport(
        messages=n,
        profiles=profiles,
        build_seconds=round(build, 1),
        recall=recall,
        search=search,
        search_numpy_baseline=base,
        search_ratio=round(search.p50_ms / max(base.p50_ms, 1e-6), 2),
        tenant_vector_search=tsearch,
        tenant_numpy_baseline=tbase,
        tenant_ratio=round(tsearch.p50_ms / max(tbase.p50_ms, 1e-6), 2),
    )


def run_bench(
    sizes: Sequence[int],
    *,
    profiles: int = 1000,
    queries: int = 200,
    ingest_messages: int = 2000,
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
                    memory, sizes, tenants, profiles, queries, ingest_messages, progress
                )
            finally:
                if backend is not None:
                    for tenant in tenants:
                        memory.backend.drop_tenant(tenant)
    report.peak_rss_mb = peak_rss_mb()
    return report


def _run_bench(
    memory: Memory,
    sizes: Sequence[int],
    tenants: list[str],
    profiles: int,
    queries: int,
    ingest_messages: int,
    progress: Progress | None,
) -> BenchReport:
    e2e, alone, cached = bench_ingest(memory, ingest_messages, tenants[0])
    pool = synthetic_texts(5000, seed=3)
    memory.embedder.embed_batch(pool)
    report = BenchReport(
        machine=machine(),
        backend=memory.backend.name,
        embedder=memory.embedder.model_id,
        ingest_messages=ingest_messages,
        ingest_msgs_per_s=round(e2e, 1),
        embedder_alone_msgs_per_s=round(alone, 1),
        ingest_no_embedding_msgs_per_s=round(cached, 1),
    )
    for n, tenant in zip(sizes, tenants[1:], strict=True):
        tick = ticker(progress, f"{memory.backend.name}: building {n:,} messages", n)
        report.sizes.append(bench_size(memory, n, profiles, queries, pool, tick, tenant))
    return report


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
    table = Table(title="Ingest (messages/s)")
    for col in ("backend", "end to end", "embedder alone (baseline)", "embedding cached"):
        table.add_column(col, justify="right")
    for report in reports:
        table.add_row(
            report.backend,
            f"{report.ingest_msgs_per_s:.0f}",
            f"{report.embedder_alone_msgs_per_s:.0f}",
            f"{report.ingest_no_embedding_msgs_per_s:.0f}",
        )
    console.print(table)
    lat = Table(title="Recall latency (ms, p50 / p95 / p99)")
    for col in (
        "backend",
        "messages",
        "build (s)",
        "recall (embed incl.)",
        "profile search",
        "numpy baseline",
        "ratio",
        "tenant-wide search",
        "numpy baseline",
        "ratio",
    ):
        lat.add_column(col, justify="right")
    for report in reports:
        for s in report.sizes:
            lat.add_row(
                report.backend,
                f"{s.messages:,}",
                f"{s.build_seconds:.0f}",
                s.recall.text(),
                s.search.text(),
                s.search_numpy_baseline.text(),
                f"{s.search_ratio:.2f}x",
                s.tenant_vector_search.text(),
                s.tenant_numpy_baseline.text(),
                f"{s.tenant_ratio:.2f}x",
            )
    console.print(lat)
    console.print(f"peak RSS {reports[-1].peak_rss_mb:.0f} MB (the whole process)")
