"""``convmem``: demo, ingest, recall, eval and bench from the terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID

from memory_core.cli.connect import register_connect
from memory_core.cli.governance import register_governance
from memory_core.cli.knowledge import knowledge_app
from memory_core.cli.options import (
    DbOpt,
    EmbedderOpt,
    JsonOpt,
    SecondEmbedderOpt,
    TenantOpt,
    settings_for,
)
from memory_core.cli.profiles import register_profiles
from memory_core.errors import MemoryCoreError

# The commands a newcomer needs first, in this order; every other command follows
# in the order it was added.
FIRST_COMMANDS = ("demo", "ingest", "recall", "extract", "serve", "knowledge", "connect", "eval")


class _Group(typer.core.TyperGroup):
    """Lists the everyday commands first (``convmem --help``)."""

    def list_commands(self, ctx: Any) -> list[str]:  # typer vendors its own click Context
        names = super().list_commands(ctx)
        first = [name for name in FIRST_COMMANDS if name in names]
        return first + [name for name in names if name not in first]


app = typer.Typer(
    name="convmem",
    cls=_Group,
    help="Conversation Memory: memory and knowledge for customer conversations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: flags without a type placeholder, paragraphs re-wrapped to the terminal.
    rich_markup_mode=None,
)
eval_app = typer.Typer(help="Measure retrieval quality on public data sets.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(knowledge_app, name="knowledge")
register_governance(app)  # gc, export, audit, keys, policy
register_connect(app)  # connect segment-import, segment-push, ...
register_profiles(app)  # profiles pending, confirm, reject, unmerge

console = Console()
err_console = Console(stderr=True)

BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Backend to run on, e.g. weaviate://127.0.0.1:8080 (bench: beside the embedded).",
    ),
]


_settings = settings_for


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _version(value: bool) -> None:
    if value:
        from memory_core import __version__

        print(f"convmem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            help="Log to stderr at this level: debug, info, warning (default), error, critical.",
            case_sensitive=False,
        ),
    ] = "warning",
) -> None:
    """Conversation Memory: memory and knowledge for customer conversations."""
    import logging

    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(
            f"expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}", param_hint="--log-level"
        )
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def demo(
    db: DbOpt = None,
    embedder: EmbedderOpt = None,
    serve_console: Annotated[
        bool,
        typer.Option(
            "--console",
            help="Then keep the store and serve it (console, REST API, MCP) until Ctrl-C, "
            "printing the console's URL and an admin key to sign in with (the 'api' extra).",
        ),
    ] = False,
    port: Annotated[
        int, typer.Option("--port", help="Port of --console (default: a free one).")
    ] = 0,
) -> None:
    """Ingest sample conversations of one customer across voice, SMS and chat,
    show identity resolution, then a recall. Uses a throwaway store unless --db
    or --console."""
    from memory_core.cli.demo import run_demo

    run_demo(console, db=db, embedder=embedder, serve_console=serve_console, port=port)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSON lines, one conversation per line.")],
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    second_embedder: SecondEmbedderOpt = None,
    continue_on_error: Annotated[
        bool,
        typer.Option(
            "--continue-on-error",
            help="Write the valid lines and report the invalid ones (exit 1) instead of "
            "writing nothing.",
        ),
    ] = False,
) -> None:
    """Ingest conversations from a JSONL file (see README for the line format).

    Every line is checked against the store before anything is written; if any
    line is invalid nothing is written (exit 2, one message per bad line with its
    number), unless --continue-on-error. Re-running an import (or resuming an
    interrupted one) skips what is stored.
    """
    from memory_core.cli.commands import run_ingest

    settings = _settings(db, tenant, embedder, second_embedder)
    run_ingest(console, file, settings, continue_on_error=continue_on_error)


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
    second_embedder: SecondEmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall what matters about a customer."""
    from memory_core.cli.commands import run_recall

    run_recall(
        console,
        _settings(db, tenant, embedder, second_embedder),
        profile=profile,
        query=query,
        conversation=conversation,
        limit=limit,
        budget=budget,
        as_json=as_json,
    )


@app.command()
def extract(
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="One customer: profile id or identifier.")
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", "-c", help="One conversation.")
    ] = None,
    all_: Annotated[
        bool,
        typer.Option("--all", help="Back-fill every ended conversation not yet extracted."),
    ] = False,
    force: Annotated[bool, typer.Option(help="Re-run where already extracted.")] = False,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract observations, traits and summaries (heuristic rules, the LLM named by
    CONVMEM_LLM_MODEL, or the local model file CONVMEM_LLM_GGUF). Idempotent and
    resumable: what is already extracted is skipped."""
    from memory_core.cli.extract import run_extract

    run_extract(
        console, _settings(db, tenant, embedder), profile=profile, conversation=conversation,
        all_=all_, force=force, as_json=as_json,
    )  # fmt: skip


@eval_app.command("locomo")
def eval_locomo(
    data: Annotated[
        Path,
        typer.Option(
            help="LoCoMo JSON: locomo10.json of github.com/snap-research/LoCoMo (CC BY-NC 4.0; "
            "not shipped, see README: Quality and performance)."
        ),
    ],
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    alpha: Annotated[float, typer.Option(help="Hybrid weight of the vector side.")] = 0.4,
    embedder: EmbedderOpt = None,
    second_embedder: SecondEmbedderOpt = None,
    as_json: JsonOpt = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Run the eval on this backend instead of a throwaway embedded store, "
            "e.g. weaviate://127.0.0.1:8080 (a scratch tenant is created and dropped).",
        ),
    ] = None,
    level: Annotated[
        str,
        typer.Option(
            help="message (turns), or observation: also observations and summaries from the "
            "heuristic extractor, scored through their evidence, beside the message level."
        ),
    ] = "message",
) -> None:
    """Evidence recall@5/10/25 on LoCoMo, message or observation level (no LLM)."""
    from memory_core.eval.run import run_locomo_cli

    run_locomo_cli(
        console, data, mode=mode, alpha=alpha, embedder=embedder, as_json=as_json, backend=backend,
        level=level, second_embedder=second_embedder,
    )  # fmt: skip


@eval_app.command("beir")
def eval_beir(
    data: Annotated[
        Path,
        typer.Option(
            help="A BEIR data set directory (corpus.jsonl, queries.jsonl, qrels/test.tsv), "
            "e.g. SciFact (CC BY-NC 2.0; not shipped, see README: Quality and performance)."
        ),
    ],
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    alpha: Annotated[
        float | None,
        typer.Option(help="Hybrid weight of the vector side (default: knowledge search's)."),
    ] = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10 and recall@100 on a BEIR data set, indexed and searched through the
    knowledge pipeline (chunked documents, hybrid search, best chunk per document)."""
    from memory_core.eval.run import run_beir_cli

    run_beir_cli(console, data, mode=mode, alpha=alpha, embedder=embedder, as_json=as_json)


