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
    memory.create_tenant("acme")
    conv = memory.start_conversation("chat", ["email:ann@example.com"], tenant="acme")
    msg = memory.add_message(
        conv.id, "customer", "hi there, card 4111 1111 1111 1111", tenant="acme"
    )
    memory.end_conversation(conv.id, tenant="acme")
    profile = memory.create_profile(["phone:+16175550100"], tenant="acme")
    memory.link_identifier(profile.id, "email:bo@example.com", tenant="acme")
    merged = memory.merge_profiles(profile.id, "email:ann@example.com", tenant="acme")
    memory.set_trait(merged.id, "tier", "gold", tenant="acme")
    memory.delete_trait(merged.id, "tier", tenant="acme")
    memory.set_policy({"retention": {"messages": "30d"}}, tenant="acme")
    memory.delete_message(msg.id, tenant="acme")
    memory.delete_profile(merged.id, tenant="acme")

    actions = [e.action for e in memory.audit(tenant="acme")]
    assert actions == [
        "ingest",  # start_conversation
        "ingest",  # add_message
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
    everything = json.dumps([e.model_dump(mode="json") for e in memory.audit(tenant="acme")])
    for content in ("hi there", "4111", "ann@example.com", "6175550100", "gold"):
        assert content not in everything
    link = memory.audit(tenant="acme", action="link_identifier")[0]
    assert link.details == {"kind": "email"}
    assert [e.target for e in memory.audit(tenant="_system")] == ["tenant:acme"]
    assert "_system" not in memory.list_tenants()


def test_actor_and_reason_come_from_the_context(memory: Memory) -> None:
    profile = memory.create_profile(["phone:+16175550100"])
    with acting_as("agent:jane", reason="ticket 4411: customer asked to be forgotten"):
        memory.delete_profile(profile.id)
    event = memory.audit(action="delete_profile")[0]
    assert (event.actor, event.reason) == (
        "agent:jane",
        "ticket 4411: customer asked to be forgotten",
    )
    assert memory.audit(action="create_profile")[0].actor == "api"


async def test_actor_follows_the_async_facade(memory: Memory) -> None:
    facade = AsyncMemory(memory)
    with acting_as("bot:nightly"):
        await facade.create_profile(["phone:+16175550100"])
    events = await facade.audit(action="create_profile")
    assert [e.actor for e in events] == ["bot:nightly"]
    assert asyncio.current_task() is not None


def test_query_filters_and_jsonl_export(memory: Memory, tmp_path: Path) -> None:
    start = utcnow()
    p = memory.create_profile(["phone:+16175550100"])
    memory.set_trait(p.id, "tier", "gold")
    assert [e.action for e in memory.audit(target=f"profile:{p.id}")] == [
        "create_profile",
        "set_trait",
    ]
    assert memory.audit(since=utcnow() + timedelta(seconds=5)) == []
    assert len(memory.audit(since=start, limit=1)) == 1
    out = tmp_path / "audit.jsonl"
    assert memory.export_audit(out) == 2
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["create_profile", "set_trait"]
    assert set(lines[0]) == {"id", "tenant", "ts", "actor", "action", "target", "reason", "details"}


def test_the_log_is_append_only(memory: Memory) -> None:
    p = memory.create_profile(["phone:+16175550100"])
    first = memory.audit()
    memory.set_trait(p.id, "tier", "gold")
    memory.delete_profile(p.id)
    after = memory.audit()
    assert after[: len(first)] == first  # earlier events unchanged, new ones appended
    assert memory.backend.count("default", Collection.AUDIT) == 3
