"""Pending merges (confirm, reject) and unmerge by provenance, with audit events,
erasure and tenant isolation."""

from __future__ import annotations

import pytest

from memory_core.backends.base import Collection, SearchMode, Where
from memory_core.errors import ConflictError, NotFoundError
from memory_core.memory import Memory
from memory_core.models import MergeStatus
from tests.identity._scenes import (
    ANN_EMAIL,
    ANN_PHONE,
    HOUSEHOLD,
    JON_EMAIL,
    actions,
    at,
    call,
    comparable,
    two_customers,
    typo_collision,
)


def test_a_typo_matching_another_customer_waits_for_a_person(memory: Memory) -> None:
    ann, jon, pending_id = typo_collision(memory)
    (pending,) = memory.profiles.pending_merges()
    assert (pending.profile_a, pending.profile_b, pending.status) == (
        ann,
        jon,
        MergeStatus.PENDING,
    )
    assert pending.identifiers == (JON_EMAIL,)
    assert memory.profiles.get(JON_EMAIL).id == jon  # Jon's email stays Jon's
    assert memory.conversations.get("cnv-typo").profile_id == ann
    (event,) = memory.governance.audit.list(action="propose_merge")
    assert event.target == f"profile:{ann}"
    assert event.details == {"merge": pending_id, "other": jon, "reason": pending.reason}
    assert JON_EMAIL.split(":")[1] not in str(event.details)  # ids only, no identifiers


def test_re_ingesting_the_colliding_conversation_writes_nothing(memory: Memory) -> None:
    typo_collision(memory)
    before = actions(memory)
    again = call(memory, [ANN_PHONE, JON_EMAIL], at(2026, 2, 1), conversation_id="cnv-typo")
    assert again.messages == [] and actions(memory) == before
    assert len(memory.profiles.pending_merges(status=None)) == 1


def test_a_rejected_pair_is_not_proposed_again(memory: Memory) -> None:
    ann, jon, pending_id = typo_collision(memory)
    decided = memory.profiles.reject_merge(pending_id, reason="typo by the agent")
    assert (decided.status, decided.decision_reason) == (MergeStatus.REJECTED, "typo by the agent")
    assert decided.decided_at is not None
    assert memory.profiles.pending_merges() == []
    call(memory, [ANN_PHONE, JON_EMAIL], at(2026, 2, 8))
    assert memory.profiles.pending_merges() == []
    assert [p.id for p in memory.profiles.pending_merges(status="rejected")] == [pending_id]
    assert memory.profiles.get(ann).id != memory.profiles.get(jon).id
    with pytest.raises(ConflictError, match="rejected already"):
        memory.profiles.confirm_merge(pending_id)
    assert "reject_merge" in actions(memory)


def test_confirming_a_pending_merge_merges_the_two(memory: Memory) -> None:
    ann, jon, pending_id = typo_collision(memory)
    survivor = memory.profiles.confirm_merge(pending_id, reason="same person, checked by phone")
    assert survivor.id == ann  # the older one survives
    assert memory.profiles.get(JON_EMAIL).id == ann
    assert memory.profiles.get(jon).id == ann  # the merged id still resolves
    assert memory.profiles.pending_merges() == []
    (done,) = memory.profiles.pending_merges(status=MergeStatus.CONFIRMED)
    assert done.id == pending_id
    (event,) = memory.governance.audit.list(action="confirm_merge")
    assert event.details == {"merge": pending_id, "merged": jon}
    with pytest.raises(ConflictError, match="confirmed already"):
        memory.profiles.confirm_merge(pending_id)
    with pytest.raises(NotFoundError):
        memory.profiles.reject_merge("pmg_nope")


def test_pending_merges_take_a_valid_status(memory: Memory) -> None:
    with pytest.raises(Exception, match="status"):
        memory.profiles.pending_merges(status="maybe")


# -- unmerge ------------------------------------------------------------------------------


