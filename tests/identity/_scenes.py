"""Helpers of the identity tests: conversations as a contact centre receives them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from memory_core.memory import IngestResult, Memory
from memory_core.models import ObservationKind

ANN_PHONE = "phone:+16175550142"
ANN_EMAIL = "email:ann.lee@example.com"
JON_EMAIL = "email:jon.smith@example.com"
HOUSEHOLD = "phone:+16175550199"


def at(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 10, 0, tzinfo=UTC)


def call(
    memory: Memory,
    customer: list[str],
    when: datetime,
    text: str = "Hi, I'm calling about my order.",
    *,
    channel: str = "voice",
    conversation_id: str | None = None,
) -> IngestResult:
    """One short conversation of the customer given by ``customer``, at ``when``."""
    conversation: dict[str, Any] = {
        "channel": channel,
        "customer": customer,
        "started_at": when,
        "messages": [
            {"role": "customer", "text": text, "ts": when},
            {"role": "human_agent", "text": "Thanks, let me check that for you.", "ts": when},
        ],
    }
    if conversation_id is not None:
        conversation["id"] = conversation_id
    return memory.ingest(conversation)


def actions(memory: Memory) -> list[str]:
    """The tenant's audit actions, oldest first."""
    return [e.action for e in memory.governance.audit.list()]


def typo_collision(memory: Memory) -> tuple[str, str, str]:
    """Ann and Jon, each with history; then an agent types Ann's email wrong in a
    way that is Jon's address. Returns Ann's id, Jon's id, the pending merge id."""
    ann = call(memory, [ANN_PHONE, ANN_EMAIL], at(2026, 1, 5)).profile
    jon = call(memory, [JON_EMAIL], at(2026, 1, 6), channel="email").profile
    result = call(memory, [ANN_PHONE, JON_EMAIL], at(2026, 2, 1), conversation_id="cnv-typo")
    assert result.profile.id == ann.id and result.merged_profile_ids == []
    (pending,) = memory.profiles.pending_merges()
    return ann.id, jon.id, pending.id


def comparable(memory: Memory, profile_id: str) -> dict[str, Any]:
    """A profile's export without what any later read changes (the export time, the
    audit trail, and the survivor's ``updated_at``, which a merge moves)."""
    document = memory.profiles.export(profile_id).model_dump(mode="json")
    for volatile in ("exported_at", "audit"):
        document.pop(volatile)
    document["profile"].pop("updated_at")
    return document


def two_customers(memory: Memory) -> tuple[str, str]:
    """Ann (phone, email, a CRM tier) and Bea (web chat, a newer CRM tier that wins a
    merge, a language, an observation, a display name); both with conversations."""
    ann = call(memory, [ANN_PHONE, ANN_EMAIL], at(2026, 1, 5), "My parcel never arrived.")
    memory.traits.set(ann.profile.id, "tier", "gold", source="crm")
    memory.observations.add(ann.profile.id, "Prefers calls in the morning", "preference")
    bea = memory.profiles.add(["chat_id:web-9"], display_name="Bea Lee")
    call(memory, ["chat_id:web-9"], at(2026, 1, 7), "I'd like to change my plan.", channel="chat")
    memory.traits.set(bea.id, "tier", "platinum", source="crm")
    memory.traits.set(bea.id, "language", "es", source="crm")
    memory.observations.add(bea.id, "Is moving to Madrid in March", ObservationKind.INTENT)
    return ann.profile.id, bea.id
