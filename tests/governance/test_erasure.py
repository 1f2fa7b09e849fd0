"""Deletion that leaves nothing: the raw database files, derived records, dependent
vectors, caches, receipts and the audit trail."""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from memory_core.backends.base import Collection, SearchMode, Vectors, Where
from memory_core.embedding import HashEmbedder
from memory_core.embedding.base import CachedEmbedder
from memory_core.embedding.texts import embedding_texts
from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
)
from memory_core.memory import Memory
from memory_core.models import DeletionReceipt, ObservationKind

PHONE = "phone:+16175550142"


def marker_word() -> str:
    """A unique all-letter word ending in "ing", so the porter stemmer shortens it."""
    letters = "".join(random.choices(string.ascii_lowercase, k=10))
    return f"qzv{letters}ing"


class EchoExtractor:
    """Turns each customer message into an observation quoting it, plus a summary."""

    name = "echo-1"

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        return ExtractionOutput(
            observations=[
                ProposedObservation(
                    kind=ObservationKind.CONTEXT,
                    text=f"Said: {m.text}",
                    evidence=(m.id,),
                    confidence=0.9,
                )
                for m in data.messages
            ],
            summary=ProposedSummary(
                text=" ".join(m.text for m in data.messages)[:1500],
                evidence=tuple(m.id for m in data.messages),
            ),
        )


def scan(db: Path, needles: list[str]) -> dict[str, list[str]]:
    """Which of ``needles`` occur in the raw bytes of the database, WAL and SHM files."""
    found: dict[str, list[str]] = {}
    for path in sorted(db.parent.glob(db.name + "*")):
        data = path.read_bytes()
        hits = [n for n in needles if n.encode() in data]
        if hits:
            found[path.name] = hits
    return found


def checkpoint(memory: Memory) -> None:
    memory.backend._holder().conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]


@pytest.fixture
def db(memory: Memory) -> Path:
    return memory.backend.path  # type: ignore[attr-defined, no-any-return]


def seed(memory: Memory, marker: str, tenant: str = "default") -> tuple[str, str]:
    """Another customer's history, then the marked customer's; returns the
    marked conversation and the message holding the marker."""
    memory.observations.extractor = EchoExtractor()
    memory = memory.tenant(tenant)
    for i in range(20):
        memory.ingest(
            {
                "channel": "sms",
                "customer": [f"phone:+1617555{1000 + i}"],
                "messages": [
                    {"role": "customer", "text": f"Where is parcel {i}? Please text me."},
                    {"role": "human_agent", "text": "It ships tomorrow."},
                ],
            },
        )
    result = memory.ingest(
        {
            "channel": "chat",
            "customer": [PHONE],
            "messages": [
                {"role": "customer", "text": "Hello, I have a question about my order"},
                {"role": "customer", "text": f"My secret codeword is {marker} remember it"},
                {"role": "human_agent", "text": "Noted, thank you"},
            ],
        },
    )
    memory.observations.extract(result.conversation.id, force=True)
    return result.conversation.id, result.messages[1].id


DELETIONS: dict[str, Callable[[Memory, str, str], DeletionReceipt]] = {
    "message": lambda m, conv, msg: m.conversations.delete_message(msg),
    "conversation": lambda m, conv, msg: m.conversations.delete(conv),
    "profile_by_identifier": lambda m, conv, msg: m.profiles.delete(PHONE),
}


@pytest.mark.parametrize("how", sorted(DELETIONS))
def test_deleted_text_does_not_survive_in_the_database_files(
    memory: Memory, db: Path, how: str
) -> None:
    marker = marker_word()
    stem = marker[:-3]
    conv, msg = seed(memory, marker)
    observations = memory.backend.find("default", Collection.OBSERVATIONS)
    assert any(marker in o.text for o in observations)
    checkpoint(memory)
    before = scan(db, [marker, stem])
    assert before.get(db.name) == [marker, stem], before  # the scan can see it

    receipt = DELETIONS[how](memory, conv, msg)

    assert receipt.deleted["messages"] >= 1
    assert receipt.deleted.get("observations", 0) >= 1  # what only it supported went too
    assert scan(db, [marker, stem]) == {}
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    # Not findable through any index either.
    for collection in (Collection.MESSAGES, Collection.OBSERVATIONS, Collection.SUMMARIES):
        assert (
            memory.backend.search("default", collection, mode=SearchMode.KEYWORD, text=stem) == []
        )
    memory.close()
    assert scan(db, [marker, stem]) == {}


