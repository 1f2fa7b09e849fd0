"""``convmem``: demo, ingest, recall, eval and bench from the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from memory_core.config import Settings, load_settings
from memory_core.errors import MemoryCoreError

app = typer.Typer(
    name="convmem",
    help="Conversation Memory: memory and knowledge for customer conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Measure retrieval quality on public data sets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

console = Console()
err_console = Console(stderr=True)

DbOpt = Annotated[
    Path | None, typer.Option("--db", help="SQLite file to use (default: the configured store).")
]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant to use.")]
EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", help="Embedder: local (default), hash[:DIM], litellm:<model>."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _settings(db: Path | None, tenant: str | None, embedder: str | None) -> Settings:
    backend = f"sqlite:///{db.resolve()}" if db is not None else None
    return load_settings(backend=backend, tenant=tenant, embedder=embedder)


@app.command()
def demo(
    db: DbOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Ingest sample conversations of one customer across voice, SMS and chat,
    show identity resolution, then a recall. Uses a throwaway store unless --db."""
    from memory_core.cli.demo import run_demo

    run_demo(console, db=db, embedder=embedder)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSON lines, one conversation per line.")],
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Ingest conversations from a JSONL file (see README for the line format).

    Lines are validated first; nothing is written if any line is invalid.
    Re-ingesting the same file skips messages already stored.
    """
    from memory_core.cli.commands import run_ingest

    run_ingest(console, file, _settings(db, tenant, embedder))


@app.command()
def recall(
    profile: Annotated[
        str, typer.Argument(help="Profile id or identifier, e.g. phone:+16175550142.")
    ],
    query: Annotated[str | None, typer.Argument(help="What the agent needs to know.")] = None,
    conversation: Annotated[
        str | None,
        typer.Option("--conversation", "-c", help="Infer the query from its last turns."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Messages to return at most.")] = 8,
    budget: Annotated[int, typer.Option(help="Token budget of the context.")] = 1500,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall what matters about a customer."""
    from memory_core.cli.commands import run_recall

    run_recall(
        console,
        _settings(db, tenant, embedder),
        profile=profile,
        query=query,
        conversation=conversation,
        limit=limit,
        budget=budget,
        as_json=as_json,
    )


@eval_app.command("locomo")
def eval_locomo(
    data: Annotated[
        Path, typer.Option(help="LoCoMo JSON file (e.g. ../shared/eval/locomo/locomo_dev.json).")
    ],
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    alpha: Annotated[float, typer.Option(help="Hybrid weight of the vector side.")] = 0.4,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evidence recall@5/10/25 on LoCoMo, message level (no LLM)."""
    from memory_core.eval.run import run_locomo_cli

    run_locomo_cli(console, data, mode=mode, alpha=alpha, embedder=embedder, as_json=as_json)


@eval_app.command("beir")
def eval_beir(
    data: Annotated[
        Path, typer.Option(help="BEIR directory (corpus.jsonl, queries.jsonl, qrels/).")
    ],
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    alpha: Annotated[float, typer.Option(help="Hybrid weight of the vector side.")] = 0.5,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10 and recall@100 on a BEIR data set through the same hybrid search."""
    from memory_core.eval.run import run_beir_cli

    run_beir_cli(console, data, mode=mode, alpha=alpha, embedder=embedder, as_json=as_json)


@app.command()
def bench(
    sizes: Annotated[
        str, typer.Option(help="Comma-separated message counts for recall latency.")
    ] = "10000,100000",
    million: Annotated[
        bool, typer.Option("--million", help="Also run at 1,000,000 messages.")
    ] = False,
    profiles: Annotated[int, typer.Option(help="Profiles the messages are spread over.")] = 1000,
    queries: Annotated[int, typer.Option(help="Recall queries per size.")] = 200,
    as_json: JsonOpt = False,
) -> None:
    """Ingest throughput, recall latency p50/p95/p99 and peak RSS, each beside a
    baseline measured in the same run."""
    from memory_core.bench import run_bench_cli

    counts = [int(s) for s in sizes.split(",") if s.strip()]
    if million:
        counts.append(1_000_000)
    run_bench_cli(console, counts, profiles=profiles, queries=queries, as_json=as_json)


PLUGIN_GROUP = "convmem.cli"
"""Entry-point group through which other packages of this distribution (the MCP
server, integrations) add commands, so that memory_core never imports them.
Each entry point names a callable taking the Typer app."""


def load_plugins() -> None:
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            register = entry.load()
        except ImportError as exc:  # an optional part that is not installed
            err_console.print(f"[dim]convmem {entry.name}: unavailable ({exc})[/]")
            continue
        register(app)


def main() -> None:
    """Entry point of the ``convmem`` script: typed errors become one clear line."""
    try:
        load_plugins()
        app()
    except MemoryCoreError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        sys.exit(2)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
