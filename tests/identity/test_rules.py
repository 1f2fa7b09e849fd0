"""Identity rules on realistic collisions: WhatsApp and phone, a household phone,
a switchboard, noreply addresses, the identifier cap, a recycled number, and the
policy that holds the rules (per tenant, validated)."""

from __future__ import annotations

import pytest

from memory_core.backends.base import Collection
from memory_core.config import load_settings
from memory_core.errors import (
    ConfigError,
    IdentifierLimitError,
    NotFoundError,
    PolicyDenied,
    ValidationError,
)
from memory_core.memory import Memory
from memory_core.models import MergeStatus
from tests.identity._scenes import ANN_PHONE, HOUSEHOLD, actions, at, call

SWITCHBOARD = "phone:+18005550100"


def identity(memory: Memory, **rules: object) -> None:
    memory.governance.policy.set({"identity": rules})


# -- whatsapp and phone ----------------------------------------------------------------


def test_a_whatsapp_number_finds_the_profile_of_that_phone_number(memory: Memory) -> None:
    voice = call(memory, [ANN_PHONE], at(2026, 1, 5))
    chat = call(memory, ["whatsapp:+1 617 555 0142"], at(2026, 1, 9), channel="whatsapp")
    assert chat.profile.id == voice.profile.id
    assert memory.profiles.get("whatsapp:+16175550142").id == voice.profile.id
    # the WhatsApp address is linked too: the customer used it
    assert {str(i) for i in memory.profiles.identifiers(voice.profile.id)} == {
        ANN_PHONE,
        "whatsapp:+16175550142",
    }
    assert not memory.profiles.pending_merges()


def test_whatsapp_and_phone_stay_apart_when_the_rule_is_off(memory: Memory) -> None:
    identity(memory, whatsapp_is_phone=False)
    voice = call(memory, [ANN_PHONE], at(2026, 1, 5))
    chat = call(memory, ["whatsapp:+16175550142"], at(2026, 1, 9), channel="whatsapp")
    assert chat.profile.id != voice.profile.id
    assert memory.profiles.get("whatsapp:+16175550142").id == chat.profile.id
    assert memory.profiles.get(ANN_PHONE).id == voice.profile.id


# -- a household phone ------------------------------------------------------------------


def test_a_household_phone_does_not_silently_merge_two_people(memory: Memory) -> None:
    """Ann calls from the home phone; Bob, who writes from his own email, calls from
    the same home phone later: two profiles with history are never merged silently."""
    ann = call(memory, [HOUSEHOLD, "email:ann@example.com"], at(2026, 2, 1)).profile
    bob = call(memory, ["email:bob@example.com"], at(2026, 2, 3), channel="email").profile
    again = call(memory, [HOUSEHOLD, "email:bob@example.com"], at(2026, 2, 10))
    assert again.merged_profile_ids == []
    assert again.profile.id == ann.id  # the first identifier given that matched
    (pending,) = memory.profiles.pending_merges()
    assert {pending.profile_a, pending.profile_b} == {ann.id, bob.id}
    assert pending.identifiers == ("email:bob@example.com",)
    assert memory.profiles.get("email:bob@example.com").id == bob.id
    assert memory.profiles.get(HOUSEHOLD).id == ann.id


def test_a_household_phone_declared_shared_resolves_by_the_other_identifiers(
    memory: Memory,
) -> None:
    identity(memory, shared=[HOUSEHOLD])
    ann = call(memory, [HOUSEHOLD, "email:ann@example.com"], at(2026, 2, 1)).profile
    bob = call(memory, [HOUSEHOLD, "email:bob@example.com"], at(2026, 2, 10)).profile
    assert ann.id != bob.id
    assert not memory.profiles.pending_merges()
    for person in (ann, bob):  # the shared number is linked to no one
        assert HOUSEHOLD not in {str(i) for i in memory.profiles.identifiers(person.id)}
    with pytest.raises(NotFoundError, match="shared"):
        memory.profiles.get(HOUSEHOLD)
    with pytest.raises(NotFoundError, match="shared"):  # nor through WhatsApp
        memory.profiles.get("whatsapp:+16175550199")
    assert "skip_identifiers" in actions(memory)


