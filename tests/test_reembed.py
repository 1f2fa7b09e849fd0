"""Changing the embedding model: a mismatch is refused (never a silent fall-back to
keywords), and ``convmem reembed`` brings the store to the configured model,
resumably, with the same search results as a store built with that model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory_core.cli.app import app
from memory_core.errors import EmbedderMismatchError
from memory_core.memory import Memory
from memory_core.recall import RecallOptions
from memory_core.reembed import reembed

KEYWORD = RecallOptions(mode="keyword")
VECTOR = RecallOptions(mode="vector", min_score=0.0)  # every hit, however weak

CONVERSATIONS = [
    {
        "id": f"c{i}",
        "channel": "chat",
        "customer": [f"email:person{i}@example.com"],
        "messages": [
            {"id": f"c{i}m1", "role": "customer", "text": text},
            {"id": f"c{i}m2", "role": "human_agent", "text": "Thanks, noted."},
        ],
    }
    for i, text in enumerate(
        [
            "My router keeps dropping the wifi every evening",
            "I moved to Austin and need to update my billing address",
            "Please call me in the mornings, never after 6pm",
            "The invoice for March charged me twice",
        ]
    )
]


def _build(path: Path, embedder: str) -> None:
    with Memory.open(path, embedder=embedder) as memory:
        for conv in CONVERSATIONS:
            memory.ingest(conv)
        memory.knowledge.bases.add("help")
        memory.knowledge.sources.add(
            "help", content="Refunds are issued within 5 days.", title="Refunds"
        )


def _vector_hits(path: Path, embedder: str) -> list[tuple[tuple[str, float], ...]]:
    with Memory.open(path, embedder=embedder) as memory:
        out = []
        for i, text in enumerate(["wifi problems at night", "double charge on a bill"]):
            result = memory.recall(f"email:person{i}@example.com", text, options=VECTOR)
            out.append(tuple((item.text, round(item.score, 6)) for item in result.items))
        hits = memory.knowledge.search("refund", mode="vector")
        out.append(tuple((h.text, round(h.score, 6)) for h in hits))
        return out


def test_a_store_embedded_with_another_model_is_refused_not_silently_degraded(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    _build(db, "hash:64")
    with Memory.open(db, embedder="hash:32") as memory:
        with pytest.raises(EmbedderMismatchError, match="convmem reembed") as caught:
            memory.recall("email:person0@example.com", "wifi")
        assert caught.value.stored == "hash-64" and caught.value.configured == "hash-32"
        with pytest.raises(EmbedderMismatchError):
            memory.knowledge.search("refund")
        # keyword search needs no vectors and still works
        assert memory.recall("email:person0@example.com", "wifi", options=KEYWORD).items


def test_reembed_resumes_and_matches_a_store_built_with_the_new_model(tmp_path: Path) -> None:
    db, fresh = tmp_path / "m.db", tmp_path / "fresh.db"
    _build(db, "hash:64")
    _build(fresh, "hash:32")

    class Stop(Exception):
        pass

    def stop_after_first_page(collection: str, done: int, total: int) -> None:
        raise Stop

    with Memory.open(db, embedder="hash:32") as memory:
        with pytest.raises(Stop):  # interrupted after one page of messages
            reembed(memory, batch_size=3, progress=stop_after_first_page)
        report = reembed(memory, batch_size=3)
    assert report.current["messages"] == 3  # the first page was kept, not redone
    assert report.reembedded["messages"] == 2 * len(CONVERSATIONS) - 3
    assert report.reembedded["chunks"] == 1
    assert all(_vector_hits(fresh, "hash:32"))
    assert _vector_hits(db, "hash:32") == _vector_hits(fresh, "hash:32")
    with Memory.open(db, embedder="hash:32") as memory:
        again = reembed(memory)
        assert again.total == 0  # nothing left to do
        assert [e.action for e in memory.governance.audit.list()].count("reembed") == 2


def test_convmem_reembed_command(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    _build(db, "hash:64")
    runner = CliRunner()
    result = runner.invoke(
        app, ["reembed", "--db", str(db), "--embedder", "hash:32", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model_id"] == "hash-32" and report["reembedded"]["messages"] == 8
    args = ["recall", "email:person0@example.com", "wifi", "--db", str(db), "--embedder", "hash:32"]
    result = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
