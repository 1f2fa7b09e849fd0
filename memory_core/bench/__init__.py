"""Benchmarks: ``convmem bench`` (messages, then knowledge) and ``convmem
bench-governance`` (redaction, erasure). Each figure is reported beside a
baseline measured in the same run (see :mod:`memory_core.bench.timing`).

- :mod:`~memory_core.bench.timing`: latency percentiles, timed calls, the numpy baseline.
- :mod:`~memory_core.bench.messages`: ingest throughput and recall latency.
- :mod:`~memory_core.bench.knowledge`: knowledge indexing throughput and search latency.
- :mod:`~memory_core.bench.governance`: redaction throughput and misses, erasure cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress

from memory_core.bench.messages import synthetic_texts
from memory_core.bench.timing import Progress as ProgressFn

__all__ = ["run_bench_cli", "run_governance_bench_cli", "synthetic_texts"]


@contextmanager
def _progress(console: Console, title: str, *, enabled: bool) -> Iterator[ProgressFn]:
    """A transient progress bar and the ``progress(label, done, total)`` callback driving it."""
    with Progress(console=console, transient=True, disable=not enabled) as bar:
        task = bar.add_task(title, total=None)

        def update(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        yield update


def run_bench_cli(
    console: Console,
    sizes: Sequence[int],
    chunk_counts: Sequence[int],
    *,
    profiles: int,
    queries: int,
    as_json: bool,
    backend: str | None = None,
) -> dict[str, Any] | None:
    """``convmem bench``: the message benchmark at ``sizes`` (on the embedded store,
    and on ``backend`` too when it is another), then the knowledge benchmark at
    ``chunk_counts``; with neither, the message benchmark at no size (ingest only).
    Prints tables, or with ``as_json`` returns ``{"messages": [...], "knowledge": {...}}``
    (a part not run is left out) and prints nothing."""
    from memory_core.bench.knowledge import print_knowledge_bench, run_knowledge_bench
    from memory_core.bench.messages import print_message_bench, run_benches

    data: dict[str, Any] = {}
    if sizes or not chunk_counts:
        with _progress(console, "benchmark", enabled=not as_json) as progress:
            reports = run_benches(
                sizes, profiles=profiles, queries=queries, progress=progress, backend=backend
            )
        data["messages"] = [r.to_dict() for r in reports]
        if not as_json:
            print_message_bench(console, reports)
    if chunk_counts:
        with _progress(console, "knowledge benchmark", enabled=not as_json) as progress:
            report = run_knowledge_bench(chunk_counts, queries=queries, progress=progress)
        data["knowledge"] = report.to_dict()
        if not as_json:
            print_knowledge_bench(console, report)
    return data if as_json else None


def run_governance_bench_cli(
    console: Console,
    *,
    messages: int,
    profiles: int,
    heavy: int,
    redaction_messages: int,
    skip_erasure: bool,
    as_json: bool,
) -> dict[str, object] | None:
    """``convmem bench-governance``: redaction, then (unless ``skip_erasure``) erasure.
    Prints the figures, or with ``as_json`` returns them and prints nothing."""
    from memory_core.bench.governance import (
        print_governance_bench,
        report_dict,
        run_erasure_bench,
        run_redaction_bench,
    )

    redaction = run_redaction_bench(redaction_messages)
    erasure = None if skip_erasure else run_erasure_bench(messages, profiles, heavy)
    if as_json:
        return report_dict(redaction, erasure)
    print_governance_bench(console, redaction, erasure)
    return None
