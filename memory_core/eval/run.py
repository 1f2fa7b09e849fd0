"""Runners for ``convmem eval``: ingest a public data set through the engine,
query it through recall, and score it with :mod:`memory_core.eval.metrics`.

Each run uses a throwaway store in a temporary directory, removed afterwards.
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from memory_core.backends.base import SearchMode
from memory_core.config import DEFAULT_TENANT, load_settings
from memory_core.errors import ValidationError
from memory_core.eval.beir import load_beir
from memory_core.eval.locomo import LocomoQuestion, LocomoSample, load_locomo, turn_text
from memory_core.eval.metrics import BeirReport, LocomoReport, beir_report, locomo_report
from memory_core.knowledge.types import ProgressFn
from memory_core.memory import Memory
from memory_core.models import Channel, ConversationIn, Decision, MessageIn, Role
from memory_core.recall import ItemType, RecallItem, RecallOptions

__all__ = ["EvalConfig", "evaluate_beir", "evaluate_locomo", "run_beir_cli", "run_locomo_cli"]

Tick = Callable[[int], None]


@dataclass(frozen=True)
class EvalConfig:
    """How recall is run during an evaluation."""

    mode: SearchMode = SearchMode.HYBRID
    alpha: float = 0.4
    embedder: str | None = None
    #: The two-embedder mode's second model (``Settings.second_embedder``), e.g. ``e5``.
    second_embedder: str | None = None
    #: A backend setting (e.g. ``weaviate://host:8080``) to run on instead of a
    #: throwaway embedded store; the run uses a tenant of its own, dropped afterwards.
    backend: str | None = None


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
        min_score=0.0,  # the ranking is measured, not the default relevance floor
    )


def _open(tmp: str, config: EvalConfig) -> Memory:
    backend = config.backend or f"sqlite:///{Path(tmp) / 'eval.db'}"
    settings = load_settings(
        backend=backend, embedder=config.embedder, second_embedder=config.second_embedder
    )
    return Memory.open(settings=settings)


# -- LoCoMo ------------------------------------------------------------------------


def ingest_locomo_sample(
    memory: Memory,
    sample: LocomoSample,
    speaker: str | None = None,
    progress: Tick | None = None,
) -> str:
    """Ingest one sample as its own profile in the handle's tenant: each session
    one conversation with its date, each turn a message whose id carries its
    dia_id. Returns the profile id.

    ``speaker`` (default: the first speaker) is whose view it is: their turns are
    the ``customer``'s, the other speaker's are ``human_agent`` turns. The first
    speaker's view uses ids ``<sample>:<dia_id>``; another speaker's view gets a
    profile and ids of its own (``<sample>.<speaker>:<dia_id>``)."""
    speaker = speaker or sample.speaker_a
    tag = sample.sample_id if speaker == sample.speaker_a else f"{sample.sample_id}.{speaker}"
    profile_id: str | None = None
    for session in sample.sessions:
        messages = [
            MessageIn(
                id=f"{tag}:{turn.dia_id}",
                role=Role.CUSTOMER if turn.speaker == speaker else Role.HUMAN_AGENT,
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
                id=f"{tag}:s{session.index}",
                channel=Channel.CHAT,
                customer=[f"custom:locomo={tag}"],
                started_at=session.date,
                messages=messages,
            )
        )
        profile_id = result.profile.id
        if progress:
            progress(len(messages))  # per session: the bar and its ETA move during ingest
    if profile_id is None:
        raise ValidationError(f"LoCoMo sample {sample.sample_id} has no turns")
    return profile_id


def ingest_locomo_speakers(
    memory: Memory, sample: LocomoSample, progress: Tick | None = None
) -> dict[str, str]:
    """Both speakers are people with facts: one profile per speaker, each holding every
    session with that speaker's turns as the ``customer``'s. Returns speaker -> profile
    id, the first speaker first (their view is :func:`ingest_locomo_sample`'s).
    ``progress`` counts the sample's turns once, over both views."""
    speakers = list(dict.fromkeys((sample.speaker_a, sample.speaker_b)))
    views = len(speakers)
    done = [0]

    def tick(n: int) -> None:  # every view ingests every turn: report 1/views of each
        if progress:
            before = done[0] // views
            done[0] += n
            if done[0] // views > before:
                progress(done[0] // views - before)

    return {speaker: ingest_locomo_sample(memory, sample, speaker, tick) for speaker in speakers}


_DIA = re.compile(r"D\d+:\d+$")


def _dia_ids(ids: Iterable[str]) -> set[str]:
    """The dia_ids that message ids of any speaker's view point to."""
    return {m.group() for i in ids if (m := _DIA.search(i))}


def about(question: str, speakers: Sequence[str]) -> list[str]:
    """The speakers a question names (by first name, whole word); all of them when it
    names none or several: an agent asks about the person it is talking about."""
    named = [
        s for s in speakers if re.search(rf"\b{re.escape(s.split()[0])}\b", question, re.IGNORECASE)
    ]
    return named if len(named) == 1 else list(speakers)


def rank_by_score(items: Iterable[RecallItem]) -> list[RecallItem]:
    """Items of every type in one list, best score first (ties keep their order)."""
    return sorted(items, key=lambda i: -i.score)


def evaluate_locomo(
    path: Path, config: EvalConfig, *, progress: Tick | None = None
) -> tuple[LocomoReport, dict[str, Any]]:
    """Message-level evidence recall@5/10/25 (see ../shared/eval/README.md)."""
    samples = load_locomo(path)
    results: list[tuple[LocomoQuestion, Sequence[Collection[str]]]] = []
    stats: dict[str, Any] = {"samples": len(samples), "turns": 0, "questions": 0}
    tenant = DEFAULT_TENANT if config.backend is None else f"locomo-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="convmem-eval-") as tmp,
        _open(tmp, config) as store,
        _own_tenant(store, tenant, drop=config.backend is not None) as memory,
    ):
        t0 = time.perf_counter()
        profiles = {}
        for sample in samples:
            profiles[sample.sample_id] = ingest_locomo_sample(memory, sample, progress=progress)
            stats["turns"] += sample.turn_count
        stats["ingest_seconds"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        options = _options(25, config)
        took: list[float] = []
        for sample in samples:
            prefix = f"{sample.sample_id}:"
            for question in sample.questions:
                if question.is_evaluable:
                    t = time.perf_counter()
                    recalled = memory.recall(
                        profiles[sample.sample_id],
                        question.question,
                        options=options,
                    )
                    took.append(time.perf_counter() - t)
                    retrieved = [{item.id.removeprefix(prefix)} for item in recalled.items]
                else:
                    retrieved = []
                results.append((question, retrieved))
                stats["questions"] += 1
                if progress:
                    progress(1)
        stats["query_seconds"] = round(time.perf_counter() - t1, 2)
        stats["recall_p50_ms"] = round(1000 * statistics.median(took), 2) if took else None
        stats["embedder"] = memory.embedder.model_id
        if config.second_embedder is not None:
            stats["message_embedder"] = memory._ctx.message_embedder.model_id
        stats["backend"] = memory.backend.name
    return locomo_report(results), stats


@contextmanager
def _own_tenant(memory: Memory, tenant: str, *, drop: bool) -> Iterator[Memory]:
    """The handle of ``tenant``, created for the run; dropped afterwards when ``drop``
    (a shared server)."""
    handle = memory.tenants.add(tenant)
    try:
        yield handle
    finally:
        if drop:
            memory.backend.drop_tenant(tenant)


def run_locomo_cli(
    console: Console,
    data: Path,
    *,
    mode: str,
    alpha: float,
    embedder: str | None,
    as_json: bool,
    backend: str | None = None,
    level: str = "message",
    second_embedder: str | None = None,
) -> None:
    config = EvalConfig(
        mode=_mode(mode),
        alpha=alpha,
        embedder=embedder,
        backend=backend,
        second_embedder=second_embedder,
    )
    if level != "message":
        run_locomo_levels_cli(console, data, config, as_json=as_json)
        return
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
    table = Table(
        title=f"LoCoMo evidence recall ({config.mode.value}, {stats['embedder']}, "
        f"{stats['backend']})"
    )
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


# -- LoCoMo, observation level -------------------------------------------------------

LOCOMO_LEVELS = ("message", "observation", "combined")
"""``message``: raw turns; ``observation``: observations and summaries (best first),
scored through their evidence; ``combined``: what recall hands an agent with its
default limits -- up to 10 observations and 3 summaries, and turns -- ranked by
score, whatever the item type."""


def evaluate_locomo_levels(
    path: Path, config: EvalConfig, *, progress: Tick | None = None
) -> tuple[dict[str, LocomoReport], dict[str, Any]]:
    """Every level of :data:`LOCOMO_LEVELS` from one ingest, after running the
    heuristic extractor (offline) over every session.

    Both speakers are people with facts: each gets a profile holding every session
    with their own turns as the customer's (:func:`ingest_locomo_speakers`). A
    question is asked of the profile of the speaker it names (of both when it names
    none or both, their items merged by score). The ``message`` level reads the first
    speaker's view, the same turns as :func:`evaluate_locomo`."""
    from memory_core.extraction import HeuristicExtractor

    samples = load_locomo(path)
    results: dict[str, list[tuple[LocomoQuestion, Sequence[Collection[str]]]]] = {
        level: [] for level in LOCOMO_LEVELS
    }
    stats: dict[str, Any] = {"samples": len(samples), "turns": 0, "questions": 0}
    tenant = DEFAULT_TENANT if config.backend is None else f"locomo-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="convmem-eval-") as tmp,
        _open(tmp, config) as store,
        _own_tenant(store, tenant, drop=config.backend is not None) as memory,
    ):
        profiles: dict[str, dict[str, str]] = {}
        for sample in samples:
            profiles[sample.sample_id] = ingest_locomo_speakers(memory, sample, progress)
            stats["turns"] += sample.turn_count
        memory.observations.extractor = HeuristicExtractor()
        batch = memory.observations.extract_all()
        stats["extractor"] = memory.observations.extractor.name
        stats["extract_seconds"] = batch.seconds
        stats["extract_messages_per_second"] = round(batch.messages / max(batch.seconds, 1e-9))
        stats["observations"] = batch.decisions.get(Decision.ADD, 0) + batch.decisions.get(
            Decision.UPDATE, 0
        )
        stats["summaries"] = batch.summaries
        derived = RecallOptions(
            types=frozenset({ItemType.OBSERVATION, ItemType.SUMMARY, ItemType.MESSAGE}),
            limits={ItemType.OBSERVATION: 25, ItemType.SUMMARY: 25, ItemType.MESSAGE: 25},
            mode=config.mode,
            alpha=config.alpha,
            token_budget=0,
            min_score=0.0,
        )
        default = RecallOptions()
        t1 = time.perf_counter()
        for sample in samples:
            speakers = profiles[sample.sample_id]
            for question in sample.questions:
                units: dict[str, list[set[str]]] = {level: [] for level in LOCOMO_LEVELS}
                if question.is_evaluable:
                    asked = about(question.question, list(speakers))
                    recalled = {
                        s: memory.recall(speakers[s], question.question, options=derived).items
                        for s in dict.fromkeys([sample.speaker_a, *asked])
                    }
                    first = recalled[sample.speaker_a]
                    turns = [_dia_ids([i.id]) for i in first if i.type is ItemType.MESSAGE]
                    facts = [
                        _dia_ids(i.provenance.message_ids)
                        for i in rank_by_score(
                            i for s in asked for i in recalled[s] if i.type is not ItemType.MESSAGE
                        )
                    ]
                    shown = [
                        i
                        for s in asked
                        for kind in (ItemType.OBSERVATION, ItemType.SUMMARY, ItemType.MESSAGE)
                        for i in [i for i in recalled[s] if i.type is kind][
                            : default.limit(kind) if kind is not ItemType.MESSAGE else 25
                        ]
                    ]
                    combined: list[set[str]] = []
                    for item in rank_by_score(shown):
                        ids = _dia_ids(
                            [item.id]
                            if item.type is ItemType.MESSAGE
                            else item.provenance.message_ids
                        )
                        if item.type is ItemType.MESSAGE and ids in combined:
                            continue  # the same turn from the other speaker's view
                        combined.append(ids)
                    units = {"message": turns, "observation": facts, "combined": combined}
                for level in LOCOMO_LEVELS:
                    results[level].append((question, units[level]))
                stats["questions"] += 1
                if progress:
                    progress(1)
        stats["query_seconds"] = round(time.perf_counter() - t1, 2)
        stats["embedder"] = memory.embedder.model_id
        stats["backend"] = memory.backend.name
    return {level: locomo_report(results[level]) for level in LOCOMO_LEVELS}, stats


def run_locomo_levels_cli(
    console: Console, data: Path, config: EvalConfig, *, as_json: bool
) -> None:
    samples = load_locomo(data)
    total = sum(s.turn_count + len(s.questions) for s in samples)
    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("LoCoMo: ingest, extract, recall", total=total)
        reports, stats = evaluate_locomo_levels(
            data, config, progress=lambda n: bar.advance(task, n)
        )
    if as_json:
        out = {"dataset": "locomo", "mode": config.mode.value, "alpha": config.alpha, **stats}
        out["levels"] = {level: r.to_dict() for level, r in reports.items()}
        console.file.write(json.dumps(out, indent=2) + "\n")
        return
    first = reports["message"]
    table = Table(
        title=f"LoCoMo evidence recall by level ({config.mode.value}, {stats['embedder']}, "
        f"extractor {stats['extractor']})"
    )
    table.add_column("category")
    table.add_column("questions", justify="right")
    for level in LOCOMO_LEVELS:
        for k in first.ks:
            table.add_column(f"{level[:3]} R@{k}", justify="right")
    for category in [None, *first.per_category]:
        row_scores = [
            r.overall if category is None else r.per_category[category] for r in reports.values()
        ]
        table.add_row(
            row_scores[0].name,
            str(row_scores[0].count),
            *(f"{100 * s.recall[k]:.1f}" for s in row_scores for k in first.ks),
        )
    console.print(table)
    console.print(
        f"{stats['turns']} turns; {stats['observations']} observations and "
        f"{stats['summaries']} summaries extracted in {stats['extract_seconds']} s "
        f"({stats['extract_messages_per_second']} messages/s); "
        f"{stats['questions']} questions in {stats['query_seconds']} s"
    )


# -- BEIR --------------------------------------------------------------------------


def evaluate_beir(
    path: Path, config: EvalConfig, *, progress: ProgressFn | None = None
) -> tuple[BeirReport, dict[str, Any]]:
    """nDCG@10 and recall@100 over the judged test queries, through the
    knowledge pipeline: the corpus is one documents source (chunked, titles as
    context), a document ranks by its best chunk."""
    from memory_core.knowledge.beir import index_corpus, search_documents

    data = load_beir(path)
    runs: dict[str, list[str]] = {}
    stats: dict[str, Any] = {"documents": len(data.corpus), "queries": len(data.queries)}
    tenant = DEFAULT_TENANT if config.backend is None else f"beir-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="convmem-eval-") as tmp,
        _open(tmp, config) as store,
        _own_tenant(store, tenant, drop=config.backend is not None) as memory,
    ):
        t0 = time.perf_counter()
        source = index_corpus(memory, data, progress=progress)
        stats["ingest_seconds"] = round(time.perf_counter() - t0, 2)
        stats["chunks"] = source.chunk_count
        t1 = time.perf_counter()
        for done, (qid, text) in enumerate(data.queries.items(), start=1):
            runs[qid] = search_documents(memory, text, k=100, mode=config.mode, alpha=config.alpha)
            if progress:
                progress("searching", done, len(data.queries))
        stats["query_seconds"] = round(time.perf_counter() - t1, 2)
        stats["embedder"] = memory.embedder.model_id
        stats["backend"] = memory.backend.name
    return beir_report(runs, data.qrels), stats


def run_beir_cli(
    console: Console,
    data: Path,
    *,
    mode: str,
    alpha: float | None,
    embedder: str | None,
    as_json: bool,
) -> None:
    from memory_core.knowledge.search import DEFAULT_ALPHA

    alpha = DEFAULT_ALPHA if alpha is None else alpha
    config = EvalConfig(mode=_mode(mode), alpha=alpha, embedder=embedder)
    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("BEIR: indexing", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"BEIR: {stage}", completed=done, total=total)

        report, stats = evaluate_beir(data, config, progress=progress)
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
        f"over {report.count} queries; indexed {stats['documents']} docs "
        f"({stats['chunks']} chunks) in {stats['ingest_seconds']} s, "
        f"queried in {stats['query_seconds']} s"
    )
