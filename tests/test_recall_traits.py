"""Recall states one truth per trait: the effective value, with disagreeing
sources as a note, never two values side by side as if both were true."""

from __future__ import annotations

from memory_core import Memory
from memory_core.recall import ItemType


def test_recall_shows_the_winning_trait_value_once_with_the_conflict_as_a_note(
    memory: Memory,
) -> None:
    result = memory.ingest(
        {
            "channel": "sms",
            "customer": ["phone:+16175550142"],
            "messages": [{"role": "customer", "text": "hi, I moved recently"}],
        }
    )
    pid = result.profile.id
    memory.traits.set(pid, "location", "Phoenix", source="agent")
    memory.traits.set(pid, "location", "Austin", source="crm")  # a system of record wins
    memory.traits.set(pid, "preferred_channel", "sms", source="agent")
    memory.traits.set(pid, "preferred_channel", "sms", source="extracted")  # agrees: no note

    recalled = memory.recall(pid, "where does the customer live")
    traits = [i for i in recalled.items if i.type is ItemType.TRAIT]
    assert [t.text for t in traits] == [
        "location: Austin (conflicting: Phoenix from agent)",
        "preferred_channel: sms",
    ]
    assert [t.provenance.source for t in traits] == ["crm", "agent"]
    assert recalled.context.count("location:") == 1
    assert recalled.context.count("preferred_channel:") == 1
    assert [v.value for v in memory.traits.views(pid)] == ["Austin", "sms"]


def test_the_trait_limit_counts_keys_not_source_rows(memory: Memory) -> None:
    from memory_core.recall import RecallOptions

    profile = memory.profiles.add(["email:dana@example.com"])
    for key in ("language", "location", "tier"):
        memory.traits.set(profile.id, key, "x" if key != "language" else "en", source="agent")
        memory.traits.set(profile.id, key, "y" if key != "language" else "en", source="crm")
    limits = {ItemType.TRAIT: 2, ItemType.MESSAGE: 0}
    recalled = memory.recall(profile.id, options=RecallOptions(limits=limits))
    assert [i.text.split(":")[0] for i in recalled.items] == ["language", "location"]
