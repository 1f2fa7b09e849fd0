"""Retention with a controllable clock: ``gc(now=...)`` and the scheduler."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from memory_core.backends.base import Collection
from memory_core.extraction.base import (
    ExtractionInput,
    ExtractionOutput,
    ProposedObservation,
    ProposedSummary,
)
from memory_core.governance import RetentionScheduler
from memory_core.memory import Memory
from memory_core.models import DeletionReceipt, ObservationKind

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class OnePerMessage:
    name = "one-per-message-1"

    def extract(self, data: ExtractionInput) -> ExtractionOutput:
        return ExtractionOutput(
            observations=[
                ProposedObservation(
                    kind=ObservationKind.CONTEXT,
                    text=f"Mentioned {m.text.split()[-1]}",
                    evidence=(m.id,),
                    confidence=0.9,
                )
                for m in data.messages
            ],
            summary=ProposedSummary(
                text="They talked.", evidence=tuple(m.id for m in data.messages)
            ),
        )


def converse(memory: Memory, day: int, word: str, tenant: str = "default") -> str:
    memory = memory.tenant(tenant)
    result = memory.ingest(
        {
            "channel": "sms",
            "customer": ["phone:+16175550142"],
            "started_at": T0 + timedelta(days=day),
            "messages": [
                {"role": "customer", "text": f"hello about {word}", "ts": T0 + timedelta(days=day)}
            ],
        },
    )
    memory.observations.extract(result.conversation.id)
    return result.conversation.id


def count(memory: Memory, collection: Collection, tenant: str = "default") -> int:
    return memory.backend.count(tenant, collection)


def test_messages_expire_with_what_only_they_supported(memory: Memory) -> None:
    memory.observations.extractor = OnePerMessage()
    memory.governance.policy.set({"retention": {"messages": "30d"}})
    old = converse(memory, 0, "apples")
    converse(memory, 40, "pears")
    assert count(memory, Collection.OBSERVATIONS) == 2

    assert memory.tenants.gc(now=T0 + timedelta(days=20)).total == 0  # nothing expired yet
    receipt = memory.tenants.gc(now=T0 + timedelta(days=45))

    assert receipt.deleted == {
        "messages": 1,
        "observations": 1,
        "summaries": 1,
        "extractions": 1,
        "conversations": 1,
    }
    assert count(memory, Collection.MESSAGES) == 1
    assert [o.text for o in memory.backend.find("default", Collection.OBSERVATIONS)] == [
        "Mentioned pears"
    ]
    with pytest.raises(LookupError):
        memory.conversations.get(old)
    event = memory.governance.audit.list(action="gc")[0]
    assert event.details["messages"] == 1 and event.target == "tenant:default"
    assert memory.tenants.gc(now=T0 + timedelta(days=45)).total == 0  # idempotent


def test_observations_and_summaries_have_their_own_ttl(memory: Memory) -> None:
    memory.observations.extractor = OnePerMessage()
    memory.governance.policy.set({"retention": {"observations": "P10D", "summaries": "2w"}})
    converse(memory, 0, "apples")
    # observations are dated by when they were last updated (now), summaries by
    # their conversation's start (T0)
    receipt = memory.tenants.gc(now=T0 + timedelta(days=15))
    assert receipt.deleted == {"summaries": 1}
    receipt = memory.tenants.gc(now=datetime.now(UTC) + timedelta(days=11))
    assert receipt.deleted == {"observations": 1}
    assert count(memory, Collection.MESSAGES) == 1  # messages kept: no TTL set


def test_gc_runs_over_every_tenant_by_its_own_policy(memory: Memory) -> None:
    memory.tenants.add("short")
    memory.tenants.add("forever")
    memory.tenant("short").governance.policy.set({"retention": {"messages": "1d"}})
    for tenant in ("short", "forever"):
        memory.tenant(tenant).ingest(
            {
                "channel": "sms",
                "customer": ["phone:+16175550142"],
                "messages": [{"role": "customer", "text": "hi", "ts": T0}],
            },
        )
    receipt = memory.tenants.gc(now=T0 + timedelta(days=3))
    assert receipt.tenant == "*" and receipt.deleted["messages"] == 1
    assert count(memory, Collection.MESSAGES, "short") == 0
    assert count(memory, Collection.MESSAGES, "forever") == 1


def test_retention_from_the_settings_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from memory_core.backends.sqlite import SQLiteBackend
    from memory_core.config import load_settings
    from memory_core.embedding import HashEmbedder

    config = tmp_path / "convmem.toml"
    config.write_text('[policies."*".retention]\nmessages = "7d"\n')
    monkeypatch.setenv("CONVMEM_CONFIG", str(config))
    settings = load_settings(data_dir=tmp_path)
    with Memory(SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=settings) as memory:
        assert memory.governance.policy.get().retention.messages == timedelta(days=7)
        memory.ingest(
            {
                "channel": "sms",
                "customer": ["phone:+16175550142"],
                "messages": [{"role": "customer", "text": "hi", "ts": T0}],
            }
        )
        assert memory.tenants.gc(now=T0 + timedelta(days=8)).deleted["messages"] == 1


class FakeMemory:
    """Counts gc() calls; signals each one."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()

    def gc(self, *, tenant: str | None = None, now: datetime | None = None) -> DeletionReceipt:
        self.calls += 1
        self.called.set()
        return DeletionReceipt(tenant="*", target="retention", deleted={})


def test_scheduler_runs_on_demand_and_on_its_thread() -> None:
    fake = FakeMemory()
    scheduler = RetentionScheduler(fake, interval=3600)
    assert scheduler.run_once() is not None and fake.calls == 1
    with RetentionScheduler(fake, interval=0.01) as running:
        assert fake.called.wait(5.0)
        assert running.running
    assert not running.running
    with pytest.raises(ValueError):
        RetentionScheduler(fake, interval=0)


def test_scheduler_keeps_going_after_a_failed_run(memory: Memory) -> None:
    memory.close()  # every gc() now fails with a StorageError
    scheduler = RetentionScheduler(memory.tenants, interval=3600)
    assert scheduler.run_once() is None
    assert scheduler.last_error is not None and scheduler.runs == 1