# -- a switchboard and noreply addresses -----------------------------------------------------


def test_callers_from_a_company_switchboard_are_not_one_person(memory: Memory) -> None:
    identity(memory, shared_patterns=["phone:+1800*"])
    first = call(memory, [SWITCHBOARD], at(2026, 3, 1)).profile
    second = call(memory, [SWITCHBOARD], at(2026, 3, 2)).profile
    carol = call(memory, [SWITCHBOARD, "email:carol@corp.example"], at(2026, 3, 3)).profile
    assert len({first.id, second.id, carol.id}) == 3
    assert memory.profiles.get("email:carol@corp.example").id == carol.id
    with pytest.raises(PolicyDenied, match="shared"):
        memory.profiles.link(carol.id, SWITCHBOARD)
    assert memory.backend.count("default", Collection.IDENTIFIERS) == 1


def test_a_re_ingested_switchboard_conversation_writes_nothing(memory: Memory) -> None:
    identity(memory, shared=[SWITCHBOARD])
    call(memory, [SWITCHBOARD], at(2026, 3, 1), conversation_id="cnv-sw-1")
    before = actions(memory)
    again = call(memory, [SWITCHBOARD], at(2026, 3, 1), conversation_id="cnv-sw-1")
    assert again.messages == [] and actions(memory) == before


@pytest.mark.parametrize(
    "address",
    [
        "noreply@shop.example",
        "no-reply@shop.example",
        "No_Reply+order-1234@shop.example",
        "donotreply@bank.example",
        "do-not-reply@bank.example",
        "mailer-daemon@mail.example",
    ],
)
def test_noreply_addresses_never_identify_anyone(memory: Memory, address: str) -> None:
    dana = call(memory, [f"email:{address}", "email:dana@example.com"], at(2026, 4, 1)).profile
    eve = call(memory, [f"email:{address}", "email:eve@example.com"], at(2026, 4, 2)).profile
    assert dana.id != eve.id and not memory.profiles.pending_merges()
    with pytest.raises(NotFoundError):
        memory.profiles.get(f"email:{address}")


def test_a_person_whose_address_merely_starts_like_noreply_is_a_person(memory: Memory) -> None:
    profile = call(memory, ["email:noreplyfan@example.com"], at(2026, 4, 1)).profile
    assert memory.profiles.get("email:noreplyfan@example.com").id == profile.id


def test_the_builtin_noreply_patterns_can_be_switched_off(memory: Memory) -> None:
    identity(memory, builtin_shared=False)
    profile = call(memory, ["email:noreply@shop.example"], at(2026, 4, 1)).profile
    assert memory.profiles.get("email:noreply@shop.example").id == profile.id


# -- the identifier cap -------------------------------------------------------------------


def test_the_identifier_cap_refuses_explicit_links_beyond_it(memory: Memory) -> None:
    identity(memory, max_identifiers=3)
    profile = memory.profiles.add(["email:a@example.com", "chat_id:web-1"])
    linked = memory.profiles.link(profile.id, "crm_id:003A")
    assert linked.id == profile.id
    with pytest.raises(IdentifierLimitError, match="cap of 3"):
        memory.profiles.link(profile.id, "chat_id:web-2")
    with pytest.raises(IdentifierLimitError):
        memory.profiles.add(["email:b@example.com", *(f"chat_id:s{i}" for i in range(3))])
    assert memory.profiles.find("email:b@example.com") is None  # nothing was written
    assert len(memory.profiles.identifiers(profile.id)) == 3


