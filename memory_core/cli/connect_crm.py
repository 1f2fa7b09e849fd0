"""``convmem connect salesforce`` and ``convmem connect warehouse pull|export``
(registered on :data:`memory_core.cli.connect.connect_app`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from memory_core.cli.connect import (
    DbOpt,
    DryRunOpt,
    EmbedderOpt,
    JsonOpt,
    NoProgressOpt,
    TenantOpt,
    console,
    open_memory,
    show_report,
)

if TYPE_CHECKING:
    from memory_core.connectors._base import RunReport

__all__ = ["register"]

MappingOpt = Annotated[
    Path, typer.Option("--mapping", "-m", help="The mapping file (TOML; see docs/integrations.md).")
]
RestartOpt = Annotated[
    bool, typer.Option("--restart", help="Ignore the stored cursor; read everything again.")
]
UrlOpt = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="CONVMEM_WAREHOUSE_URL",
        help="SQLAlchemy database URL, e.g. postgresql+psycopg://user@host/db, "
        "duckdb:///file.duckdb, snowflake://... (default: $CONVMEM_WAREHOUSE_URL).",
        show_default=False,
    ),
]
EveryOpt = Annotated[
    float | None,
    typer.Option(
        "--every",
        metavar="SECONDS",
        help="Run again every SECONDS until interrupted (Ctrl-C).",
        min=1,
    ),
]

warehouse_app = typer.Typer(
    help="SQL warehouses (Snowflake, PostgreSQL, DuckDB, SQLite ...): pull rows into "
    "profiles, export observations, traits and summaries to tables.",
    no_args_is_help=True,
)


def salesforce(
    mapping: MappingOpt,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    restart: RestartOpt = False,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Import Salesforce Contacts, Accounts and Cases changed since the last run.

    Credentials come from the environment (SALESFORCE_CLIENT_SECRET, or a private
    key for the JWT bearer flow) as the mapping file's [salesforce] table says.
    """
    from memory_core.connectors._base import progress_bar
    from memory_core.connectors.salesforce import SalesforceMapping, pull

    spec = SalesforceMapping.load(mapping)
    with (
        open_memory(db, tenant, embedder) as memory,
        progress_bar("salesforce", enabled=not no_progress and not as_json) as progress,
    ):
        report = pull(memory, spec, dry_run=dry_run, restart=restart, progress=progress)
    show_report(report, as_json)


def salesforce_write_back(
    conversation_id: Annotated[
        str, typer.Argument(help="The conversation whose summary to write.")
    ],
    mapping: MappingOpt,
    case_id: Annotated[
        str | None,
        typer.Option("--case", help="The Case to comment on (write_back.as = 'case_comment')."),
    ] = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a conversation's summary to Salesforce (a Task on the contact, or a
    Case comment); once per conversation."""
    from memory_core.connectors.salesforce import SalesforceMapping, write_back

    spec = SalesforceMapping.load(mapping)
    with open_memory(db, tenant, embedder) as memory:
        report = write_back(memory, spec, conversation_id, case_id=case_id, dry_run=dry_run)
    show_report(report, as_json)


def _repeat(every: float | None, once: Callable[[], RunReport], as_json: bool) -> None:
    """Run ``once`` and show its report; with ``every``, again and again until Ctrl-C."""
    if every is None:
        show_report(once(), as_json)
        return
    from memory_core.connectors.warehouse import run_every

    last: list[RunReport] = []

    def shown(report: RunReport) -> None:
        last[:] = [report]
        with contextlib.suppress(typer.Exit):  # a failed run is shown; the schedule goes on
            show_report(report, as_json)

    try:
        run_every(every, once, on_report=shown)
    except KeyboardInterrupt:
        console.print("stopped")
        if last and (not last[0].ok or last[0].interrupted):
            raise typer.Exit(1) from None


def _warehouse(
    action: Literal["pull", "export"],
    mapping: Path,
    url: str,
    db: Path | None,
    tenant: str | None,
    embedder: str | None,
    *,
    every: float | None,
    as_json: bool,
    no_progress: bool,
    dry_run: bool,
    restart: bool = False,
) -> None:
    from memory_core.connectors import warehouse
    from memory_core.connectors._base import progress_bar

    spec = warehouse.WarehouseMapping.load(mapping)
    engine = warehouse.open_engine(url)
    try:
        with open_memory(db, tenant, embedder) as memory:

            def once() -> RunReport:
                enabled = not no_progress and not as_json
                with progress_bar(f"warehouse {action}", enabled=enabled) as progress:
                    if action == "pull":
                        return warehouse.pull(
                            memory,
                            spec,
                            engine,
                            dry_run=dry_run,
                            restart=restart,
                            progress=progress,
                        )
                    return warehouse.export(
                        memory, spec, engine, dry_run=dry_run, progress=progress
                    )

            _repeat(every, once, as_json)
    finally:
        engine.dispose()


@warehouse_app.command("pull")
def warehouse_pull(
    mapping: MappingOpt,
    url: UrlOpt,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    restart: RestartOpt = False,
    every: EveryOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Run the mapping's [[pull]] queries: rows become identifiers and traits."""
    _warehouse(
        "pull",
        mapping,
        url,
        db,
        tenant,
        embedder,
        every=every,
        as_json=as_json,
        no_progress=no_progress,
        dry_run=dry_run,
        restart=restart,
    )


@warehouse_app.command("export")
def warehouse_export(
    mapping: MappingOpt,
    url: UrlOpt,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    every: EveryOpt = None,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Export observations, traits and summaries to the mapping's [export] tables
    (created if missing; upserted; rows of erased records deleted)."""
    _warehouse(
        "export",
        mapping,
        url,
        db,
        tenant,
        embedder,
        every=every,
        as_json=as_json,
        no_progress=no_progress,
        dry_run=dry_run,
    )


def register(app: typer.Typer) -> None:
    """Add the Salesforce and warehouse commands to ``convmem connect``."""
    app.command("salesforce")(salesforce)
    app.command("salesforce-write-back")(salesforce_write_back)
    app.add_typer(warehouse_app, name="warehouse")
