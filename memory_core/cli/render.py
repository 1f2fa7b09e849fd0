"""Terminal rendering of recall results and profiles."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from memory_core.recall import RecallResult


def recall_table(result: RecallResult, title: str = "Recall") -> Table:
    table = Table(title=title, show_lines=False, expand=True)
    table.add_column("type", style="cyan", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("when / where", style="dim", no_wrap=True)
    table.add_column("text")
    for item in result.items:
        p = item.provenance
        where = " ".join(
            x
            for x in (
                p.ts.strftime("%Y-%m-%d") if p.ts else "",
                p.channel.value if p.channel else "",
                p.role.value if p.role else (p.source or ""),
            )
            if x
        )
        table.add_row(item.type.value, f"{item.score:.2f}", where, item.text)
    return table


def show_recall(console: Console, result: RecallResult) -> None:
    query = result.query or "(no query: most recent)"
    console.print(recall_table(result, title=f"Recall for {result.profile_id}: {query!r}"))
    if result.context:
        console.print(
            Panel(
                result.context,
                title=f"context for the agent ({result.context_tokens} tokens)",
                border_style="green",
            ),
            markup=False,
        )
