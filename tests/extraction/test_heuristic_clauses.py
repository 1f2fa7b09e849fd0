"""The offline extractor reads clauses, not whole sentences: a statement followed by
a question in the same sentence is kept; general first-person preferences, wider
plan and contact phrasings, a transcript's "Name:" prefix, and dated first-person
events told with the date first or by "we"."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memory_core.extraction import HeuristicExtractor
from memory_core.extraction.heuristic import split_clauses
from memory_core.models import Channel, Message, ObservationKind, Role

TS = datetime(2024, 5, 8, 14, 0, tzinfo=UTC)  # a Wednesday
EXTRACTOR = HeuristicExtractor()


def msg(text: str, author: str | None = None) -> Message:
    return Message(
        id="m1",
        tenant="t",
        conversation_id="c",
        profile_id="p",
        channel=Channel.CHAT,
        role=Role.CUSTOMER,
        text=text,
        author=author,
        ts=TS,
        seq=0,
    )


def statements(text: str, author: str | None = None) -> list[str]:
    return [f.text for f in EXTRACTOR.findings(msg(text, author))]


def test_a_statement_before_a_question_is_kept() -> None:
    plain = statements("I upgraded to the Gold plan yesterday.")
    assert plain == ["Is on the Gold plan (upgraded on 7 May 2024)"]
    asked = statements("I upgraded to the Gold plan yesterday, does the discount work now?")
    assert asked == plain
    assert statements("I moved to Denver last month - will my bill change?") == [
        "Lives in Denver (moved in April 2024)"
    ]


def test_split_clauses_separates_a_trailing_question() -> None:
    assert split_clauses("I upgraded to Gold yesterday, does the discount work now?") == [
        "I upgraded to Gold yesterday.",
        "does the discount work now?",
    ]
    assert split_clauses("Can I upgrade to Gold, or is it full?") == [
        "Can I upgrade to Gold, or is it full?"
    ]


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("I prefer morning deliveries, before 10am", "Prefers morning deliveries (before 10 am)"),
        ("I'd prefer paper invoices.", "Prefers paper invoices"),
        ("I really prefer to pay by card.", "Prefers to pay by card"),
        ("I would rather pick up my order in store.", "Would rather pick up their order in store"),
        ("I don't want paper invoices anymore.", "Does not want paper invoices"),
        ("I no longer want the newsletter.", "Does not want the newsletter"),
        ("I signed up for the Premium plan last week.", "Is on the Premium plan"),
        ("I just joined the Family plan.", "Is on the Family plan"),
        ("My number's 617-555-0142.", "Gave +16175550142 as their phone number"),
        ("Please contact me at 617 555 0142.", "Gave +16175550142 as their phone number"),
        ("Yesterday I went to a support group.", "Went to a support group on 7 May 2024"),
        ("We went camping last Saturday.", "Went camping on 4 May 2024"),
    ],
)
def test_wider_first_person_patterns(said: str, expected: str) -> None:
    assert statements(said) == [expected]


@pytest.mark.parametrize(
    "said",
    [
        "Do you prefer mornings?",  # a question
        "I'd prefer it if you called first.",  # a pronoun object: nothing self-contained
        "I don't want to bother you.",  # a courtesy, not a preference
        "If I prefer paper invoices, can I switch?",  # hypothetical
        "They went camping last Saturday.",  # someone else
    ],
)
def test_what_the_wider_patterns_leave_alone(said: str) -> None:
    assert statements(said) == []


def test_a_preference_is_a_slotless_preference() -> None:
    [finding] = EXTRACTOR.findings(msg("I prefer morning deliveries, before 10am"))
    assert finding.kind is ObservationKind.PREFERENCE and finding.trait_key is None


def test_a_transcript_speaker_prefix_is_not_part_of_the_statement() -> None:
    said = "Priya: I went to a pottery class yesterday and it was so relaxing."
    assert statements(said, author="Priya") == [
        "Went to a pottery class on 7 May 2024 and it was so relaxing"
    ]
    assert statements("Priya: I live in Boston.", author="Priya") == ["Lives in Boston"]
