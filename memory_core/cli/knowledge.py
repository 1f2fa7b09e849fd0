"""``convmem knowledge``: add, list, refresh, remove and search knowledge sources."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memory_core.cli.options import DbOpt, EmbedderOpt, JsonOpt, TenantOpt, settings_for
from memory_core.config import require_store
from memory_core.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from memory_core.memory import Memory

__all__ = ["knowledge_app"]

knowledge_app = typer.Typer(
    help="Enterprise knowledge: index FAQs, policies, docs and web sites; search with citations.",
    no_args_is_help=True,
)
console = Console()


_settings = settings_for


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A progress bar and the ``progress(stage, done, total)`` callback driving it."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True, disable=not enabled) as bar:
        task = bar.add_task("starting", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield update


def _show_source(source: Any, as_json: bool) -> None:
    if as_json:
        _print_json(source.model_dump(mode="json"))
        return
    colour = {"ready": "green", "failed": "red"}.get(source.status.value, "yellow")
    console.print(
        f"[bold]{source.id}[/] {source.type.value} {source.title!r} -> [{colour}]"
        f"{source.status.value}[/] (version {source.version}, {source.page_count} pages, "
        f"{source.chunk_count} chunks)"
    )
    if source.error:
        console.print(f"[red]error:[/] {source.error}")
    for note in source.notes[:10]:
        console.print(f"  [dim]{note}[/]")
    if len(source.notes) > 10:
        console.print(f"  [dim]... {len(source.notes) - 10} more notes[/]")


def _source_id(memory: Memory, text: str) -> str:
    """The id of the one source whose id is ``text`` or starts with it."""
    try:
        return memory.knowledge.sources.get(text).id
    except NotFoundError:
        if len(text) < 4:  # too short to mean a source id
            raise
    matches = [s.id for s in memory.knowledge.sources.list() if s.id.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(
            f"no knowledge source has an id starting with {text!r}: "
            "`convmem knowledge list KB` shows them",
            kind="source",
        )
    raise ValidationError(
        f"{text!r} is the start of {len(matches)} source ids ({', '.join(matches[:5])}): "
        "give more of it"
    )


@knowledge_app.command("add")
def add(
    kb: Annotated[str, typer.Argument(help="Knowledge base name (created if missing) or id.")],
    location: Annotated[
        str, typer.Argument(help="A file (.md .txt .html .pdf .csv .tsv .json) or an http(s) URL.")
    ],
    source_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="text, markdown, html, pdf, faq (default: from the extension)."
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title shown in citations.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    depth: Annotated[int, typer.Option(help="Web: link depth from the start URL.")] = 2,
    max_pages: Annotated[int, typer.Option(help="Web: most pages to index.")] = 200,
    any_site: Annotated[
        bool, typer.Option("--any-site", help="Web: follow links to other sites.")
    ] = False,
    sitemap: Annotated[bool, typer.Option(help="Web: read the site's sitemap.xml.")] = True,
    concurrency: Annotated[int, typer.Option(help="Web: parallel requests.")] = 4,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a file or a web site to a knowledge base and index it (adding it
    again refreshes it: only what changed is re-indexed)."""
    from memory_core.memory import Memory
    from memory_core.models import CrawlOptions

    settings = _settings(db, tenant, embedder)
    crawl = CrawlOptions(
        max_depth=depth,
        max_pages=max_pages,
        same_site=not any_site,
        use_sitemap=sitemap,
        concurrency=concurrency,
    )
    with Memory.open(settings=settings) as memory:
        memory.tenants.add(memory.name)  # adding knowledge creates the tenant
        try:
            memory.knowledge.bases.get(kb)
        except NotFoundError:
            memory.knowledge.bases.add(kb)
            if not as_json:
                console.print(f"created knowledge base {kb!r}")
        is_web = location.lower().startswith(("http://", "https://"))
        with _progress(not as_json) as progress:
            source = memory.knowledge.sources.add(
                kb,
                location,
                source_type=source_type,
                title=title,
                tags=tag,
                crawl=crawl if is_web else None,
                progress=progress,
            )
        if source.status.value == "failed" and source.version == 0:
            # Never indexed: keeping it would only leave a dead entry behind.
            memory.knowledge.sources.delete(source.id)
    _show_source(source, as_json)
    if source.status.value == "failed":
        if source.version == 0 and not as_json:
            console.print("nothing was kept: fix the location and add it again")
        raise typer.Exit(1)