def test_ingest_over_the_cap_keeps_the_conversation_and_skips_the_extra_identifiers(
    memory: Memory,
) -> None:
    identity(memory, max_identifiers=2)
    result = call(memory, ["chat_id:web-1", "chat_id:web-2", "chat_id:web-3"], at(2026, 5, 1))
    assert len(result.messages) == 2
    assert [str(i) for i in memory.profiles.identifiers(result.profile.id)] == [
        "chat_id:web-1",
        "chat_id:web-2",
    ]
    (skip,) = memory.governance.audit.list(action="skip_identifiers")
    assert skip.details == {"shared": 0, "over_limit": 1}


def test_an_explicit_merge_over_the_cap_is_refused(memory: Memory) -> None:
    identity(memory, max_identifiers=3)
    a = memory.profiles.add(["email:a@example.com", "chat_id:a1"])
    b = memory.profiles.add(["email:b@example.com", "chat_id:b1"])
    with pytest.raises(IdentifierLimitError):
        memory.profiles.merge(a.id, b.id)
    assert memory.profiles.get(b.id).id == b.id


def test_an_automatic_merge_over_the_cap_waits_for_a_person(memory: Memory) -> None:
    identity(memory, max_identifiers=3, confirm_merges=False)
    a = memory.profiles.add(["email:a@example.com", "chat_id:a1"])
    b = memory.profiles.add(["email:b@example.com", "chat_id:b1"])
    result = call(memory, ["email:a@example.com", "email:b@example.com"], at(2026, 5, 2))
    assert result.profile.id == a.id and result.merged_profile_ids == []
    (pending,) = memory.profiles.pending_merges()
    assert (pending.profile_a, pending.profile_b) == (a.id, b.id)
    assert "more identifiers than the cap" in pending.reason


# -- profiles with history -------------------------------------------------------------


def test_a_new_empty_profile_still_merges_silently(memory: Memory) -> None:
    """A profile without history (created from a CRM contact, say) merges as before."""
    crm = memory.profiles.add(["crm_id:003A", "email:ann@example.com"])
    result = call(memory, [ANN_PHONE], at(2026, 6, 1))
    joined = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2026, 6, 2))
    assert set(joined.merged_profile_ids) | {joined.profile.id} == {crm.id, result.profile.id}
    assert not memory.profiles.pending_merges()
    assert "merge_profiles" not in actions(memory)  # resolution merges audit as ingest


def test_merges_of_profiles_with_history_can_be_silent_by_policy(memory: Memory) -> None:
    identity(memory, confirm_merges=False)
    ann = call(memory, [ANN_PHONE], at(2026, 6, 1)).profile
    call(memory, ["email:ann@example.com"], at(2026, 6, 2), channel="email")
    joined = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2026, 6, 3))
    assert joined.profile.id == ann.id and len(joined.merged_profile_ids) == 1
    assert not memory.profiles.pending_merges()


# -- a recycled phone number ----------------------------------------------------------------


def test_a_recycled_number_goes_to_the_new_person(memory: Memory) -> None:
    """Ann's number, silent for 17 months, calls again with Bob's email: the carrier
    gave it to Bob. Bob gets his own profile and the number; a person may still
    say they are one (the pending merge)."""
    ann = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2024, 1, 10)).profile
    bob = call(memory, [ANN_PHONE, "email:bob@example.com"], at(2025, 6, 20))
    assert bob.profile.id != ann.id and bob.merged_profile_ids == []
    assert memory.profiles.get(ANN_PHONE).id == bob.profile.id
    assert memory.profiles.get("email:ann@example.com").id == ann.id
    assert [str(i) for i in memory.profiles.identifiers(ann.id)] == ["email:ann@example.com"]
    (pending,) = memory.profiles.pending_merges()
    assert (pending.profile_a, pending.profile_b) == (bob.profile.id, ann.id)
    assert pending.reason.startswith("recycled number")
    assert {"move_identifier", "propose_merge"} <= set(actions(memory))


