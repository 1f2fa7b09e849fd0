"""Runners for ``convmem eval``: ingest a public data set through the engine,
query it through recall, and score it with :mod:`memory_core.eval.metrics`.

Each run uses a throwaway store in a temporary directory, removed afterwards.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memory_core.backends.base import SearchMode
from memory_core.config import load_settings
from memory_core.errors import ValidationError
from memory_core.eval.beir import BeirDataset, load_beir
from memory_core.eval.locomo import LocomoQuestion, LocomoSample, load_locomo, turn_text
from memory_core.eval.metrics import BeirReport, LocomoReport, beir_report, locomo_report
from memory_core.memory import Memory
from memory_core.models import Channel, ConversationIn, MessageIn, Role
from memory_core.recall import ItemType, RecallOptions

__all__ = ["EvalConfig", "evaluate_beir", "evaluate_locomo", "run_beir_cli", "run_locomo_cli"]

Tick = Callable[[int], None]


@dataclass(frozen=True)
class EvalConfig:
    """How recall is run during an evaluation."""

    mode: SearchMode = SearchMode.HYBRID
    alpha: float = 0.4
    embedder: str | None = None


def _mode(name: str) -> SearchMode:
    try:
        return SearchMode(name)
    except ValueError:
        raise ValidationError(f"unknown mode {name!r}; use hybrid, keyword or vector") from None


def _options(limit: int, config: EvalConfig) -> RecallOptions:
    return RecallOptions(
        types=frozenset({ItemType.MESSAGE}),
        limits={ItemType.MESSAGE: limit},
        mode=config.mode,
        alpha=config.alpha,
        token_budget=0,
    )


def _open(tmp: str, config: EvalConfig) -> Memory:
    settings = load_settings(backend=f"sqlite:///{Path(tmp) / 'eval.db'}", embedder=config.embedder)
    return Memory.open(settings=settings)


# -- LoCoMo ------------------------------------------------------------------------


def ingest_locomo_sample(memory: Memory, sample: LocomoSample) -> str:
    """Ingest one sample as its own profile: each session one conversation with
    its date, each turn a message whose id carries its dia_id. Returns the
    profile id."""
    profile_id: str | None = None
    for session in sample.sessions:
        messages = [
            MessageIn(
                id=f"{sample.sample_id}:{turn.dia_id}",
                role=Role.CUSTOMER if turn.speaker == sample.speaker_a else Role.HUMAN_AGENT,
                text=f"{turn.speaker}: {turn_text(turn)}",
                author=turn.speaker,
                ts=session.date + timedelta(seconds=i),
            )
            for i, turn in enumerate(session.turns)
        ]
        if not messages:
            continue
        result = memory.ingest(
            ConversationIn(
                id=f"{sample.sample_id}:s{session.index}",
                channel=Channel.CHAT,
                customer=[f"custom:locomo={sample.sample_id}"],
                started_at=session.date,
                messages=messages,
            )
        )
        profile_id = result.profile.id
    if profile_id is None:
        raise ValidationError(f"LoCoMo sample {sample.sample_id} has no turns")
    return profile_id


def evaluate_locomo(
    path: Path, config: EvalConfig, *, progress: Tick | None = None
) -> tuple[LocomoReport, dict[str, Any]]:
    """Message-level evidence recall@5/10/25 (see ../shared/eval/README.md)."""
    samples = load_locomo(path)
    results: list[tuple[LocomoQuestion, Sequence[Collection[str]]]] = []
    stats: dict[str, Any] = {"samples": len(samples), "turns": 0, "questions": 0}
    with tempfile.TemporaryDirectory(prefix="convmem-eval-") as tmp, _open(tmp, config) as memory:
        t0 = time.perf_counter()
        profiles = {}
        for sample in samples:
            profiles[sample.sample_id] = ingest_locomo_sample(memory, sample)
            stats["turns"] += sample.turn_count
            if progress:
                progress(sample.turn_count)
        stats["ingest_seconds"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        options = _options(25, config)
        for sample in samples:
            prefix = f"{sample.sample_id}:"
            for question in sample.questions:
                if question.is_evaluable:
                    recalled = memory.recall(
                        profiles[sample.sample_id], question.question, options=options
                    )
                    retrieved = [{item.id.removeprefix(prefix)} for item in recalled.items]
                else:
                    retrieved = []
                results.append((question, retrieved))
                stats["questions"] += 1
                if progress:
                    progress(1)
        stats["query_seconds"] = round(time.perf_counter() - t1, 2)
        stats["embedder"] = memory.embedder.model_id
    return locomo_report(results), stats


def run_locomo_cli(
    console: Console,
    data: Path,
    *,
    mode: str,
    alpha: float,
    embedder: str | None,
    as_json: bool,
) -> None:
    config = EvalConfig(mode=_mode(mode), alpha=alpha, embedder=embedder)
    samples = load_locomo(data)
    total = sum(s.turn_count + len(s.questions) for s in samples)
    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("LoCoMo: ingest then recall", total=total)
        report, stats = evaluate_locomo(data, config, progress=lambda n: bar.advance(task, n))
    out = {
        "dataset": "locomo",
        "mode": config.mode.value,
        "alpha": config.alpha,
        **stats,
        **report.to_dict(),
    }
    if as_json:
        console.file.write(json.dumps(out, indent=2) + "\n")
        return
    table = Table(title=f"LoCoMo evidence recall ({config.mode.value}, {stats['embedder']})")
    table.add_column("category")
    table.add_column("questions", justify="right")
    for k in report.ks:
        table.add_column(f"R@{k}", justify="right")
    rows = [report.overall, *report.per_category.values()]
    for scores in rows:
        table.add_row(
            scores.name, str(scores.count), *(f"{100 * scores.recall[k]:.1f}" for k in report.ks)
        )
    console.print(table)
    console.print(
        f"{stats['turns']} turns ingested in {stats['ingest_seconds']} s, "
        f"{stats['questions']} questions in {stats['query_seconds']} s"
    )


# -- BEIR --------------------------------------------------------------------------


def ingest_beir_corpus(
    memory: Memory, data: BeirDataset, *, progress: Tick | None = None, batch: int = 256
) -> str:
    """Index the corpus as raw text (title + text), one message per document."""
    docs = list(data.corpus.values())
    profile_id: str | None = None
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        result = memory.ingest(
            ConversationIn(
                id=f"beir-corpus-{start // batch}",
                channel=Channel.CHAT,
                customer=["custom:beir=corpus"],
                messages=[
                    MessageIn(
                        id=f"doc:{doc.id}",
                        role=Role.SYSTEM,
                        text=f"{doc.title}\n{doc.text}".strip() or doc.id,
                    )
                    for doc in part
                ],
            )
        )
        profile_id = result.profile.id
        if progress:
            progress(len(part))
    if profile_id is None:
        raise ValidationError("the BEIR corpus is empty")
    return profile_id


def evaluate_beir(
    path: Path, config: EvalConfig, *, progress: Tick | None = None
) -> tuple[BeirReport, dict[str, Any]]:
    """nDCG@10 and recall@100 over the judged test queries."""
    data = load_beir(path)
    runs: dict[str, list[str]] = {}
    stats: dict[str, Any] = {"documents": len(data.corpus), "queries": len(data.queries)}
    with tempfile.TemporaryDirectory(prefix="convmem-eval-") as tmp, _open(tmp, config) as memory:
        t0 = time.perf_counter()
        profile = ingest_beir_corpus(memory, data, progress=progress)
        stats["ingest_seconds"] = round(time.perf_counter() - t0, 2)
        options = _options(100, config)
        t1 = time.perf_counter()
        for qid, text in data.queries.items():
            recalled = memory.recall(profile, text, options=options)
            runs[qid] = [item.id.removeprefix("doc:") for item in recalled.items]
            if progress:
                progress(1)
        stats["query_seconds"] = round(time.perf_counter() - t1, 2)
        stats["embedder"] = memory.embedder.model_id
    return beir_report(runs, data.qrels), stats


def run_beir_cli(
    console: Console,
    data: Path,
    *,
    mode: str,
    alpha: float,
    embedder: str | None,
    as_json: bool,
) -> None:
    config = EvalConfig(mode=_mode(mode), alpha=alpha, embedder=embedder)
    dataset = load_beir(data)
    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task(
            "BEIR: index then search", total=len(dataset.corpus) + len(dataset.queries)
        )
        report, stats = evaluate_beir(data, config, progress=lambda n: bar.advance(task, n))
    out = {
        "dataset": data.name,
        "mode": config.mode.value,
        "alpha": config.alpha,
        **stats,
        **report.to_dict(),
    }
    if as_json:
        console.file.write(json.dumps(out, indent=2) + "\n")
        return
    console.print(
        f"{data.name} ({config.mode.value}, {stats['embedder']}): "
        f"nDCG@{report.ndcg_k} {report.ndcg:.4f}  R@{report.recall_k} {report.recall:.4f}  "
        f"over {report.count} queries; indexed {stats['documents']} docs in "
        f"{stats['ingest_seconds']} s, queried in {stats['query_seconds']} s"
    )
