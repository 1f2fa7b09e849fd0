"""Implementations of ``convmem ingest`` and ``convmem recall``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import Progress

from memory_core.cli.render import show_recall
from memory_core.config import Settings, require_store
from memory_core.errors import MemoryCoreError, ValidationError
from memory_core.memory import Memory
from memory_core.models import ConversationIn
from memory_core.recall import ItemType, RecallOptions


def read_lines(file: Path) -> list[tuple[int, ConversationIn | str]]:
    """Every non-blank line of an ingest file with its number: the conversation it
    holds, or why it is not one (one line of text)."""
    if not file.is_file():
        raise ValidationError(f"{file} is not a file")
    try:
        # JSON Lines end at "\n" only: str.splitlines() would also split at U+2028 etc.,
        # which JSON strings may hold unescaped.
        lines = file.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{file} is not UTF-8 text: {exc}") from exc
    out: list[tuple[int, ConversationIn | str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append((number, ConversationIn.model_validate(json.loads(line))))
        except PydanticValidationError as exc:
            parts = [f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors()]
            out.append((number, one_line("invalid conversation: " + "; ".join(parts))))
        except json.JSONDecodeError as exc:
            out.append((number, f"not a JSON object: {exc}"))
        except MemoryCoreError as exc:  # a typed error from a model's own check
            out.append((number, one_line(exc)))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            out.append((number, f"invalid conversation: {type(exc).__name__}: {exc}"))
    return out


def read_conversations(file: Path) -> list[ConversationIn]:
    """The conversations of an ingest file; ValidationError naming the first bad line."""
    out: list[ConversationIn] = []
    for number, item in read_lines(file):
        if isinstance(item, str):
            raise ValidationError(f"{file}:{number}: {item}")
        out.append(item)
    return out


def one_line(text: object) -> str:
    """``text`` on one line (error messages may span several)."""
    return " ".join(str(text).split())


def run_ingest(
    console: Console, file: Path, settings: Settings, *, continue_on_error: bool = False
) -> None:
    """``convmem ingest``: check every line against the store first (nothing is
    written while checking), then write. By default a file with any bad line
    writes nothing (exit 2, one line per bad line); with ``continue_on_error``
    the good lines are written and the bad ones reported (exit 1)."""
    lines = read_lines(file)
    bad = {number: item for number, item in lines if isinstance(item, str)}
    parsed = [(number, item) for number, item in lines if isinstance(item, ConversationIn)]
    with Memory.open(settings=settings) as memory:
        checks = memory.conversations._check_import([conv for _, conv in parsed])
        for (number, _), error in zip(parsed, checks, strict=True):
            if error is not None:
                bad[number] = one_line(error)
        if bad and not continue_on_error:
            _report(file, bad)
            sys.stderr.write(
                f"nothing written: {len(bad)} of {len(lines)} lines are invalid; fix them, "
                "or pass --continue-on-error to write the valid lines\n"
            )
            raise typer.Exit(2)
        good = [(number, conv) for number, conv in parsed if number not in bad]
        added = skipped = written = 0
        profiles: set[str] = set()
        with Progress(console=console) as progress:
            task = progress.add_task("ingesting", total=len(good))
            # Embedded in batches across conversations while the batch before is written.
            results = memory.conversations._ingest_many(
                [conv for _, conv in good],
                stop_on_error=not continue_on_error,
                progress=lambda k: progress.advance(task, k),
            )
            for (number, _), result in zip(good, results, strict=False):
                if isinstance(result, MemoryCoreError):
                    if not continue_on_error:  # it passed the check: the store changed, or
                        sys.stderr.write(  # the embedder failed
                            f"{file}:{number}: not written; the lines before it were. Run the "
                            "import again to resume (what is stored is skipped).\n"
                        )
                        raise result
                    bad[number] = one_line(result)
                    continue
                written += 1
                added += len(result.messages)
                skipped += result.skipped
                profiles.add(result.profile.id)
    console.print(
        f"ingested {written} conversations: {added} new messages, "
        f"{skipped} already stored, {len(profiles)} profiles"
    )
    if bad:
        _report(file, bad)
        sys.stderr.write(f"{len(bad)} of {len(lines)} lines not written (see above)\n")
        raise typer.Exit(1)


def _report(file: Path, bad: dict[int, str]) -> None:
    for number in sorted(bad):
        sys.stderr.write(f"{file}:{number}: {bad[number]}\n")


def run_recall(
    console: Console,
    settings: Settings,
    *,
    profile: str,
    query: str | None,
    conversation: str | None,
    limit: int,
    budget: int,
    as_json: bool,
) -> None:
    defaults = RecallOptions()
    options = RecallOptions(
        limits={**defaults.limits, ItemType.MESSAGE: limit}, token_budget=budget
    )
    with Memory.open(settings=require_store(settings)) as memory:  # reads: creates no store
        result = memory.recall(profile, query, conversation_id=conversation, options=options)
    if as_json:
        console.file.write(result.model_dump_json(indent=2) + "\n")
    else:
        show_recall(console, result)