def test_unmerge_restores_both_sides_exactly(memory: Memory) -> None:
    ann, bea = two_customers(memory)
    before = {pid: comparable(memory, pid) for pid in (ann, bea)}
    survivor = memory.profiles.merge(ann, bea, reason="agent linked the chat by mistake")
    assert survivor.id == ann and survivor.display_name == "Bea Lee"
    merged_view = memory.traits.list(ann)
    assert {(t.key, t.value) for t in merged_view} >= {("tier", "platinum"), ("language", "es")}

    restored = memory.profiles.unmerge(bea, reason="two different people")
    assert restored.id == bea and restored.merged_into is None
    after = {pid: comparable(memory, pid) for pid in (ann, bea)}
    assert after == before
    assert memory.profiles.get(ann).display_name is None
    assert memory.profiles.get("chat_id:web-9").id == bea
    # messages are searchable on their own profile again (vectors and keywords)
    hits = memory.backend.search(
        "default",
        Collection.MESSAGES,
        mode=SearchMode.KEYWORD,
        text="plan",
        where=Where(eq={"profile_id": bea}),
    )
    assert [h.record.text for h in hits] == ["I'd like to change my plan."]
    (event,) = memory.governance.audit.list(action="unmerge_profile")
    assert event.target == f"profile:{bea}"
    assert event.details["survivor"] == ann
    assert event.details["conversations"] == 1 and event.details["identifiers"] == 1
    assert event.details["traits"] == 2 and event.details["messages"] == 2


def test_unmerge_of_a_merge_made_by_resolution(memory: Memory) -> None:
    """An automatic silent merge (a new, empty profile) is recorded and undone too."""
    crm = memory.profiles.add([ANN_EMAIL, "crm_id:003A"])
    memory.traits.set(crm.id, "tier", "gold", source="crm")
    before = comparable(memory, crm.id)
    voice = call(memory, [ANN_PHONE], at(2026, 1, 5)).profile
    joined = call(memory, [ANN_PHONE, ANN_EMAIL], at(2026, 1, 6))
    merged_away = next(p for p in (crm.id, voice.id) if p != joined.profile.id)
    assert joined.merged_profile_ids == [merged_away]
    memory.profiles.unmerge(merged_away)
    if merged_away == crm.id:
        assert comparable(memory, crm.id) == before


def test_what_was_added_after_the_merge_stays_with_the_survivor(memory: Memory) -> None:
    ann, bea = two_customers(memory)
    memory.profiles.merge(ann, bea)
    later = call(memory, ["chat_id:web-9"], at(2026, 2, 1), "Any news on the plan change?")
    memory.traits.set(ann, "language", "en", source="crm")  # the survivor's newer value
    memory.profiles.link(ann, "email:ann.home@example.com")
    memory.profiles.unmerge(bea)
    assert memory.conversations.get(later.conversation.id).profile_id == ann
    assert memory.profiles.get("email:ann.home@example.com").id == ann
    assert {t.key: t.value for t in memory.traits.list(ann) if t.source == "crm"} == {
        "tier": "gold",
        "language": "en",
    }
    assert {t.key: t.value for t in memory.traits.list(bea) if t.source == "crm"} == {
        "tier": "platinum",
        "language": "es",
    }


def test_unmerge_refuses_what_it_cannot_undo(memory: Memory) -> None:
    zed = memory.profiles.add(["email:zed@example.com"])  # the oldest: survives merges
    ann, bea = two_customers(memory)
    with pytest.raises(ConflictError, match="not merged"):
        memory.profiles.unmerge(ann)
    memory.profiles.merge(ann, bea)
    assert memory.profiles.merge(zed.id, ann).id == zed.id
    with pytest.raises(ConflictError, match=f"unmerge '{ann}' first"):
        memory.profiles.unmerge(bea)
    memory.profiles.unmerge(ann)  # latest first: then the earlier one
    memory.profiles.unmerge(bea)
    assert len({memory.profiles.get(p).id for p in (ann, bea, zed.id)}) == 3
    with pytest.raises(NotFoundError):
        memory.profiles.unmerge("prf_missing")


def test_unmerge_brings_back_profiles_merged_into_the_split_off_side(memory: Memory) -> None:
    ann, bea = two_customers(memory)
    old_chat = memory.profiles.add(["chat_id:web-1"])
    memory.profiles.merge(bea, old_chat.id)  # bea is older: old_chat merges into her
    memory.profiles.merge(ann, bea)
    assert memory.profiles.get(old_chat.id).id == ann
    memory.profiles.unmerge(bea)
    assert memory.profiles.get(old_chat.id).id == bea
    assert memory.profiles.get("chat_id:web-1").id == bea


