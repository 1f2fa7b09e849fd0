"""The heuristic extractor, rule family by rule family, as a user would check it:
what statement comes out of what a customer says, and what does not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from memory_core.extraction import ExtractionInput, HeuristicExtractor
from memory_core.extraction.dates import find_dates, resolve_dates
from memory_core.models import Channel, Conversation, Message, ObservationKind, Outcome, Role

TS = datetime(2024, 5, 8, 14, 0, tzinfo=UTC)  # a Wednesday
EXTRACTOR = HeuristicExtractor()


def msg(text: str, role: Role = Role.CUSTOMER, i: int = 0, ts: datetime = TS) -> Message:
    return Message(
        id=f"m{i}",
        tenant="t",
        conversation_id="c",
        profile_id="p",
        channel=Channel.CHAT,
        role=role,
        text=text,
        ts=ts + timedelta(minutes=i),
        seq=i,
    )


def run(*turns: tuple[Role, str]) -> ExtractionInput:
    messages = [msg(text, role, i) for i, (role, text) in enumerate(turns)]
    conv = Conversation(id="c", tenant="t", profile_id="p", channel=Channel.CHAT, started_at=TS)
    return ExtractionInput(conversation=conv, messages=messages)


def statements(text: str) -> list[str]:
    return [f.text for f in EXTRACTOR.findings(msg(text))]


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # contact channel
        ("Please text me, don't call.", "Prefers SMS over phone calls"),
        ("I'd rather get a text than a phone call.", "Prefers SMS over phone calls"),
        ("Email is better for me.", "Prefers to be contacted by email"),
        ("You can reach me on WhatsApp.", "Prefers to be contacted on WhatsApp"),
        ("Don't call me, I'm at work all day.", "Does not want phone calls"),
        ("Next time just text me instead of calling.", "Prefers SMS over phone calls"),
        # language
        ("Can we continue in Spanish?", "Prefers to communicate in Spanish"),
        ("Hablo español, por favor.", "Prefers to communicate in Spanish"),
        ("My first language is Vietnamese.", "Prefers to communicate in Vietnamese"),
        ("I don't speak English very well.", "Is not comfortable communicating in English"),
        # contact times
        ("Call me after 5pm please.", "Best reached after 5 pm"),
        ("The best time to reach me is weekday mornings.", "Best reached weekday mornings"),
        # product likes and dislikes
        ("I love the new TV box!", "Likes the new TV box"),
        ("I really hate your new app, it keeps crashing.", "Dislikes the new app"),
        # contact details (a trait suggestion, never an identifier link)
        ("My new email is Ann.Lee@Example.com.", "Gave ann.lee@example.com as their email address"),
        ("You can reach me at (617) 555-0142.", "Gave +16175550142 as their phone number"),
        # location and moves
        ("I live in Boston.", "Lives in Boston"),
        ("I moved to Denver, CO last month.", "Lives in Denver, CO (moved in April 2024)"),
        ("We just moved to Austin.", "Lives in Austin (moved by 8 May 2024)"),
        ("I'm moving to Seattle next month.", "Plans to move to Seattle in June 2024"),
        ("I'm originally from Sweden.", "Is originally from Sweden"),
        # plans and tiers
        ("I'm on the Premium plan.", "Is on the Premium plan"),
        ("I upgraded to Pro yesterday.", "Is on the Pro plan (upgraded on 7 May 2024)"),
        ("I want to upgrade to the Unlimited plan.", "Wants to upgrade to the Unlimited plan"),
        ("I moved to the Basic plan.", "Is on the Basic plan (switched)"),  # not a home move
        ("I'm a Gold member.", "Is a Gold member"),
        # account events and complaints
        (
            "I was charged twice on my March invoice.",
            "Reported a double charge on their March 2024 invoice",
        ),
        ("There's a roaming fee on my bill.", "Reported an unexpected roaming fee on their bill"),
        (
            "I was charged twice for my Premium plan this month.",
            "Reported a double charge for their Premium plan in May 2024",
        ),
        ("My card was declined yesterday.", "Their card was declined on 7 May 2024"),
        ("I'm locked out of my account.", "Could not log in to their account"),
        ("My order still hasn't arrived.", "Reported that their order has not arrived"),
        ("My wifi drops every evening.", "Reported that their wifi drops every evening"),
        (
            "Hello, my wifi is still dropping since the move.",
            "Reported that their wifi is still dropping since the move",
        ),
        ("I cancelled my gym membership last week.", "Cancelled their gym membership in the "
         "week of 29 April 2024"),
        # intents
        ("I want to cancel my subscription because it's too expensive.",
         "Wants to cancel their subscription"),
        ("I'd like a refund for the March invoice.",
         "Asked for a refund for the March 2024 invoice"),
        ("I'm thinking about switching to Verizon.", "Is considering switching to Verizon"),
        # life context
        ("I work as a nurse and do night shifts.", "Works as a nurse"),
        ("I have two kids.", "Has two kids"),
        ("I'm hard of hearing.", "Is hard of hearing"),
        # dated events
        ("I called yesterday and nobody answered.", "Called on 7 May 2024 and nobody answered"),
        ("I'll be in the store next Tuesday.", "Will be in the store on 14 May 2024"),
    ],
)  # fmt: skip
def test_each_rule_states_a_normalised_self_contained_fact(said: str, expected: str) -> None:
    assert statements(said) == [expected]


@pytest.mark.parametrize(
    "said",
    [
        "Can you email me the invoice?",  # a request for a document, not a channel preference
        "Do I live in Boston?",
        "If I moved to Denver would the price change?",
        "I don't live in Boston anymore.",  # negation: nothing rather than a wrong fact
        "My wife's email is jane@example.com.",  # someone else's details
        "I like that you called back.",
        "I'd like to know my balance.",
        "Is my order shipped?",
        "Thanks, that's all!",
        "My order number is 5551234567.",  # digits, but not given as a phone number
    ],
)
def test_what_it_leaves_alone(said: str) -> None:
    assert statements(said) == []


def test_trait_updates_and_slots() -> None:
    out = EXTRACTOR.extract(
        run((Role.CUSTOMER, "Please text me, don't call. I moved to Denver last month."))
    )
    by_key = {t.key: t.value for t in out.traits}
    assert by_key == {"preferred_channel": "sms", "location": "Denver"}
    slots = {(o.trait_key, o.value) for o in out.observations}
    assert slots == {("preferred_channel", "sms"), ("location", "Denver")}
    assert all(o.evidence == ("m0",) for o in out.observations)


def test_an_agents_utterance_is_not_taken_as_a_customer_fact() -> None:
    out = EXTRACTOR.extract(
        run(
            (Role.CUSTOMER, "Why is my bill higher this month?"),
            (Role.HUMAN_AGENT, "I see you're on the Premium plan and you live in Boston."),
            (Role.AI_AGENT, "I moved you to the Unlimited plan. Please text me if needed."),
            (Role.SYSTEM, "Customer prefers email."),
        )
    )
    assert out.observations == []
    assert out.traits == []
    assert out.summary is not None  # agents still inform the summary and its outcome


def test_restated_in_one_conversation_is_one_proposal_with_both_messages() -> None:
    out = EXTRACTOR.extract(
        run(
            (Role.CUSTOMER, "Please text me, don't call."),
            (Role.HUMAN_AGENT, "Noted."),
            (Role.CUSTOMER, "Really, I'd rather get a text than a phone call."),
        )
    )
    [proposal] = out.observations
    assert proposal.text == "Prefers SMS over phone calls"
    assert proposal.evidence == ("m0", "m2")


def test_extractive_summary_takes_the_request_the_resolution_and_the_outcome() -> None:
    out = EXTRACTOR.extract(
        run(
            (Role.CUSTOMER, "Hi!"),
            (Role.CUSTOMER, "I was charged twice for my March invoice, can you fix it?"),
            (Role.HUMAN_AGENT, "Let me check that for you."),
            (Role.HUMAN_AGENT, "I've refunded the duplicate charge of $42."),
            (Role.CUSTOMER, "Great, thanks!"),
            (Role.HUMAN_AGENT, "Anything else I can help with?"),
        )
    )
    summary = out.summary
    assert summary is not None
    assert summary.text == (
        "Customer: I was charged twice for my March invoice, can you fix it? | "
        "Agent: I've refunded the duplicate charge of $42. | Outcome: resolved."
    )
    assert summary.evidence == ("m1", "m3")
    assert summary.outcome is Outcome.RESOLVED


@pytest.mark.parametrize(
    ("turns", "outcome"),
    [
        ([(Role.HUMAN_AGENT, "I'm escalating this to our billing team, ticket number 4411.")],
         Outcome.ESCALATED),
        ([(Role.HUMAN_AGENT, "I've reset your router."),
          (Role.CUSTOMER, "It still doesn't work, this is ridiculous.")], Outcome.UNRESOLVED),
        ([(Role.HUMAN_AGENT, "Your new card has been sent.")], Outcome.RESOLVED),
        ([(Role.HUMAN_AGENT, "I'll refund the duplicate right away.")], Outcome.RESOLVED),
        ([(Role.HUMAN_AGENT, "Let me look into it.")], Outcome.UNKNOWN),
    ],
)  # fmt: skip
def test_outcome_from_cue_words(turns: list[tuple[Role, str]], outcome: Outcome) -> None:
    out = EXTRACTOR.extract(run((Role.CUSTOMER, "My internet is down again."), *turns))
    assert out.summary is not None and out.summary.outcome is outcome


def test_a_one_message_conversation_has_no_summary() -> None:
    assert (
        EXTRACTOR.extract(run((Role.CUSTOMER, "Please send invoices to my work email."))).summary
        is None
    )


def test_kinds() -> None:
    kinds = {
        f.text: f.kind
        for text in (
            "Please text me.",
            "My order still hasn't arrived.",
            "I want to cancel my plan.",
        )
        for f in EXTRACTOR.findings(msg(text))
    }
    assert kinds == {
        "Prefers to be contacted by SMS": ObservationKind.PREFERENCE,
        "Reported that their order has not arrived": ObservationKind.COMPLAINT,
        "Wants to cancel their plan": ObservationKind.INTENT,
    }


# -- relative dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("I went there yesterday", "I went there on 7 May 2024"),
        ("it broke the day before yesterday", "it broke on 6 May 2024"),
        ("I called on Monday", "I called on 6 May 2024"),
        ("I will call on Monday", "I will call on 13 May 2024"),
        ("last Friday the app crashed", "on 3 May 2024 the app crashed"),
        ("see you next Tuesday", "see you on 14 May 2024"),
        ("I moved last month", "I moved in April 2024"),
        ("I'm moving next month", "I'm moving in June 2024"),
        ("I'm moving on May 1st", "I'm moving on 1 May 2025"),  # future: the next May 1st
        ("I moved on May 1st", "I moved on 1 May 2024"),
        ("the 3rd of March, 2023", "on 3 March 2023"),
        ("two weeks ago", "in the week of 22 April 2024"),
        ("about five years ago", "around 2019"),
        ("in 3 days", "on 11 May 2024"),
        ("the March invoice", "the March 2024 invoice"),
        ("since 2019", "since 2019"),
        ("this weekend", "on the weekend of 11 May 2024"),
        ("May I ask something?", "May I ask something?"),  # "May" the verb
        ("we may go", "we may go"),
        ("call me at 5/1", "call me at 5/1"),  # ambiguous numeric dates are left alone
    ],
)
def test_relative_dates_resolve_against_the_message_time(text: str, resolved: str) -> None:
    assert resolve_dates(text, TS)[0] == resolved


def test_date_mentions_carry_their_first_day_and_precision() -> None:
    [mention] = find_dates("I moved last month", TS)
    assert (mention.start, mention.precision) == (date(2024, 4, 1), "month")