def test_a_recycled_number_moves_in_every_kind_it_is_linked_as(memory: Memory) -> None:
    ann = call(
        memory, [ANN_PHONE, "whatsapp:+16175550142", "email:ann@example.com"], at(2024, 1, 10)
    ).profile
    bob = call(memory, ["whatsapp:+16175550142", "email:bob@example.com"], at(2025, 6, 20))
    assert memory.profiles.get(ANN_PHONE).id == bob.profile.id
    assert memory.profiles.get("whatsapp:+16175550142").id == bob.profile.id
    assert [str(i) for i in memory.profiles.identifiers(ann.id)] == ["email:ann@example.com"]


@pytest.mark.parametrize(
    ("customer", "when"),
    [
        ([ANN_PHONE, "email:ann.work@example.com"], at(2024, 3, 1)),  # a second email, soon
        ([ANN_PHONE], at(2025, 6, 20)),  # back after a long time, nothing contradicts
        ([ANN_PHONE, "chat_id:web-77"], at(2025, 6, 20)),  # a new web session id
        ([ANN_PHONE, "email:ann@example.com", "email:new@example.com"], at(2025, 6, 20)),
    ],
)
def test_a_number_is_not_taken_as_recycled_without_both_gap_and_contradiction(
    memory: Memory, customer: list[str], when: object
) -> None:
    ann = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2024, 1, 10)).profile
    result = call(memory, customer, when)  # type: ignore[arg-type]
    assert result.profile.id == ann.id
    assert not memory.profiles.pending_merges()


def test_recycled_number_detection_can_be_off(memory: Memory) -> None:
    identity(memory, recycle_after=None)
    ann = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2024, 1, 10)).profile
    assert call(memory, [ANN_PHONE, "email:bob@example.com"], at(2025, 6, 20)).profile.id == ann.id


def test_the_recycle_gap_is_configurable(memory: Memory) -> None:
    identity(memory, recycle_after="90d")
    ann = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2026, 1, 10)).profile
    bob = call(memory, [ANN_PHONE, "email:bob@example.com"], at(2026, 5, 1)).profile
    assert bob.id != ann.id


def test_rejecting_a_recycled_number_proposal_keeps_them_apart(memory: Memory) -> None:
    ann = call(memory, [ANN_PHONE, "email:ann@example.com"], at(2024, 1, 10)).profile
    bob = call(memory, [ANN_PHONE, "email:bob@example.com"], at(2025, 6, 20)).profile
    (pending,) = memory.profiles.pending_merges()
    decided = memory.profiles.reject_merge(pending.id, reason="different people, checked")
    assert decided.status is MergeStatus.REJECTED
    assert memory.profiles.get(ANN_PHONE).id == bob.id != ann.id


# -- the policy that holds the rules --------------------------------------------------------


def test_the_rules_come_from_the_settings_for_every_tenant(tmp_path: object) -> None:
    from pathlib import Path

    from memory_core.backends.sqlite import SQLiteBackend
    from memory_core.embedding import HashEmbedder

    base = Path(str(tmp_path))
    settings = load_settings(
        data_dir=base, policies={"*": {"identity": {"shared": ["phone:+1 800 555 0100"]}}}
    )
    memory = Memory(SQLiteBackend(base / "m.db"), HashEmbedder(), settings=settings)
    try:
        assert memory.governance.policy.get().identity.shared == [SWITCHBOARD]
        first = call(memory, [SWITCHBOARD], at(2026, 3, 1)).profile
        assert call(memory, [SWITCHBOARD], at(2026, 3, 2)).profile.id != first.id
    finally:
        memory.close()


@pytest.mark.parametrize(
    "rules",
    [
        {"shared": ["phone:617 555 0100"]},  # not international: ambiguous across regions
        {"shared": ["fax:123"]},
        {"shared_patterns": ["*@example.com"]},  # no kind
        {"max_identifiers": 0},
        {"recycle_after": "-3d"},
        {"whatsapp_is_phone": "sometimes"},
        {"unknown_rule": True},
    ],
)
def test_invalid_identity_rules_are_refused(memory: Memory, rules: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        memory.governance.policy.set({"identity": rules})
    with pytest.raises(ConfigError):
        load_settings(policies={"acme": {"identity": rules}})