def test_deleting_a_tenant_leaves_nothing_and_is_audited_outside_it(
    memory: Memory, db: Path
) -> None:
    marker = marker_word()
    memory.tenants.add("acme")
    seed(memory, marker, tenant="acme")
    receipt = memory.tenants.delete("acme")
    assert receipt.deleted["messages"] == 43
    assert scan(db, [marker, marker[:-3]]) == {}
    assert "acme" not in memory.tenants.list()
    events = memory.tenants.audit(action="delete_tenant")
    assert [e.target for e in events] == ["tenant:acme"]
    assert events[0].details["messages"] == 43


def test_audit_log_keeps_the_deletion_but_not_the_content(memory: Memory, tmp_path: Path) -> None:
    marker = marker_word()
    seed(memory, marker)
    profile = memory.profiles.get(PHONE)
    receipt = memory.profiles.delete(PHONE)
    events = memory.governance.audit.list(action="delete_profile")
    assert [e.target for e in events] == [f"profile:{profile.id}"]
    assert events[0].details["messages"] == receipt.deleted["messages"] == 3
    out = tmp_path / "audit.jsonl"
    assert memory.governance.audit.export(out) == len(memory.governance.audit.list())
    dumped = out.read_text()
    assert marker not in dumped and "6175550142" not in dumped and "codeword" not in dumped


def test_deleting_a_message_reembeds_the_turn_that_had_it_as_context(memory: Memory) -> None:
    texts = ["I ordered a blue kettle", "marker text that will go", "is it shipped yet?"]
    result = memory.ingest(
        {
            "channel": "chat",
            "customer": [PHONE],
            "messages": [{"role": "customer", "text": t} for t in texts],
        }
    )
    last = result.messages[2]
    memory.conversations.delete_message(result.messages[1].id)
    expected = embedding_texts([texts[0], texts[2]], None, memory.settings.embed_context_turns)[1]
    vector = Vectors(memory.embedder.model_id, HashEmbedder().embed_batch([expected]))
    hits = memory.backend.search(
        "default",
        Collection.MESSAGES,
        mode=SearchMode.VECTOR,
        vector=vector,
        where=Where(eq={"id": last.id}),
    )
    assert hits and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_embedding_cache_is_purged_on_deletion(memory: Memory) -> None:
    text = f"my codeword is {marker_word()}"
    result = memory.ingest(
        {"channel": "sms", "customer": [PHONE], "messages": [{"role": "customer", "text": text}]}
    )
    cache = memory.embedder
    assert isinstance(cache, CachedEmbedder)
    key = hashlib.sha256(text.encode()).digest()
    assert key in cache._cache
    memory.conversations.delete_message(result.messages[0].id)
    assert key not in cache._cache
    assert len(cache._cache) == 0
    # forget() drops single texts
    cache.embed_batch(["a", "b"])
    assert cache.forget(["a", "zzz"]) == 1
    assert len(cache._cache) == 1


def test_observation_deletion_is_audited_and_purged(memory: Memory, db: Path) -> None:
    marker = marker_word()
    seed(memory, marker)
    target = next(
        o for o in memory.backend.find("default", Collection.OBSERVATIONS) if marker in o.text
    )
    memory.observations.delete(target.id)
    assert [e.target for e in memory.governance.audit.list(action="delete_observation")] == [
        f"observation:{target.id}"
    ]
    # The message and summary still hold the marker; the observation's FTS terms are gone.
    hits = memory.backend.search(
        "default", Collection.OBSERVATIONS, mode=SearchMode.KEYWORD, text=marker
    )
    assert hits == []
