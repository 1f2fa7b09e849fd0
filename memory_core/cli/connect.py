"""``convmem connect``: import from and push to the systems customer data already
lives in (Segment and Twilio transcripts here; Salesforce and warehouses register their commands on
:data:`connect_app` from their own modules, listed in :data:`CONNECT_MODULES`).

Shared by every subcommand: ``--db/--tenant/--embedder`` (the store),
``--dry-run`` (print what would change, write nothing), ``--json`` (the run
report as JSON) and ``--no-progress``. A run with failed records exits 1 after
printing the report; a typed error exits 2 (``convmem``'s entry point).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from memory_core.cli.options import DbOpt, EmbedderOpt, TenantOpt
from memory_core.config import load_settings
from memory_core.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from memory_core.connectors._base import RunReport
    from memory_core.memory import Memory

__all__ = [
    "CONNECT_MODULES",
    "DbOpt",
    "DryRunOpt",
    "EmbedderOpt",
    "JsonOpt",
    "NoProgressOpt",
    "TenantOpt",
    "connect_app",
    "console",
    "open_memory",
    "register_connect",
    "show_report",
    "transcript_payloads",
]

connect_app = typer.Typer(
    help="Connectors: import customer data from Segment (and other systems), push it back.",
    no_args_is_help=True,
)
console = Console()
err_console = Console(stderr=True)

CONNECT_MODULES: tuple[str, ...] = ("memory_core.cli.connect_crm",)
"""Modules adding subcommands to :data:`connect_app`; each defines
``register(connect_app: typer.Typer) -> None``."""

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide the progress bar.")]


@contextmanager
def open_memory(db: Path | None, tenant: str | None, embedder: str | None) -> Iterator[Memory]:
    """The tenant handle the options name, closed afterwards."""
    from memory_core.memory import Memory

    backend = f"sqlite:///{db.resolve()}" if db is not None else None
    settings = load_settings(backend=backend, tenant=tenant, embedder=embedder)
    memory = Memory.open(settings=settings)
    try:
        yield memory
    finally:
        memory.close()


def show_report(report: RunReport, as_json: bool) -> None:
    """Print a run report (rich, or JSON on stdout); exit 1 when a record failed."""
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        console.print(report)
    if not report.ok or report.interrupted:
        raise typer.Exit(1)


@connect_app.command("segment-import")
def segment_import(
    file: Annotated[
        Path, typer.Argument(help="Segment Spec events, one JSON object per line (JSONL).")
    ],
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore the stored cursor; read from line 1.")
    ] = False,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Import Segment identify/track/alias/group events from a JSONL file.

    Resumable: the line reached is stored in the store, so re-running after an
    interruption continues there; replayed events (same messageId) change nothing.
    """
    from memory_core.connectors._base import progress_bar
    from memory_core.connectors.segment import import_file

    with (
        open_memory(db, tenant, embedder) as memory,
        progress_bar("segment import", enabled=not no_progress and not as_json) as progress,
    ):
        report = import_file(memory, file, dry_run=dry_run, restart=restart, progress=progress)
    show_report(report, as_json)


@connect_app.command("segment-push")
def segment_push(
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    write_key: Annotated[
        str | None,
        typer.Option(
            "--write-key",
            help="Segment source write key (default: the SEGMENT_WRITE_KEY environment variable).",
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", help="Batch API URL (default https://api.segment.io/v1/batch)."),
    ] = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Push every profile's traits and active observations to Segment as identify calls."""
    from memory_core.connectors._base import progress_bar
    from memory_core.connectors.segment import BATCH_URL, push_profiles

    key = write_key or os.environ.get("SEGMENT_WRITE_KEY")
    if not key and not dry_run:
        raise ConfigError(
            "no Segment write key: pass --write-key or set SEGMENT_WRITE_KEY "
            "(Segment: Connections > Sources > your source > Settings > API Keys)"
        )
    with (
        open_memory(db, tenant, embedder) as memory,
        progress_bar("segment push", enabled=not no_progress and not as_json) as progress,
    ):
        report = push_profiles(
            memory, key or "", endpoint=endpoint or BATCH_URL, dry_run=dry_run, progress=progress
        )
    show_report(report, as_json)


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {str(path)!r}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"the {what} {str(path)!r} is not JSON: {exc}") from exc


def transcript_payloads(
    file: Path, sentences_file: Path | None
) -> tuple[dict[str, Any], list[Any]]:
    """The Transcript resource and its sentences from the files ``twilio-transcript``
    reads: the Transcript JSON with its ``sentences`` list inside it (or
    ``{"transcript": {...}, "sentences": [...]}``), or the Transcript JSON and the
    Sentences list page (``--sentences``)."""
    data = _read_json(file, "transcript file")
    if not isinstance(data, dict):
        raise ValidationError(f"the transcript file {str(file)!r} must hold a JSON object")
    transcript = data.get("transcript", data)
    if not isinstance(transcript, dict):
        raise ValidationError("'transcript' in the transcript file must be an object")
    found: object = data.get("sentences")
    if sentences_file is not None:
        page = _read_json(sentences_file, "sentences file")
        found = page.get("sentences") if isinstance(page, dict) else page
    if not isinstance(found, list):
        raise ValidationError(
            f"no sentences for transcript {str(transcript.get('sid'))[:40]!r}: put the "
            "'sentences' list in the file, or pass the Sentences list page with --sentences"
        )
    return transcript, found


@connect_app.command("twilio-transcript")
def twilio_transcript(
    file: Annotated[
        Path,
        typer.Argument(
            help="A Conversational Intelligence Transcript (JSON), with its 'sentences' "
            "list inside or given by --sentences."
        ),
    ],
    sentences: Annotated[
        Path | None,
        typer.Option("--sentences", help="The transcript's Sentences list page (JSON)."),
    ] = None,
    customer: Annotated[
        list[str] | None,
        typer.Option(
            "--customer",
            "-c",
            help="The customer's identifier (repeatable), when the transcript names "
            "none: e.g. phone:+16175550142.",
        ),
    ] = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a Twilio voice transcript as an ended voice conversation (extraction runs).

    Speakers come from the transcript's channel.participants; the customer's
    media_participant_id (a phone number) is the identifier. A transcript already
    stored is skipped.
    """
    from memory_core.connectors.twilio import ingest_transcript

    transcript, found = transcript_payloads(file, sentences)
    with open_memory(db, tenant, embedder) as memory:
        report = ingest_transcript(
            memory, transcript, found, customer=customer or (), dry_run=dry_run
        )
    show_report(report, as_json)


def register_connect(app: typer.Typer) -> None:
    """Add ``convmem connect`` (with the subcommands of :data:`CONNECT_MODULES`) to ``app``."""
    for name in CONNECT_MODULES:
        importlib.import_module(name).register(connect_app)
    app.add_typer(connect_app, name="connect")
