"""``convmem bench-api``: p50/p95 of ``POST /v1/profiles/{ref}/recall`` over HTTP
(a live ``convmem serve --http``, keep-alive client) beside the same recall in
process, in the same run on the same store: ``memory.recall`` (the engine) and
the recall tool (what the route runs: the engine plus the context rendering),
so the difference is the HTTP layer.

The store is seeded as ``convmem bench-mcp`` seeds it (one customer with
``messages`` messages over four channels, a small help centre).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, computed_field

from memory_core import tools
from memory_core.bench.timing import Latency, machine, seconds
from memory_core.config import load_settings
from memory_core.memory import Memory

__all__ = ["QUERY", "ApiBenchResult", "print_api_bench", "run_api_bench"]

QUERY = "refund double charge"


class ApiBenchResult(BaseModel):
    machine: str
    embedder: str
    seeded_messages: int
    warmup: int
    calls: int
    """Timed calls per way."""
    engine: Latency
    """``memory.recall(customer, query)`` in process."""
    tool: Latency
    """The recall tool in process (what the route runs)."""
    http: Latency
    """``POST /v1/profiles/{ref}/recall`` over HTTP on 127.0.0.1."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def http_ratio(self) -> float:
        """HTTP / in-process engine call, at p50."""
        return round(self.http.p50_ms / max(self.engine.p50_ms, 1e-6), 2)


def run_api_bench(
    *,
    calls: int = 200,
    warmup: int = 20,
    messages: int = 500,
    embedder: str = "hash",
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ApiBenchResult:
    """Measure recall in process and over the REST API on one fresh store."""
    import httpx2

    from convmem_mcp.auth import new_token
    from convmem_mcp.bench import _CUSTOMER, _TENANT, HttpServerProcess, _seed

    if calls < 1 or warmup < 0:
        raise ValueError("calls must be >= 1 and warmup >= 0")
    say = progress or (lambda _: None)
    with tempfile.TemporaryDirectory(prefix="convmem-bench-api-", dir=workdir) as tmp:
        root = Path(tmp)
        db = root / "bench.db"
        settings = load_settings(backend=f"sqlite:///{db}", embedder=embedder, data_dir=root)
        runs = range(warmup + calls)
        with Memory.open(settings=settings) as store:
            say(f"seeding {messages} messages")
            memory = _seed(store, messages)
            say("in process")
            engine = seconds(lambda _: memory.recall(_CUSTOMER, QUERY), runs, warmup=warmup)
            request = tools.RecallInput(customer=_CUSTOMER, query=QUERY)
            tool = seconds(lambda _: tools.recall(memory, request), runs, warmup=warmup)
        token = new_token()
        say("http")
        with (
            HttpServerProcess(db, {token: _TENANT}, embedder=embedder) as server,
            httpx2.Client(
                base_url=server.url.removesuffix("/mcp"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=30.0,
            ) as client,
        ):
            url = f"/v1/profiles/{_CUSTOMER}/recall"
            http: list[float] = []
            for i in runs:
                start = time.perf_counter()
                response = client.post(url, json={"query": QUERY})
                elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    raise RuntimeError(f"recall over HTTP failed: {response.text}")
                if i >= warmup:
                    http.append(elapsed)
    return ApiBenchResult(
        machine=machine(),
        embedder=embedder,
        seeded_messages=messages,
        warmup=warmup,
        calls=calls,
        engine=Latency.of(engine),
        tool=Latency.of(tool),
        http=Latency.of(http),
    )


def print_api_bench(console: object, result: ApiBenchResult) -> None:
    """The result as a table on a rich console."""
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    table = Table(
        title=f"recall p50 / p95 ms ({result.calls} warm calls, {result.seeded_messages} "
        f"messages, {result.embedder} embedder)"
    )
    table.add_column("way")
    table.add_column("p50 / p95 / p99 ms", justify="right")
    table.add_row("memory.recall (in process)", result.engine.text())
    table.add_row("recall tool (in process)", result.tool.text())
    table.add_row("POST /v1/profiles/{ref}/recall (HTTP)", result.http.text())
    console.print(table)
    console.print(f"HTTP / in process at p50: {result.http_ratio}x   ({result.machine})")
