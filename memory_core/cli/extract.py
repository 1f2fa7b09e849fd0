"""``convmem extract``: observations, traits and summaries from stored conversations,
for one conversation, one customer, or every conversation not yet extracted
(a back-fill, with a progress bar)."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from memory_core.backends.base import Collection, Where
from memory_core.config import Settings
from memory_core.errors import ValidationError
from memory_core.extraction import BatchReport
from memory_core.memory import Memory
from memory_core.models import Decision

__all__ = ["run_extract"]


def run_extract(
    console: Console,
    settings: Settings,
    *,
    profile: str | None,
    conversation: str | None,
    all_: bool,
    force: bool,
    as_json: bool,
) -> BatchReport:
    if sum((profile is not None, conversation is not None, all_)) != 1:
        raise ValidationError("say what to extract: --profile REF, --conversation ID or --all")
    with Memory.open(settings=settings) as memory:
        observations = memory.observations
        name = observations.extractor.name
        if conversation is not None:
            report = observations.extract(conversation, force=force)
            mine = Where(eq={"conversation_id": conversation})
            n = memory.backend.count(memory.name, Collection.MESSAGES, mine)
            batch = BatchReport.of([report], n, 0.0)
        elif profile is not None:
            batch = observations.extract_profile(profile, force=force)
        else:
            with Progress(
                TextColumn("extracting ({task.fields[name]})"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                disable=as_json,
            ) as bar:
                task = bar.add_task("extract", total=None, name=name)

                def tick(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                batch = observations.extract_all(force=force, progress=tick)
    if as_json:
        console.file.write(json.dumps(batch.model_dump(mode="json"), indent=2) + "\n")
    else:
        show(console, batch, name)
    return batch


def show(console: Console, batch: BatchReport, extractor: str) -> None:
    table = Table(title=f"Extraction ({extractor})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    rows = [
        ("conversations extracted", batch.extracted),
        ("already up to date (skipped)", batch.skipped),
        ("pending (model failed; retried by --all)", batch.pending),
        ("observations added", batch.decisions.get(Decision.ADD, 0)),
        ("observations updated (old kept in history)", batch.decisions.get(Decision.UPDATE, 0)),
        ("duplicates merged", batch.decisions.get(Decision.DUPLICATE, 0)),
        ("discarded by policy", batch.decisions.get(Decision.DISCARD, 0)),
        ("summaries written", batch.summaries),
        ("trait values set", batch.traits_set),
    ]  # fmt: skip
    for what, count in rows:
        table.add_row(what, str(count))
    usage = batch.usage
    if usage.calls:
        table.add_row("LLM calls", str(usage.calls))
        table.add_row(
            "tokens (prompt + completion)", f"{usage.prompt_tokens} + {usage.completion_tokens}"
        )
        table.add_row("cost (USD)", f"{usage.cost_usd:.4f}")
    console.print(table)
    if batch.seconds and batch.messages:
        console.print(
            f"{batch.messages} messages in {batch.seconds:.2f} s "
            f"({batch.messages / batch.seconds:.0f} messages/s)"
        )
    for note in usage.notes:
        console.print(f"[dim]note: {note}[/]")
    for error in batch.errors:
        console.print(f"[yellow]pending:[/] {error}")
