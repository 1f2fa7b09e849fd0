"""``convmem bench-mcp``: what MCP costs per tool call, in time and in tokens.

Tokens: the tool list per role and a typical recall result, now and before issue
14 (:mod:`convmem_mcp.tokens`). Time: for each tool (recall, search_knowledge,
remember, get_profile), warm latency p50/p95 of the call
made through the MCP SDK client to a ``convmem serve`` subprocess over stdio,
and over streamable HTTP (bearer token, 127.0.0.1), beside the same call made
directly on the Python API (the :mod:`memory_core.tools` function the server
runs, on a :class:`Memory` opened in this process) in the same run, on the same
store. The ratio MCP / direct is the protocol overhead.

Also here: starting ``convmem serve`` as a subprocess (:func:`convmem_command`,
:func:`stdio_parameters`, :class:`HttpServerProcess`), used by the benchmark,
the tests and anyone driving the server from Python.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel, computed_field
from rich.console import Console
from rich.table import Table

from memory_core import tools
from memory_core.bench import synthetic_texts
from memory_core.bench.timing import Latency, machine, seconds
from memory_core.config import load_settings
from memory_core.knowledge.types import DocumentIn
from memory_core.memory import Memory

from .auth import TOKENS_ENV, new_token
from .tokens import PREVIOUS, Cost, TokenFigures, measure_tokens

__all__ = [
    "HttpServerProcess",
    "McpBenchResult",
    "ToolTiming",
    "convmem_command",
    "http_client",
    "print_mcp_bench",
    "print_token_figures",
    "run_mcp_bench",
    "run_token_figures",
    "stdio_parameters",
]

_READY = re.compile(r"listening on (http://\S+/mcp)")
_CUSTOMER = "phone:+16175550142"
_TENANT = "bench"


# -- starting the server ----------------------------------------------------------


def convmem_command() -> list[str]:
    """The ``convmem`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("convmem")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from memory_core.cli import main; main()"]


def _store_args(db: Path, embedder: str) -> list[str]:
    return ["serve", "--db", str(db), "--embedder", embedder]


def stdio_parameters(
    db: Path,
    *,
    tenant: str | None = None,
    embedder: str = "hash",
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> StdioServerParameters:
    """How the SDK's stdio client launches ``convmem serve`` on ``db``."""
    command, *args = convmem_command()
    args += _store_args(db, embedder)
    if tenant is not None:
        args += ["--tenant", tenant]
    return StdioServerParameters(
        command=command, args=args, cwd=cwd or db.parent, env=dict(env or {})
    )


class HttpServerProcess:
    """``convmem serve --http`` on 127.0.0.1 and a free port, in a subprocess.

    Entering starts it and waits (at most ``timeout`` seconds) until it reports
    the URL it serves, then checks it answers; leaving stops it. ``tokens`` maps
    bearer tokens to tenants (passed as ``$CONVMEM_MCP_TOKENS``); ``environ`` is
    the rest of its environment (default: this process's).
    """

    def __init__(
        self,
        db: Path,
        tokens: Mapping[str, str],
        *,
        embedder: str = "hash",
        timeout: float = 60.0,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.environ = dict(os.environ if environ is None else environ)
        self.tokens = dict(tokens)
        self.embedder = embedder
        self.timeout = timeout
        self.cwd = cwd or db.parent
        self.url = ""
        self.stderr_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> HttpServerProcess:
        env = {**self.environ, TOKENS_ENV: json.dumps(self.tokens)}
        args = [*_store_args(self.db, self.embedder), "--http", "--host", "127.0.0.1"]
        self._proc = subprocess.Popen(
            [*convmem_command(), *args, "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.cwd,
            env=env,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self._reader.start()
        try:
            self.url = self._wait_for_url(lines)
            self._wait_until_answering()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _read(self, lines: queue.Queue[str | None]) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))
            lines.put(line)
        lines.put(None)

    def _wait_for_url(self, lines: queue.Queue[str | None]) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"convmem serve --http did not start in {self.timeout:.0f}s")
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(
                    "convmem serve --http exited: " + "\n".join(self.stderr_lines[-20:])
                )
            match = _READY.search(line)
            if match:
                return match.group(1)

    def _wait_until_answering(self) -> None:
        health = self.url.removesuffix("/mcp") + "/healthz"
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                if httpx2.get(health, timeout=5.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{health} did not answer in {self.timeout:.0f}s")
            time.sleep(min(0.05 * attempt, 0.5))  # back-off while polling, bounded by deadline

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._reader is not None:
            self._reader.join(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()
        self._proc = None


@asynccontextmanager
async def http_client(url: str, token: str | None) -> AsyncIterator[Client]:
    """A connected SDK client for a streamable HTTP server, sending ``token``."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


# -- the benchmark ----------------------------------------------------------------


class ToolTiming(BaseModel):
    tool: str
    direct: Latency
    stdio: Latency
    http: Latency

    @computed_field  # type: ignore[prop-decorator]
    @property
    def stdio_ratio(self) -> float:
        """MCP over stdio / direct, at p50."""
        return round(self.stdio.p50_ms / max(self.direct.p50_ms, 1e-6), 2)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def http_ratio(self) -> float:
        """MCP over HTTP / direct, at p50."""
        return round(self.http.p50_ms / max(self.direct.p50_ms, 1e-6), 2)


class McpBenchResult(BaseModel):
    machine: str
    embedder: str
    seeded_messages: int
    warmup: int
    calls: int
    """Timed calls per tool and transport."""
    tools: list[ToolTiming]
    tokens: TokenFigures


Call = tuple[str, dict[str, Any]]


def _calls(transport: str) -> dict[str, Callable[[int], Call]]:
    """For each tool, the i-th call's (name, arguments); remember appends one
    message (unique id) to a conversation of this transport."""
    conversation = f"bench-{transport}"

    def remember(i: int) -> Call:
        return "remember", {
            "conversation_id": conversation,
            "channel": "chat",
            "customer": _CUSTOMER,
            "messages": [
                {
                    "role": "customer",
                    "text": f"Is my refund for the double charge done yet? ({i})",
                    "id": f"{conversation}-{i}",
                }
            ],
        }

    return {
        "recall": lambda i: ("recall", {"customer": _CUSTOMER, "query": "refund double charge"}),
        "remember": remember,
        "get_profile": lambda i: ("get_profile", {"customer": _CUSTOMER}),
        "search_knowledge": lambda i: (
            "search_knowledge",
            {"query": "how long does a refund take", "limit": 5},
        ),
    }


def _seed(memory: Memory, messages: int) -> Memory:
    """Seed tenant ``bench`` (created); returns its handle."""
    memory = memory.tenants.add(_TENANT)
    texts = synthetic_texts(max(messages, 1))
    per_conversation = 10
    for start in range(0, len(texts), per_conversation):
        chunk = texts[start : start + per_conversation]
        memory.ingest(
            {
                "channel": ["voice", "sms", "chat", "email"][start // per_conversation % 4],
                "customer": [_CUSTOMER],
                "messages": [
                    {"role": "customer" if j % 2 == 0 else "human_agent", "text": t}
                    for j, t in enumerate(chunk)
                ],
            }
        )
    # A small help centre for search_knowledge: one short article per document.
    articles = synthetic_texts(200, seed=5)
    memory.knowledge.bases.add("help")
    memory.knowledge.sources.add(
        "help",
        documents=[
            DocumentIn(title=f"Article {n}", text=" ".join(articles[n : n + 4]))
            for n in range(0, len(articles), 4)
        ],
        title="Help centre",
    )
    return memory


def _time_direct(memory: Memory, tool: str, warmup: int, calls: int) -> list[float]:
    spec = tools.tool_spec(tool)
    make = _calls("direct")[tool]
    requests = [make(i)[1] for i in range(warmup + calls)]
    return seconds(
        lambda args: spec.run(memory, tools.validate_input(spec.input_model, args)),
        requests,
        warmup=warmup,
    )


async def _time_client(
    client: Client, transport: str, tool: str, warmup: int, calls: int
) -> list[float]:
    make = _calls(transport)[tool]
    out: list[float] = []
    for i in range(warmup + calls):
        name, args = make(i)
        start = time.perf_counter()
        result = await client.call_tool(name, args)
        elapsed = time.perf_counter() - start
        if result.is_error:
            raise RuntimeError(f"{transport} {name} failed: {result.content}")
        if i >= warmup:
            out.append(elapsed)
    return out


async def _time_all(
    connect: Callable[[], Any], transport: str, names: Sequence[str], warmup: int, calls: int
) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    async with connect() as client:
        for name in names:
            timings[name] = await _time_client(client, transport, name, warmup, calls)
    return timings


def run_mcp_bench(
    *,
    calls: int = 200,
    warmup: int = 20,
    messages: int = 500,
    embedder: str = "hash",
    tool_names: Sequence[str] = ("recall", "search_knowledge", "remember", "get_profile"),
    workdir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> McpBenchResult:
    """Measure every tool directly, over stdio and over HTTP, on one fresh store."""
    if calls < 1 or warmup < 0:
        raise ValueError("calls must be >= 1 and warmup >= 0")
    say = progress or (lambda _: None)
    say("tokens")
    tokens = run_token_figures(workdir=workdir)
    with tempfile.TemporaryDirectory(prefix="convmem-bench-mcp-", dir=workdir) as tmp:
        root = Path(tmp)
        db = root / "bench.db"
        settings = load_settings(backend=f"sqlite:///{db}", embedder=embedder, data_dir=root)
        direct: dict[str, list[float]] = {}
        with Memory.open(settings=settings) as store:
            say(f"seeding {messages} messages")
            memory = _seed(store, messages)
            for name in tool_names:
                say(f"direct {name}")
                direct[name] = _time_direct(memory, name, warmup, calls)
        env = {"XDG_DATA_HOME": str(root / "data")}
        say("stdio")
        stdio = anyio.run(
            _time_all,
            lambda: Client(stdio_parameters(db, tenant=_TENANT, embedder=embedder, env=env)),
            "stdio",
            tool_names,
            warmup,
            calls,
        )
        token = new_token()
        say("http")
        with HttpServerProcess(db, {token: _TENANT}, embedder=embedder) as server:
            http = anyio.run(
                _time_all, lambda: http_client(server.url, token), "http", tool_names, warmup, calls
            )
    return McpBenchResult(
        machine=machine(),
        embedder=embedder,
        seeded_messages=messages,
        warmup=warmup,
        calls=calls,
        tools=[
            ToolTiming(
                tool=name,
                direct=Latency.of(direct[name]),
                stdio=Latency.of(stdio[name]),
                http=Latency.of(http[name]),
            )
            for name in tool_names
        ],
        tokens=tokens,
    )


def run_token_figures(*, workdir: Path | None = None) -> TokenFigures:
    """The token figures now (:func:`convmem_mcp.tokens.measure_tokens`), on a fresh
    throwaway store with the hash embedder."""
    with tempfile.TemporaryDirectory(prefix="convmem-tokens-", dir=workdir) as tmp:
        root = Path(tmp)
        settings = load_settings(
            backend=f"sqlite:///{root / 'tokens.db'}", embedder="hash", data_dir=root
        )
        with Memory.open(settings=settings) as memory:
            return anyio.run(measure_tokens, memory)


def print_token_figures(console: Console, figures: TokenFigures) -> None:
    """Token costs now beside before issue 14, as a table."""
    table = Table(
        title="MCP token cost: chars / tokens (count_tokens estimate), before issue 14 and now"
    )
    for col in ("what", "before", "now", "now / before"):
        table.add_column(col, justify="left" if col == "what" else "right")

    def row(what: str, before: Cost, now: Cost) -> None:
        ratio = f"{now.tokens / before.tokens:.2f}"
        table.add_row(
            what, f"{before.chars:,} / {before.tokens:,}", f"{now.chars:,} / {now.tokens:,}", ratio
        )

    for role, cost in figures.listed.items():
        was, now = PREVIOUS.tools[role], figures.tools[role]
        shown = "stdio, " if role == "admin" else ""
        row(f"tools/list, {shown}{role} key ({was} -> {now} tools)", PREVIOUS.listed[role], cost)
    row("tools/list as sent (every tool)", PREVIOUS.wire, figures.wire)
    row("typical recall result (text)", PREVIOUS.recall, figures.recall)
    console.print(table)
    console.print(
        "tools/list rows: name + description + input schema of each tool listed to that "
        "role, what a host hands the model on every turn."
    )


def print_mcp_bench(console: Console, result: McpBenchResult) -> None:
    """The result as a table: p50 / p95 in ms per transport, and p50 ratios."""
    console.print(
        f"[bold]convmem bench-mcp[/] - {result.machine}, embedder {result.embedder}, "
        f"{result.seeded_messages} messages stored, {result.warmup} warm-up and "
        f"{result.calls} timed calls per tool and transport"
    )
    table = Table(title="MCP tool latency (ms, p50 / p95, warm)")
    for col in ("tool", "Python API", "stdio", "ratio", "HTTP", "ratio"):
        table.add_column(col, justify="left" if col == "tool" else "right")
    for t in result.tools:
        table.add_row(
            t.tool,
            t.direct.text(p99=False),
            t.stdio.text(p99=False),
            f"{t.stdio_ratio:.1f}x",
            t.http.text(p99=False),
            f"{t.http_ratio:.1f}x",
        )
    console.print(table)
    print_token_figures(console, result.tokens)