@app.command()
def bench(
    sizes: Annotated[
        str, typer.Option(help="Comma-separated message counts for recall latency.")
    ] = "10000",
    million: Annotated[
        bool, typer.Option("--million", help="Also run at 1,000,000 messages.")
    ] = False,
    profiles: Annotated[int, typer.Option(help="Profiles the messages are spread over.")] = 1000,
    queries: Annotated[int, typer.Option(help="Recall queries per size.")] = 200,
    as_json: JsonOpt = False,
    backend: BackendOpt = None,
    knowledge: Annotated[
        str,
        typer.Option(help="Comma-separated knowledge chunk counts (indexing, search); '' skips."),
    ] = "2000",
) -> None:
    """Ingest throughput, recall latency p50/p95/p99 beside its floor (the model alone
    + exact numpy), CPU time without the model and peak RSS, each measured in the same
    run (with --backend: also beside the embedded store); then knowledge indexing and
    search latency (--sizes '' runs only those). Defaults take about a minute."""
    from memory_core.bench import run_bench_cli

    counts = _counts("--sizes", sizes)
    if million:
        counts.append(1_000_000)
    data = run_bench_cli(
        console, counts, _counts("--knowledge", knowledge), profiles=profiles, queries=queries,
        as_json=as_json, backend=backend,
    )  # fmt: skip
    if data is not None:
        print_json(data)


def _counts(option: str, text: str) -> list[int]:
    """``"10000,100000"`` as ``[10000, 100000]``; a clear usage error otherwise."""
    try:
        counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated whole numbers such as 5000,100000, got {text!r}",
            param_hint=option,
        ) from None
    if any(n <= 0 for n in counts):
        raise typer.BadParameter("counts must be positive", param_hint=option)
    return counts


@app.command()
def reembed(
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    second_embedder: SecondEmbedderOpt = None,
    batch_size: Annotated[int, typer.Option(help="Records embedded per batch.")] = 256,
    as_json: JsonOpt = False,
) -> None:
    """Re-embed a tenant's store with the configured embedder (after changing the
    embedding model). Resumable: run it again after an interruption."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from memory_core.config import require_store
    from memory_core.memory import Memory
    from memory_core.reembed import reembed as run

    settings = require_store(_settings(db, tenant, embedder, second_embedder))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        Memory.open(settings=settings) as memory,
        Progress(*columns, TimeRemainingColumn(), console=err_console, disable=as_json) as bar,
    ):
        tasks: dict[str, TaskID] = {}

        def progress(collection: str, done: int, total: int) -> None:
            if collection not in tasks:
                tasks[collection] = bar.add_task(collection, total=total)
            bar.update(tasks[collection], completed=done)

        report = run(memory, batch_size=batch_size, progress=progress)
    if as_json:
        print_json(report.to_dict())
        return
    parts = ", ".join(f"{n} {name}" for name, n in report.reembedded.items() if n)
    console.print(
        f"re-embedded tenant {report.tenant!r} with {report.model_id}: {parts or 'nothing to do'}"
        + (
            f" ({sum(report.current.values())} already current)"
            if any(report.current.values())
            else ""
        ),
        highlight=False,
    )


@app.command()
def migrate(
    source: Annotated[
        str, typer.Option("--from", help="Backend to copy from: sqlite:///path.db, weaviate://...")
    ],
    target: Annotated[str, typer.Option("--to", help="Backend to copy to (same forms).")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant to copy.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop the tenant in the target first if it has data.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Records per page.")] = 500,
    as_json: JsonOpt = False,
) -> None:
    """Copy a tenant between backends (the embedded store and Weaviate, say), vectors
    included, with progress and per-collection verification counts."""
    from memory_core.migrate import run_migrate_cli

    ok = run_migrate_cli(
        console,
        source,
        target,
        tenant,
        replace=replace,
        batch_size=batch_size,
        as_json=as_json,
    )
    if not ok:
        raise typer.Exit(1)


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
    """Entry point of the ``convmem`` script: typed errors become one clear line
    on stderr (no traceback) and exit status 2."""
    try:
        load_plugins()
        app()
    except MemoryCoreError as exc:
        message = " ".join(str(exc).split())  # one line, however the message was built
        err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
        sys.exit(2)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
