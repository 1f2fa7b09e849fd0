"""``convmem migrate``: copy one tenant from a backend to another, vectors included.

Typical uses: move a tenant from the embedded store into Weaviate when one
machine is not enough, or back (e.g. to debug it locally)::

    convmem migrate --from sqlite:///data/memory.db --to weaviate://10.0.0.5:8080 --tenant acme

Every collection is copied page by page (records with their stored vectors,
through the optional :class:`~memory_core.backends.base.SupportsExport`
capability, so nothing is re-embedded), then verified: the target must hold as
many records of each collection as the source, and as many with vectors.

Stop writers to the tenant while it is copied: pages are read one at a time,
so a write made meanwhile may or may not be copied (the verification notices a
difference in counts). The target tenant must not exist yet, or be empty,
unless ``replace`` drops it first; the source is never changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from memory_core.backends.base import (
    COLLECTIONS,
    Backend,
    Collection,
    SupportsExport,
    Vectors,
)
from memory_core.errors import ConflictError, NotFoundError, ValidationError
from memory_core.models import Record

__all__ = ["CollectionCopy", "MigrationReport", "migrate_tenant"]

Progress = Callable[[str, int, int], None]  # (collection, records copied so far, total)


@dataclass
class CollectionCopy:
    """What was copied of one collection, and what the verification found."""

    collection: str
    source: int  # records in the source
    copied: int  # records written to the target
    with_vectors: int  # of which with a vector
    target: int = 0  # records in the target after the copy
    target_with_vectors: int = 0  # records the target returned with a vector (-1: not checked)

    @property
    def ok(self) -> bool:
        vectors_ok = self.target_with_vectors in (-1, self.with_vectors)
        return self.source == self.copied == self.target and vectors_ok


@dataclass
class MigrationReport:
    tenant: str
    source: str
    target: str
    collections: list[CollectionCopy] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.collections)

    @property
    def records(self) -> int:
        return sum(c.copied for c in self.collections)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def _pages(
    backend: Backend, tenant: str, collection: Collection, batch_size: int
) -> Iterator[tuple[list[Record], Vectors | None]]:
    """The tenant's records of ``collection`` in pages, with vectors where possible."""
    if isinstance(backend, SupportsExport):
        yield from backend.export(tenant, collection, batch_size)
        return
    offset = 0  # a backend without export: records only (vectors need re-embedding)
    while page := backend.find(tenant, collection, limit=batch_size, offset=offset):
        yield page, None
        offset += len(page)


def _vector_count(backend: Backend, tenant: str, collection: Collection, size: int) -> int:
    if not COLLECTIONS[collection].searchable or not isinstance(backend, SupportsExport):
        return -1
    return sum(
        len(records) for records, vectors in backend.export(tenant, collection, size) if vectors
    )


def migrate_tenant(
    source: Backend,
    target: Backend,
    tenant: str,
    *,
    replace: bool = False,
    batch_size: int = 500,
    progress: Progress | None = None,
    source_name: str | None = None,
    target_name: str | None = None,
) -> MigrationReport:
    """Copy ``tenant`` from ``source`` to ``target`` and verify the counts.

    Raises ``NotFoundError`` if the source has no such tenant, ``ConflictError``
    if the target tenant holds records and ``replace`` is false. Returns the
    report; check :attr:`MigrationReport.ok`.
    """
    if source is target:
        raise ValidationError("source and target are the same backend")
    if batch_size < 1:
        raise ValidationError(f"batch_size must be >= 1, got {batch_size}")
    if tenant not in source.list_tenants():
        raise NotFoundError(f"the source has no tenant {tenant!r}", kind="tenant")
    started = time.perf_counter()
    report = MigrationReport(tenant, source_name or repr(source), target_name or repr(target))
    totals = {c: source.count(tenant, c) for c in COLLECTIONS}
    if tenant in target.list_tenants():
        held = {c.value: n for c in COLLECTIONS if (n := target.count(tenant, c))}
        if held and not replace:
            raise ConflictError(
                f"the target already holds records of tenant {tenant!r} ({held}); "
                "drop it there first, or pass replace=True (--replace) to drop and copy again",
                kind="tenant",
            )
        if held:
            target.drop_tenant(tenant)
    target.ensure_tenant(tenant)
    for collection in COLLECTIONS:
        copy = CollectionCopy(collection.value, totals[collection], 0, 0)
        report.collections.append(copy)
        if progress:
            progress(collection.value, 0, copy.source)
        for records, vectors in _pages(source, tenant, collection, batch_size):
            target.upsert(tenant, collection, records, vectors)
            copy.copied += len(records)
            copy.with_vectors += len(records) if vectors is not None else 0
            if progress:
                progress(collection.value, copy.copied, copy.source)
        copy.target = target.count(tenant, collection)
        copy.target_with_vectors = _vector_count(target, tenant, collection, batch_size)
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def run_migrate_cli(
    console: Any,
    source_spec: str,
    target_spec: str,
    tenant: str,
    *,
    replace: bool,
    batch_size: int,
    as_json: bool,
) -> bool:
    """``convmem migrate``: open both backends, copy with a progress bar, print the
    verification table. Returns whether every count matched."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from memory_core.config import load_settings
    from memory_core.memory import open_backend

    if source_spec == target_spec:
        raise ValidationError("--from and --to name the same store")
    source = open_backend(load_settings(backend=source_spec))
    try:
        target = open_backend(load_settings(backend=target_spec))
        try:
            columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn())
            with Progress(*columns, console=console, disable=as_json) as bar:
                tasks: dict[str, Any] = {}

                def progress(collection: str, done: int, total: int) -> None:
                    if collection not in tasks:
                        tasks[collection] = bar.add_task(collection, total=total)
                    bar.update(tasks[collection], completed=done)

                report = migrate_tenant(
                    source,
                    target,
                    tenant,
                    replace=replace,
                    batch_size=batch_size,
                    progress=progress,
                    source_name=source_spec,
                    target_name=target_spec,
                )
        finally:
            target.close()
    finally:
        source.close()
    if as_json:
        console.file.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return report.ok
    table = Table(title=f"Tenant {tenant!r}: {source_spec} -> {target_spec}")
    for name in ("collection", "source", "copied", "target", "with vectors", "target vectors", ""):
        table.add_column(name, justify="left" if name == "collection" else "right")
    for c in report.collections:
        table.add_row(
            c.collection,
            str(c.source),
            str(c.copied),
            str(c.target),
            str(c.with_vectors),
            "-" if c.target_with_vectors < 0 else str(c.target_with_vectors),
            "[green]ok[/]" if c.ok else "[bold red]MISMATCH[/]",
        )
    console.print(table)
    verdict = "verified" if report.ok else "[bold red]counts differ[/]"
    console.print(f"{report.records} records copied in {report.seconds} s; {verdict}")
    return report.ok
