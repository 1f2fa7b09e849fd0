"""``convmem bench``: throughput and latency, each beside a baseline measured in
the same run so that ratios hold on a noisy, shared machine.

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
import resource
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memory_core._engine import embedding_texts
from memory_core.backends.base import Collection, SearchMode, Vectors, Where
from memory_core.config import load_settings
from memory_core.memory import Memory
from memory_core.models import Channel, ConversationIn, Message, MessageIn, Record, Role

__all__ = ["BenchReport", "run_bench", "run_bench_cli", "synthetic_texts"]

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


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000.0


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            round(_pct(seconds, 50), 3), round(_pct(seconds, 95), 3), round(_pct(seconds, 99), 3)
        )


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


def _timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


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


def bench_ingest(
    memory: Memory, n: int, tenant: str = "bench-ingest"
) -> tuple[float, float, float]:
    """(end-to-end msgs/s, embedder-alone msgs/s, ingest with embedding cached msgs/s)."""
    texts = synthetic_texts(n, seed=11)
    inner = getattr(memory.embedder, "inner", memory.embedder)
    # The baseline embeds exactly what ingest embeds: each message with its
    # conversation context (conversations of 10 messages, as below).
    embedded = [
        t
        for start in range(0, n, 10)
        for t in embedding_texts(
            texts[start : start + 10], None, memory.settings.embed_context_turns
        )
    ]
    t = time.perf_counter()
    for start in range(0, n, 10):
        inner.embed_batch(embedded[start : start + 10])
    alone = n / (time.perf_counter() - t)
    memory.create_tenant(tenant)
    convs = _conversations(texts, 0, 10, "ingest")
    t = time.perf_counter()
    for conv in convs:
        memory.ingest(conv, tenant=tenant)
    end_to_end = n / (time.perf_counter() - t)
    # Same texts again, into fresh conversations: the embedding cache answers.
    convs = _conversations(texts, 1, 10, "ingest-cached")
    t = time.perf_counter()
    for conv in convs:
        memory.ingest(conv, tenant=tenant)
    cached = n / (time.perf_counter() - t)
    return end_to_end, alone, cached


def _build(
    memory: Memory, tenant: str, n: int, profiles: int, pool: list[str], tick: Callable[[int], None]
) -> None:
    memory.create_tenant(tenant)
    rng = random.Random(n)
    per_profile = max(1, n // profiles)
    for p in range(profiles):
        texts = [rng.choice(pool) for _ in range(per_profile)]
        for conv in _conversations(texts, p, 10, tenant):
            memory.ingest(conv, tenant=tenant)
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
    tenant = tenant or f"bench-{n}"
    t0 = time.perf_counter()
    _build(memory, tenant, n, profiles, pool, tick)
    build = time.perf_counter() - t0
    backend, embedder = memory.backend, memory.embedder
    rng = random.Random(1)
    query_texts = [f"{q} {i}" for i, q in enumerate(synthetic_texts(queries, seed=99))]
    prof_ids = [
        memory.get_profile(f"custom:bench=p{rng.randrange(profiles)}", tenant=tenant).id
        for _ in range(queries)
    ]

    recall_t = [0.0] * queries
    for i, (pid, q) in enumerate(zip(prof_ids, query_texts, strict=True)):
        t = time.perf_counter()
        memory.recall(pid, q, tenant=tenant)
        recall_t[i] = time.perf_counter() - t

    qvecs = embedder.embed_batch(query_texts)
    search_t, base_t = [], []
    for pid, qv in zip(prof_ids, qvecs, strict=True):
        vec = Vectors(embedder.model_id, qv[None, :])
        where = Where(eq={"profile_id": pid})
        search_t += _timed(
            lambda vec=vec, where=where: backend.search(  # type: ignore[misc]
                tenant,
                Collection.MESSAGES,
                mode=SearchMode.VECTOR,
                vector=vec,
                where=where,
                limit=8,
            ),
            1,
        )
        own = embedder.embed_batch(_texts(backend.find(tenant, Collection.MESSAGES, where)))
        base_t += _timed(lambda own=own, qv=qv: _numpy_topk(own, qv, 8), 1)  # type: ignore[misc]

    everything = backend.find(tenant, Collection.MESSAGES)
    matrix = embedder.embed_batch(_texts(everything))  # cached: pool texts
    tenant_t, tenant_base = [], []
    for qv in qvecs[: min(50, queries)]:
        vec = Vectors(embedder.model_id, qv[None, :])
        tenant_t += _timed(
            lambda vec=vec: backend.search(  # type: ignore[misc]
                tenant, Collection.MESSAGES, mode=SearchMode.VECTOR, vector=vec, limit=10
            ),
            1,
        )
        tenant_base += _timed(lambda qv=qv: _numpy_topk(matrix, qv, 10), 1)  # type: ignore[misc]
    search, base = Latency.of(search_t), Latency.of(base_t)
    tsearch, tbase = Latency.of(tenant_t), Latency.of(tenant_base)
    return SizeReport(
        messages=n,
        profiles=profiles,
        build_seconds=round(build, 1),
        recall=Latency.of(recall_t),
        search=search,
        search_numpy_baseline=base,
        search_ratio=round(search.p50_ms / max(base.p50_ms, 1e-6), 2),
        tenant_vector_search=tsearch,
        tenant_numpy_baseline=tbase,
        tenant_ratio=round(tsearch.p50_ms / max(tbase.p50_ms, 1e-6), 2),
    )


def _texts(records: Sequence[Record]) -> list[str]:
    return [m.text for m in records if isinstance(m, Message)]


def _numpy_topk(
    matrix: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.intp]:
    scores = matrix @ query
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def run_bench(
    sizes: Sequence[int],
    *,
    profiles: int = 1000,
    queries: int = 200,
    ingest_messages: int = 2000,
    embedder: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
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
    report.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def _run_bench(
    memory: Memory,
    sizes: Sequence[int],
    tenants: list[str],
    profiles: int,
    queries: int,
    ingest_messages: int,
    progress: Callable[[str, int, int], None] | None,
) -> BenchReport:
    e2e, alone, cached = bench_ingest(memory, ingest_messages, tenants[0])
    pool = synthetic_texts(5000, seed=3)
    memory.embedder.embed_batch(pool)
    report = BenchReport(
        machine=_machine(),
        backend=memory.backend.name,
        embedder=memory.embedder.model_id,
        ingest_messages=ingest_messages,
        ingest_msgs_per_s=round(e2e, 1),
        embedder_alone_msgs_per_s=round(alone, 1),
        ingest_no_embedding_msgs_per_s=round(cached, 1),
    )
    for n, tenant in zip(sizes, tenants[1:], strict=True):
        done = 0

        def tick(k: int, n: int = n) -> None:
            nonlocal done
            done += k
            if progress:
                progress(f"{memory.backend.name}: building {n:,} messages", done, n)

        report.sizes.append(bench_size(memory, n, profiles, queries, pool, tick, tenant))
    return report


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def run_bench_cli(
    console: Console,
    sizes: Sequence[int],
    *,
    profiles: int,
    queries: int,
    as_json: bool,
    backend: str | None = None,
) -> list[dict[str, Any]] | None:
    """Print the benchmark; with ``backend``, run it on the embedded store and on
    ``backend`` in the same process, one after the other, and show both. With
    ``as_json`` print nothing and return the reports (one per backend) instead."""
    targets: list[str | None] = [None]
    if backend is not None and backend != "sqlite" and not backend.startswith("sqlite:"):
        targets.append(backend)
    elif backend is not None:
        targets = [backend]
    reports = []
    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("benchmark", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        for target in targets:
            reports.append(
                run_bench(
                    sizes, profiles=profiles, queries=queries, progress=progress, backend=target
                )
            )
    if as_json:
        return [r.to_dict() for r in reports]
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
                _fmt(s.recall),
                _fmt(s.search),
                _fmt(s.search_numpy_baseline),
                f"{s.search_ratio:.2f}x",
                _fmt(s.tenant_vector_search),
                _fmt(s.tenant_numpy_baseline),
                f"{s.tenant_ratio:.2f}x",
            )
    console.print(lat)
    console.print(f"peak RSS {reports[-1].peak_rss_mb:.0f} MB (the whole process)")
    return None


def _fmt(lat: Latency) -> str:
    return f"{lat.p50_ms:.2f} / {lat.p95_ms:.2f} / {lat.p99_ms:.2f}"