@knowledge_app.command("list")
def list_(
    kb: Annotated[str | None, typer.Argument(help="List this knowledge base's sources.")] = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Knowledge bases, or the sources of one."""
    from memory_core.memory import Memory

    settings = _settings(db, tenant, "hash")  # listing embeds nothing
    with Memory.open(settings=require_store(settings)) as memory:
        if kb is None:
            kbs = memory.knowledge.bases.list()
            counts = {k.id: 0 for k in kbs}
            for source in memory.knowledge.sources.list():
                counts[source.kb_id] = counts.get(source.kb_id, 0) + 1
            if as_json:
                _print_json([k.model_dump(mode="json") | {"sources": counts[k.id]} for k in kbs])
                return
            table = Table(title=f"Knowledge bases in tenant {settings.tenant!r}")
            table.add_column("name", overflow="fold")
            table.add_column("id", no_wrap=True, min_width=max((len(k.id) for k in kbs), default=2))
            for column in ("sources", "description"):
                table.add_column(column, overflow="fold")
            for k in kbs:
                table.add_row(k.name, k.id, str(counts[k.id]), k.description)
            console.print(table)
            return
        sources = memory.knowledge.sources.list(kb)
    if as_json:
        _print_json([s.model_dump(mode="json") for s in sources])
        return
    table = Table(title=f"Sources of {kb!r}")
    id_width = max((len(s.id) for s in sources), default=2)
    table.add_column("id", no_wrap=True, min_width=id_width)  # ids are copied: never cut
    for column in ("type", "title", "uri", "status", "version", "pages", "chunks", "updated"):
        table.add_column(column, overflow="fold")
    for s in sources:
        status = s.status.value + (f": {s.error}" if s.error else "")
        table.add_row(
            s.id,
            s.type.value,
            s.title,
            s.uri,
            status,
            str(s.version),
            str(s.page_count),
            str(s.chunk_count),
            f"{s.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@knowledge_app.command("refresh")
def refresh(
    source_id: Annotated[
        str, typer.Argument(help="Source id (src_...), or a unique start of one.")
    ],
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-read a source (re-crawl a site, re-read a file); re-index what changed."""
    from memory_core.memory import Memory

    settings = _settings(db, tenant, embedder)
    with Memory.open(settings=require_store(settings)) as memory:
        source_id = _source_id(memory, source_id)
        with _progress(not as_json) as progress:
            source = memory.knowledge.sources.refresh(source_id, progress=progress)
    _show_source(source, as_json)
    if source.status.value == "failed":
        raise typer.Exit(1)


@knowledge_app.command("remove")
def remove(
    target: Annotated[
        str, typer.Argument(help="A source id (src_...), or with --kb a knowledge base.")
    ],
    kb: Annotated[
        bool, typer.Option("--kb", help="Remove a whole knowledge base (name or id).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm removing a whole knowledge base (with --kb).")
    ] = False,
    db: DbOpt = None,
    tenant: TenantOpt = None,
) -> None:
    """Remove a source (or a knowledge base) and all its chunks from every index.
    A source id may be shortened to any unique prefix."""
    from memory_core.memory import Memory

    if kb and not yes:
        raise ValidationError(
            f"removing knowledge base {target!r} deletes all its sources and chunks; "
            "add --yes to confirm"
        )
    settings = _settings(db, tenant, "hash")
    with Memory.open(settings=require_store(settings)) as memory:
        if kb:
            receipt = memory.knowledge.bases.delete(target)
        else:
            receipt = memory.knowledge.sources.delete(_source_id(memory, target))
    parts = ", ".join(f"{n} {name}" for name, n in receipt.deleted.items())
    console.print(f"removed {receipt.target}: {parts}")


@knowledge_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    kb: Annotated[
        list[str] | None, typer.Option("--kb", help="Knowledge base (repeatable).")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Source id (repeatable).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Sources with this tag (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Results to return at most.")] = 5,
    min_score: Annotated[float, typer.Option(help="Drop results scoring below this (0-1).")] = 0.0,
    mode: Annotated[str, typer.Option(help="hybrid, keyword or vector.")] = "hybrid",
    alpha: Annotated[float | None, typer.Option(help="Hybrid weight of the vector side.")] = None,
    db: DbOpt = None,
    tenant: TenantOpt = None,
    embedder: EmbedderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search knowledge; every result cites its source, page and headings."""
    from memory_core.knowledge.search import DEFAULT_ALPHA
    from memory_core.memory import Memory

    settings = _settings(db, tenant, embedder)
    with Memory.open(settings=require_store(settings)) as memory:
        hits = memory.knowledge.search(
            query,
            kb=kb or None,
            sources=source or None,
            tags=tag or None,
            limit=limit,
            min_score=min_score,
            mode=mode,
            alpha=DEFAULT_ALPHA if alpha is None else alpha,
        )
    if as_json:
        _print_json([h.model_dump(mode="json") for h in hits])
        return
    if not hits:
        console.print("no results")
    for rank, hit in enumerate(hits, start=1):
        console.print(f"[bold]{rank}.[/] [cyan]{hit.score:.3f}[/] {hit.citation}")
        console.print(hit.text, markup=False, highlight=False)
        console.print()
