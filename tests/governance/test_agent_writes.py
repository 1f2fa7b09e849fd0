"""What agents and admins write directly (observations, trait declarations) goes
through the tenant's policy and the audit log like everything else, and
``explain`` shows the audit trail behind an observation."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

import memory_core
from memory_core.backends.base import Collection
from memory_core.errors import ValidationError
from memory_core.governance import PolicyDenied, acting_as
from memory_core.memory import Memory
from memory_core.models import Decision, ObservationStatus

ANN = "phone:+16175550142"
BOB = "phone:+16175550199"
IBAN = "DE89370400440532013000"
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def talk(memory: Memory, customer: str, text: str, *, tenant: str = "default") -> str:
    """One ended conversation (extraction runs when it ends); returns its id."""
    memory = memory.tenant(tenant)
    conv = memory.conversations.add("chat", [customer], started_at=T0)
    memory.conversations.add_message(conv.id, "customer", text, ts=T0)
    memory.conversations.add_message(
        conv.id, "human_agent", "Thanks, noted.", ts=T0 + timedelta(minutes=1)
    )
    memory.conversations.end(conv.id, ended_at=T0 + timedelta(minutes=5))
    return conv.id


def test_a_denied_observation_raises_policy_denied_and_writes_nothing(memory: Memory) -> None:
    memory.governance.policy.set(
        {"remember": {"deny_observation_kinds": ["complaint"], "deny_trait_keys": ["dob"]}}
    )
    memory.profiles.add([ANN])
    before = memory.governance.audit.list()
    refusals = [
        (("Complained about the late refund", "complaint"), {}, "complaint observations"),
        (("Born on 1 May 1980", "fact"), {"trait_key": "dob", "value": "1980-05-01"}, "'dob'"),
        (("Was diagnosed with diabetes last year", "context"), {}, "denied topic (health)"),
    ]
    for args, kwargs, reason in refusals:
        with pytest.raises(PolicyDenied, match=re.escape(reason)) as caught:
            memory.observations.add(ANN, *args, **kwargs)  # type: ignore[arg-type]
        assert isinstance(caught.value, ValidationError)  # callers catching that still do
        assert "governance.policy.get()" in str(caught.value)  # says where to look
    assert memory.backend.count("default", Collection.OBSERVATIONS) == 0
    assert memory.governance.audit.list() == before
    assert memory_core.PolicyDenied is PolicyDenied


def test_a_remembered_observation_is_redacted_and_audited(memory: Memory) -> None:
    memory.governance.policy.set(
        {"redaction": {"custom": [{"name": "order_ref", "pattern": r"ORD-\d{6}"}]}},
    )
    profile = memory.profiles.add([ANN])
    with acting_as("agent:jane", reason="call notes"):
        note = memory.observations.add(
            ANN,
            f"Wants refunds of ORD-123456 paid to IBAN {IBAN}",
            "preference",
            trait_key="refund_account",
            value=IBAN,
        )
    assert note.text == "Wants refunds of [REDACTED:order_ref] paid to IBAN [REDACTED:iban]"
    assert note.value == "[REDACTED:iban]"
    stored = memory.backend.find("default", Collection.OBSERVATIONS)
    assert IBAN not in json.dumps([o.model_dump(mode="json") for o in stored])

    [event] = memory.governance.audit.list(action="remember_observation")
    assert (event.actor, event.reason, event.target) == (
        "agent:jane",
        "call notes",
        f"observation:{note.id}",
    )
    assert event.details == {
        "profile": profile.id,
        "kind": "preference",
        "decision": "add",
        "source": "agent",
    }
    # The same note again merges into the known one, and that is audited too.
    again = memory.observations.add(
        ANN,
        f"wants refunds of ORD-123456 paid to  IBAN {IBAN}",
        "preference",
        trait_key="refund_account",
        value=IBAN,
    )
    assert again.id == note.id
    assert [
        e.details["decision"] for e in memory.governance.audit.list(action="remember_observation")
    ] == [
        "add",
        "duplicate",
    ]
    dumped = json.dumps([e.model_dump(mode="json") for e in memory.governance.audit.list()])
    for content in ("ORD-123456", IBAN, "[REDACTED", "refunds"):
        assert content not in dumped


def test_declaring_retracting_and_deleting_are_audited(memory: Memory) -> None:
    with acting_as("admin:kim"):
        memory.traits.declare("seats", "int", description="Licensed seats")
    [declared] = memory.governance.audit.list(action="declare_trait")
    assert (declared.actor, declared.target, declared.details) == (
        "admin:kim",
        "trait_schema:seats",
        {"type": "int"},
    )
    talk(memory, ANN, "I have two dogs.")
    [dogs] = memory.observations.list(ANN)
    memory.observations.retract(dogs.id, reason="they rehomed one")
    memory.observations.delete(dogs.id)
    assert [(e.action, e.target) for e in memory.governance.audit.list()][-2:] == [
        ("retract_observation", f"observation:{dogs.id}"),
        ("delete_observation", f"observation:{dogs.id}"),
    ]
    assert "rehomed" not in json.dumps(
        [e.model_dump(mode="json") for e in memory.governance.audit.list()]
    )


def test_explain_links_the_audit_events_of_the_observation_and_its_conversation(
    memory: Memory,
) -> None:
    conv = talk(memory, ANN, "Hi, I live in Boston.")
    other = talk(memory, BOB, "I live in Chicago.")  # another customer's trail stays out
    [boston] = memory.observations.list(ANN)
    said = memory.observations.explain(boston.id).messages[0]
    with acting_as("agent:jane"):
        moved = memory.observations.add(
            ANN,
            "Lives in Denver",
            "context",
            trait_key="location",
            value="Denver",
            evidence=[said.id],
        )
    assert moved.decision is Decision.UPDATE and moved.id != boston.id

    why = memory.observations.explain(moved.id)
    trail = [(e.action, e.target) for e in why.audit]
    conversation = f"conversation:{conv}"
    assert trail == [
        ("ingest", conversation),  # started
        ("ingest", conversation),  # the customer's message
        ("ingest", conversation),  # the agent's reply
        ("end_conversation", conversation),
        ("extract", conversation),  # which wrote the Boston version
        ("remember_observation", f"observation:{moved.id}"),  # which superseded it
    ]
    assert why.audit[-1].actor == "agent:jane"
    assert all(other not in e.target for e in why.audit)
    assert [e.ts for e in why.audit] == sorted(e.ts for e in why.audit)

    memory.observations.retract(moved.id)
    retracted = memory.observations.explain(moved.id)
    assert retracted.observation.status is ObservationStatus.DELETED
    assert [e.action for e in retracted.audit][-1] == "retract_observation"
    # The old version's explanation shows the same trail (the history is shared).
    assert [e.id for e in memory.observations.explain(boston.id).audit] == [
        e.id for e in retracted.audit
    ]
