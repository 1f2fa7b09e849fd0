"""Reconciliation that notices contradictions, with no model: a new statement that
contradicts a known one (negation, an opposite verb, another value of the same
thing) supersedes it with history; a near-identical embedding never merges two
statements whose content words differ or whose polarity differs.

The labelled pairs in ``data/contradiction_pairs.jsonl`` were written before the
rules, by hand (customer-service wording); ``data/contradiction_pairs_heldout.jsonl``
after them, and never used to change them. The thresholds below are what the rules
reach on each, so a change that loses ground fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_core.embedding import HashEmbedder
from memory_core.extraction import ProposedObservation, RuleReconciler
from memory_core.extraction.contradiction import relation
from memory_core.extraction.pairs import evaluate_pairs, load_pairs
from memory_core.extraction.reconcile import Candidate
from memory_core.memory import Memory
from memory_core.models import Decision, Observation, ObservationKind, ObservationStatus

PAIRS = Path(__file__).parent / "data" / "contradiction_pairs.jsonl"
CUSTOMER = "phone:+16175550142"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

ISSUE_CASES = [
    ("Prefers morning calls", "Prefers evening calls"),
    ("Likes the app", "Dislikes the app"),
    ("Wants paper invoices", "Doesn't want paper invoices"),
    ("Has an iPhone", "Switched to Android"),
]


def known(text: str, *, trait_key: str | None = None, value: str | None = None) -> Observation:
    return Observation(
        id=f"obs_{abs(hash(text))}",
        tenant="default",
        profile_id="prof_1",
        kind=ObservationKind.PREFERENCE,
        text=text,
        trait_key=trait_key,
        value=value,
        valid_from=T0,
        created_at=T0,
        updated_at=T0,
        extractor="test",
    )


def proposal(text: str) -> ProposedObservation:
    return ProposedObservation(kind=ObservationKind.PREFERENCE, text=text, evidence=("msg_1",))


@pytest.mark.parametrize(("old", "new"), ISSUE_CASES)
def test_the_issue_cases_are_updates_even_when_the_embeddings_are_close(old: str, new: str) -> None:
    target = known(old)
    verdict, _ = RuleReconciler().decide(proposal(new), [Candidate(target, 0.95)])
    assert verdict.decision is Decision.UPDATE, verdict
    assert verdict.target is target
    assert verdict.reason.startswith("contradicts")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Prefers morning calls", "Prefers evening calls"),  # a content word differs
        ("Wants paper invoices", "Does not want paper invoices"),  # one side negated
        ("Is happy with the delivery service", "Is unhappy with the delivery service"),
        ("Uses the app every day", "Uses the app every week"),  # not a known value class
    ],
)
def test_a_similarity_based_duplicate_never_wins_over_different_content(old: str, new: str) -> None:
    verdict, _ = RuleReconciler().decide(proposal(new), [Candidate(known(old), 0.99)])
    assert verdict.decision is not Decision.DUPLICATE


def test_the_same_statement_in_light_rewording_is_still_a_duplicate() -> None:
    target = known("Prefers SMS over phone calls")
    for text in ("prefers SMS over phone calls.", "Really prefers texts over phone calls"):
        verdict, _ = RuleReconciler().decide(proposal(text), [Candidate(target, 0.93)])
        assert verdict.decision is Decision.DUPLICATE, (text, verdict)


def test_compatible_statements_are_both_kept() -> None:
    for old, new in [
        ("Likes the app", "Likes the website"),
        ("Has an iPhone", "Has an iPad"),
        ("Prefers SMS for appointment reminders", "Prefers email for receipts"),
        ("Likes the new design", "Does not like the checkout process"),
    ]:
        verdict, _ = RuleReconciler().decide(proposal(new), [Candidate(known(old), 0.8)])
        assert verdict.decision is Decision.ADD, (old, new, verdict)


def test_a_slotted_candidate_is_left_to_the_slot_rules() -> None:
    plan = known("Is on the Gold plan", trait_key="plan", value="Gold")
    verdict, _ = RuleReconciler().decide(
        proposal("Is not on the Gold plan"), [Candidate(plan, 0.9)]
    )
    assert verdict.decision is Decision.ADD


def test_relation_names_why() -> None:
    assert relation("Wants paper invoices", "Doesn't want paper invoices").kind == "contradiction"
    assert "negat" in relation("Wants paper invoices", "Doesn't want paper invoices").why
    assert relation("Has a dog", "Has a cat").kind == "compatible"
    dated = relation(
        "Will visit the store on 14 May 2024", "Will not visit the store on 20 May 2024"
    )
    assert dated.kind == "compatible"  # two dated plans, not one changed
    assert relation("Will visit the store on 14 May", "Won't visit the store on 14 May").kind == (
        "contradiction"
    )
    assert relation("Lives in Denver", "lives in Denver.").kind == "same"


@pytest.mark.parametrize(("old", "new"), ISSUE_CASES)
def test_a_contradicting_agent_note_supersedes_the_old_one_with_history(
    memory: Memory, old: str, new: str
) -> None:
    memory.profiles.add([CUSTOMER])
    first = memory.observations.add(CUSTOMER, old, "preference")
    second = memory.observations.add(CUSTOMER, new, "preference")
    assert second.id != first.id
    assert second.decision is Decision.UPDATE
    assert [o.text for o in memory.observations.list(CUSTOMER)] == [new]
    before = memory.observations.get(first.id)
    assert before.status is ObservationStatus.SUPERSEDED
    assert before.valid_to is not None and before.superseded_by == second.id
    assert [o.text for o in memory.observations.history(second.id)] == [old, new]
    why = memory.observations.explain(second.id).observation.revisions[-1].note
    assert why.startswith("recorded by agent; contradicts")


def test_the_pairs_suite_meets_its_thresholds() -> None:
    pairs = load_pairs(PAIRS)
    assert len(pairs) >= 40
    assert {p.label for p in pairs} == {"contradiction", "paraphrase", "compatible"}
    result = evaluate_pairs(pairs, RuleReconciler(), HashEmbedder())
    assert result.update_precision >= 0.95, result.errors
    assert result.update_recall >= 0.75, result.errors
    # the harm the issue names: a contradiction merged away as a duplicate
    assert result.confusion[("contradiction", Decision.DUPLICATE)] == 0
    assert result.confusion[("compatible", Decision.DUPLICATE)] == 0


def test_the_held_out_pairs_meet_their_measured_floor() -> None:
    """Pairs written after the rules and never used to change them: the figures the
    docs report as the honest estimate (precision 0.80, recall 0.50); a change that
    loses ground here fails."""
    pairs = load_pairs(PAIRS.with_name("contradiction_pairs_heldout.jsonl"))
    assert len(pairs) >= 30
    result = evaluate_pairs(pairs, RuleReconciler(), HashEmbedder())
    assert result.update_precision >= 0.8, result.errors
    assert result.update_recall >= 0.5, result.errors
    assert result.confusion[("contradiction", Decision.DUPLICATE)] == 0


def test_time_moves_forward_for_a_contradiction_said_before_the_known_one(memory: Memory) -> None:
    """Back-filled history: the older statement goes into history, the newer stays."""
    memory.profiles.add([CUSTOMER])
    conv = memory.conversations.add("chat", [CUSTOMER], started_at=T0)
    early = memory.conversations.add_message(conv.id, "customer", "Hello", ts=T0)
    late = memory.conversations.add_message(
        conv.id, "customer", "Hi again", ts=T0 + timedelta(days=5)
    )
    newer = memory.observations.add(
        CUSTOMER, "Doesn't want paper invoices", "preference", evidence=[late.id]
    )
    older = memory.observations.add(
        CUSTOMER, "Wants paper invoices", "preference", evidence=[early.id]
    )
    assert older.decision is Decision.UPDATE
    assert [o.text for o in memory.observations.list(CUSTOMER)] == [newer.text]
    assert older.status is ObservationStatus.SUPERSEDED and older.superseded_by == newer.id


def test_pairs_file_is_well_formed() -> None:
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) == {"old", "new", "label"}
