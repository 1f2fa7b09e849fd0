"""Implementations of ``convmem ingest`` and ``convmem recall``."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError
from rich.console import Console
from rich.progress import Progress

from memory_core.cli.render import show_recall
from memory_core.config import Settings
from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.models import ConversationIn
from memory_core.recall import ItemType, RecallOptions


def read_conversations(file: Path) -> list[ConversationIn]:
    """Parse and validate every line first, so a bad line writes nothing."""
    if not file.is_file():
        raise ValidationError(f"{file} is not a file")
    out: list[ConversationIn] = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{file} is not UTF-8 text: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(ConversationIn.model_validate(json.loads(line)))
        except (json.JSONDecodeError, PydanticValidationError) as exc:
            raise ValidationError(f"{file}:{number}: invalid conversation: {exc}") from exc
    return out


def run_ingest(console: Console, file: Path, settings: Settings) -> None:
    conversations = read_conversations(file)
    added = skipped = 0
    profiles: set[str] = set()
    with Memory.open(settings=settings) as memory, Progress(console=console) as progress:
        task = progress.add_task("ingesting", total=len(conversations))
        for conv in conversations:
            result = memory.ingest(conv)
            added += len(result.messages)
            skipped += result.skipped
            profiles.add(result.profile.id)
            progress.advance(task)
    console.print(
        f"ingested {len(conversations)} conversations: {added} new messages, "
        f"{skipped} already stored, {len(profiles)} profiles"
    )


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
    with Memory.open(settings=settings) as memory:
        result = memory.recall(profile, query, conversation_id=conversation, options=options)
    if as_json:
        console.file.write(result.model_dump_json(indent=2) + "\n")
    else:
        show_recall(console, result)
