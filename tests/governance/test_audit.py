"""The audit log: one append-only event per mutation, with actor, reason and time."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from memory_core import AsyncMemory
from memory_core.backends.base import Collection
from memory_core.governance import acting_as
from memory_core.memory import Memory
from memory_core.models import utcnow


def test_every_mutation_is_recorded_with_ids_and_counts_only(memory: Memory) -> None:
    acme = memory.tenants.add("acme")
    conv = acme.conversations.add("chat", ["email:ann@example.com"])
    msg = acme.conversations.add_message(conv.id, "customer", "hi there, card 4111 1111 1111 1111")
    acme.conversations.end(conv.id)
    profile = acme.profiles.add(["phone:+16175550100"])
    acme.profiles.link(profile.id, "email:bo@example.com")
    merged = acme.profiles.merge(profile.id, "email:ann@example.com")
    acme.traits.set(merged.id, "tier", "gold")
    acme.traits.delete(merged.id, "tier")
    acme.governance.policy.set({"retention": {"messages": "30d"}})
    acme.conversations.delete_message(msg.id)
    acme.profiles.delete(merged.id)

    actions = [e.action for e in acme.governance.audit.list()]
    assert actions == [
        "ingest",  # conversations.add
        "ingest",  # conversations.add_message
        "end_conversation",
        "extract",  # auto-extraction when the conversation ended
        "create_profile",
        "link_identifier",
        "merge_profiles",
        "set_trait",
        "delete_trait",
        "set_policy",
        "delete_message",
        "delete_profile",
    ]
    everything = json.dumps([e.model_dump(mode="json") for e in acme.governance.audit.list()])
    for content in ("hi there", "4111", "ann@example.com", "6175550100", "gold"):
        assert content not in everything
    link = acme.governance.audit.list(action="link_identifier")[0]
    assert link.details == {"kind": "email"}
    assert [e.target for e in memory.tenants.audit()] == ["tenant:acme"]
    assert "_system" not in memory.tenants.list()


def test_actor_and_reason_come_from_the_context(memory: Memory) -> None:
    profile = memory.profiles.add(["phone:+16175550100"])
    with acting_as("agent:jane", reason="ticket 4411: customer asked to be forgotten"):
        memory.profiles.delete(profile.id)
    event = memory.governance.audit.list(action="delete_profile")[0]
    assert (event.actor, event.reason) == (
        "agent:jane",
        "ticket 4411: customer asked to be forgotten",
    )
    assert memory.governance.audit.list(action="create_profile")[0].actor == "api"


async def test_actor_follows_the_async_facade(memory: Memory) -> None:
    facade = AsyncMemory(memory)
    with acting_as("bot:nightly"):
        await facade.profiles.add(["phone:+16175550100"])
    events = await facade.governance.audit.list(action="create_profile")
    assert [e.actor for e in events] == ["bot:nightly"]
    assert asyncio.current_task() is not None


def test_query_filters_and_jsonl_export(memory: Memory, tmp_path: Path) -> None:
    start = utcnow()
    p = memory.profiles.add(["phone:+16175550100"])
    memory.traits.set(p.id, "tier", "gold")
    assert [e.action for e in memory.governance.audit.list(target=f"profile:{p.id}")] == [
        "create_profile",
        "set_trait",
    ]
    assert memory.governance.audit.list(since=utcnow() + timedelta(seconds=5)) == []
    assert len(memory.governance.audit.list(since=start, limit=1)) == 1
    out = tmp_path / "audit.jsonl"
    assert memory.governance.audit.export(out) == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["create_profile", "set_trait"]
    assert set(lines[0]) == {"id", "tenant", "ts", "actor", "action", "target", "reason", "details"}


def test_the_log_is_append_only(memory: Memory) -> None:
    p = memory.profiles.add(["phone:+16175550100"])
    first = memory.governance.audit.list()
    memory.traits.set(p.id, "tier", "gold")
    memory.profiles.delete(p.id)
    after = memory.governance.audit.list()
    assert after[: len(first)] == first  # earlier events unchanged, new ones appended
    assert memory.backend.count("default", Collection.AUDIT) == 3