def test_a_merge_recorded_before_unmerge_existed_is_refused(memory: Memory) -> None:
    ann, bea = two_customers(memory)
    memory.profiles.merge(ann, bea)
    (record,) = memory.backend.get("default", Collection.MERGES, [bea])
    legacy = record.model_copy(update={"profile": None, "identifiers": (), "traits": ()})
    memory.backend.upsert("default", Collection.MERGES, [legacy])
    with pytest.raises(ConflictError, match="no provenance"):
        memory.profiles.unmerge(bea)


# -- erasure and tenants ------------------------------------------------------------------


def test_erasing_a_customer_erases_merge_provenance_and_pending_merges(memory: Memory) -> None:
    ann, jon, _ = typo_collision(memory)
    bea = memory.profiles.add(["chat_id:web-9"])
    memory.profiles.merge(ann, bea.id)
    export = memory.profiles.export(ann)
    assert [m.id for m in export.merges] == [bea.id]
    assert len(export.pending_merges) == 1
    receipt = memory.profiles.delete(ann)
    assert receipt.deleted["pending_merges"] == 1 and receipt.deleted["merges"] == 1
    for collection in (Collection.MERGES, Collection.PENDING_MERGES):
        assert memory.backend.count("default", collection) == 0
    assert memory.profiles.get(jon).id == jon


def test_identity_rules_and_records_stay_in_their_tenant(memory: Memory) -> None:
    memory.tenants.add("acme")
    acme = memory.tenant("acme")
    memory.governance.policy.set({"identity": {"shared": [HOUSEHOLD], "max_identifiers": 2}})
    # in the default tenant the number is shared; in acme it is a customer's
    first = call(acme, [HOUSEHOLD, "chat_id:a", "chat_id:b"], at(2026, 1, 5)).profile
    assert acme.profiles.get(HOUSEHOLD).id == first.id
    assert len(acme.profiles.identifiers(first.id)) == 3  # no cap of 2 in acme
    call(memory, [HOUSEHOLD], at(2026, 1, 5))
    with pytest.raises(NotFoundError, match="shared"):
        memory.profiles.get(HOUSEHOLD)
    # a pending merge of the default tenant is invisible and unusable in acme
    ann, jon, pending_id = typo_collision(memory.tenant("default"))
    call(acme, [JON_EMAIL], at(2026, 1, 6))
    assert acme.profiles.pending_merges(status=None) == []
    with pytest.raises(NotFoundError):
        acme.profiles.confirm_merge(pending_id)
    with pytest.raises(NotFoundError):
        acme.profiles.unmerge(jon)
    assert acme.governance.policy.get().identity.shared == []
    assert "propose_merge" not in actions(acme)


def test_an_explicit_link_merges_a_pair_left_pending_and_settles_it(memory: Memory) -> None:
    """An agent saying the identifier is this customer's is the confirmation."""
    ann, jon, pending_id = typo_collision(memory)
    survivor = memory.profiles.link(ann, JON_EMAIL)
    assert survivor.id == ann and memory.profiles.get(jon).id == ann
    assert memory.profiles.pending_merges() == []
    (settled,) = memory.profiles.pending_merges(status="confirmed")
    assert settled.id == pending_id and settled.decision_reason.startswith("merged")


def test_profiles_add_resolves_like_an_ingest(memory: Memory) -> None:
    """A connector's contact (profiles.add) naming two customers with history gets the
    first one's profile and a pending merge, not a silent merge nor an error."""
    ann, jon, _ = typo_collision(memory)
    memory.profiles.reject_merge(memory.profiles.pending_merges()[0].id)
    profile = memory.profiles.add(["crm_id:003A", JON_EMAIL, ANN_EMAIL])
    assert profile.id == jon  # the first identifier that matched
    assert memory.profiles.get("crm_id:003A").id == jon
    assert memory.profiles.get(ANN_EMAIL).id == ann
    assert memory.profiles.pending_merges() == []  # this pair was rejected before
