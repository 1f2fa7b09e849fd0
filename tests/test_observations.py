"""Observations, summaries and traits as a user drives them, on a real SQLite store
with the default (heuristic) extractor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_core import AsyncMemory
from memory_core.backends.base import Collection, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import NotFoundError, ValidationError
from memory_core.memory import Memory
from memory_core.models import (
    ConversationIn,
    Decision,
    ExtractionStatus,
    MessageIn,
    ObservationKind,
    ObservationStatus,
    Outcome,
    Role,
)
from memory_core.recall import ItemType, RecallOptions

T0 = datetime(2024, 1, 10, 15, 0, tzinfo=UTC)
ANN = "phone:+16175550142"
BOB = "phone:+16175550199"


def talk(
    memory: Memory,
    customer: str,
    turns: list[tuple[str, str]],
    *,
    at: datetime = T0,
    channel: str = "chat",
    tenant: str = "default",
    end: bool = True,
) -> str:
    """A live conversation: opened, messages added, ended (extraction runs on end)."""
    memory = memory.tenant(tenant)
    conv = memory.conversations.add(channel, [customer], started_at=at)
    for i, (role, text) in enumerate(turns):
        memory.conversations.add_message(conv.id, role, text, ts=at + timedelta(minutes=i))
    if end:
        memory.conversations.end(conv.id, ended_at=at + timedelta(minutes=30))
    return conv.id


def texts(memory: Memory, ref: str, **kwargs: object) -> list[str]:
    return [o.text for o in memory.observations.list(ref, **kwargs)]  # type: ignore[arg-type]


# -- the scenarios of the issue ----------------------------------------------------------


def test_moved_from_boston_to_denver_recall_returns_denver_boston_only_in_history(
    memory: Memory,
) -> None:
    talk(memory, ANN, [("customer", "Hi, I live in Boston."), ("human_agent", "Thanks!")])
    talk(
        memory,
        ANN,
        [("customer", "I moved to Denver last month."), ("human_agent", "Updated, thanks.")],
        at=T0 + timedelta(days=120),
    )
    result = memory.recall(ANN, "where does the customer live?")
    observed = [i.text for i in result.items if i.type is ItemType.OBSERVATION]
    assert observed == ["Lives in Denver (moved in April 2024)"]
    assert "location: Denver" in [i.text for i in result.items if i.type is ItemType.TRAIT]
    assert "Boston" not in " ".join(observed)

    [denver] = memory.observations.list(ANN)
    assert denver.decision is Decision.UPDATE
    boston, current = memory.observations.history(denver.id)
    assert current == denver
    assert boston.text == "Lives in Boston"
    assert boston.status is ObservationStatus.SUPERSEDED
    assert boston.superseded_by == denver.id and denver.supersedes == boston.id
    assert boston.valid_to == denver.valid_from

    # Asked as of a time before the move, recall tells the story of then.
    before = memory.recall(
        ANN, "where do they live", options=RecallOptions(as_of=T0 + timedelta(days=1))
    )
    assert [i.text for i in before.items if i.type is ItemType.OBSERVATION] == [
        f"[until {denver.valid_from:%Y-%m-%d}] Lives in Boston"
    ]
    assert texts(memory, ANN, as_of=T0 + timedelta(days=1)) == ["Lives in Boston"]
    both = memory.recall(ANN, "live", options=RecallOptions(include_superseded=True))
    assert len([i for i in both.items if i.type is ItemType.OBSERVATION]) == 2


def test_a_preference_restated_in_other_words_is_one_observation_with_two_evidence_links(
    memory: Memory,
) -> None:
    first = talk(memory, ANN, [("customer", "Please text me, don't call."), ("human_agent", "OK")])
    second = talk(
        memory,
        ANN,
        [("customer", "I'd rather get a text than a phone call."), ("human_agent", "Noted.")],
        at=T0 + timedelta(days=7),
    )
    [pref] = memory.observations.list(ANN)
    assert pref.text == "Prefers SMS over phone calls"
    assert pref.kind is ObservationKind.PREFERENCE
    assert pref.evidence == (
        memory.conversations.list_messages(first)[0].id,
        memory.conversations.list_messages(second)[0].id,
    )
    assert [r.decision for r in pref.revisions] == [Decision.ADD, Decision.DUPLICATE]


def test_an_agents_utterance_is_not_taken_as_a_customer_fact(memory: Memory) -> None:
    talk(
        memory,
        ANN,
        [
            ("customer", "Why is my bill higher?"),
            ("human_agent", "You're on the Premium plan and I see you live in Boston."),
            ("ai_agent", "Please text me if anything changes."),
        ],
    )
    assert memory.observations.list(ANN) == []
    assert memory.traits.list(ANN) == []
    assert len(memory.summaries.list(ANN)) == 1


# -- traceability ----------------------------------------------------------------------------


def test_explain_returns_the_chain_behind_an_observation(memory: Memory) -> None:
    cid = talk(
        memory,
        ANN,
        [("customer", "I was charged twice on my March invoice."), ("human_agent", "Refunded.")],
        channel="voice",
    )
    [obs] = memory.observations.list(ANN)
    assert obs.text == "Reported a double charge on their March 2023 invoice"
    why = memory.observations.explain(obs.id)
    assert [m.text for m in why.messages] == ["I was charged twice on my March invoice."]
    assert [(c.id, c.channel.value) for c in why.conversations] == [(cid, "voice")]
    assert why.messages[0].ts == T0
    assert why.extractor == "heuristic-1"
    assert why.decision is Decision.ADD
    assert why.observation.revisions[0].note.startswith("rule:double-charge")
    assert why.history == (obs,)
    summary = memory.summaries.get(cid)
    assert summary.outcome is Outcome.UNKNOWN or summary.evidence  # linked to its messages
    assert set(summary.evidence) <= {m.id for m in memory.conversations.list_messages(cid)}


def test_reextraction_is_idempotent(memory: Memory) -> None:
    cid = talk(
        memory,
        ANN,
        [
            ("customer", "Please text me. I live in Boston and I'm on the Premium plan."),
            ("human_agent", "I've updated your contact preference."),
        ],
    )
    before = memory.observations.list(ANN)
    assert len(before) == 3
    assert memory.observations.extract(cid).status == "skipped"
    forced = memory.observations.extract(cid, force=True)
    assert forced.status == "done"
    assert {d.decision for d in forced.decisions} == {Decision.DUPLICATE}
    assert memory.observations.extract_all(force=True).extracted == 1
    assert memory.observations.list(ANN) == before  # same rows, same evidence
    assert len(memory.summaries.list(ANN)) == 1
    record = memory.observations.extraction_status(cid)
    assert record is not None and record.status is ExtractionStatus.DONE and record.attempts == 3


def test_backfill_extracts_ingested_history_out_of_order_and_the_newest_truth_wins(
    memory: Memory,
) -> None:
    def ingest(text: str, at: datetime) -> str:
        return memory.ingest(
            ConversationIn(
                channel="sms",
                customer=[ANN],
                messages=[MessageIn(role=Role.CUSTOMER, text=text, ts=at)],
            )
        ).conversation.id

    old = ingest("I live in Boston.", T0)
    new = ingest("I moved to Denver.", T0 + timedelta(days=90))
    assert memory.observations.list(ANN) == []  # ingest of closed history does not extract
    memory.observations.extract(new)  # the newer conversation first
    memory.observations.extract(old)
    assert texts(memory, ANN) == ["Lives in Denver (moved by 9 April 2024)"]
    [denver] = memory.observations.list(ANN)
    assert [o.text for o in memory.observations.history(denver.id)] == [
        "Lives in Boston",
        denver.text,
    ]
    progress: list[tuple[int, int]] = []
    again = memory.observations.extract_all(
        progress=lambda done, total: progress.append((done, total))
    )
    assert (again.conversations, progress) == (0, [])  # both already extracted


def test_end_conversation_without_auto_extract(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, auto_extract=False)
    with Memory(SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=settings) as memory:
        cid = talk(memory, ANN, [("customer", "I live in Boston."), ("human_agent", "Thanks")])
        assert memory.observations.list(ANN) == []
        assert memory.observations.extraction_status(cid) is None
        batch = memory.observations.extract_all()
        assert (batch.extracted, batch.messages) == (1, 2)
        assert texts(memory, ANN) == ["Lives in Boston"]


# -- traits ------------------------------------------------------------------------------


def test_a_crm_trait_outranks_an_extracted_one_and_the_conflict_stays_visible(
    memory: Memory,
) -> None:
    memory.profiles.add([ANN])
    memory.traits.set(ANN, "location", "Boston", source="crm")
    cid = talk(memory, ANN, [("customer", "I moved to Denver."), ("human_agent", "Noted.")])
    report = memory.observations.extract(cid, force=True)
    assert report.trait_conflicts == ("location",)
    [view] = memory.traits.views(ANN)
    assert (view.key, view.value, view.source) == ("location", "Boston", "crm")
    [conflict] = view.conflicts
    assert (conflict.value, conflict.source) == ("Denver", "extracted")
    assert conflict.evidence == (memory.conversations.list_messages(cid)[0].id,)
    assert [v.key for v in memory.traits.conflicts(ANN)] == ["location"]
    stored = {t.source: t.value for t in memory.traits.list(ANN)}
    assert stored == {"crm": "Boston", "extracted": "Denver"}  # nothing overwritten

    memory.traits.set(ANN, "location", "Denver", source="crm")  # the CRM catches up
    assert memory.traits.conflicts(ANN) == []


def test_declared_traits_are_type_checked(memory: Memory) -> None:
    memory.profiles.add([ANN])
    memory.traits.declare("seats", "int", description="Licensed seats")
    memory.traits.declare("segment", "enum", values=["smb", "enterprise"])
    assert memory.traits.set(ANN, "seats", "12").value == 12
    assert memory.traits.set(ANN, "segment", "SMB").value == "smb"
    assert memory.traits.set(ANN, "preferred_channel", "text").value == "sms"
    with pytest.raises(ValidationError, match="seats"):
        memory.traits.set(ANN, "seats", "a dozen")
    with pytest.raises(ValidationError, match="smb, enterprise"):
        memory.traits.set(ANN, "segment", "government")
    with pytest.raises(ValidationError, match="enum"):
        memory.traits.declare("color", "enum")
    keys = {d.id: d.type.value for d in memory.traits.schema()}
    assert keys["seats"] == "int" and keys["location"] == "str"
    memory.traits.set(ANN, "anything_else", 3.5)  # undeclared keys take any scalar


# -- agent notes, retraction, deletion ----------------------------------------------------


def test_an_agent_records_observations_that_are_reconciled_too(memory: Memory) -> None:
    cid = talk(memory, ANN, [("customer", "I live in Boston."), ("human_agent", "Thanks")])
    said = memory.conversations.list_messages(cid)[0]
    note = memory.observations.add(ANN, "Prefers morning calls", "preference", evidence=[said.id])
    assert (note.source, note.extractor, note.evidence) == ("agent", "agent", (said.id,))
    assert memory.observations.add(ANN, "prefers  morning calls", "preference").id == note.id
    moved = memory.observations.add(
        ANN, "Lives in Chicago", "context", trait_key="location", value="Chicago"
    )
    assert moved.decision is Decision.UPDATE
    assert sorted(texts(memory, ANN)) == ["Lives in Chicago", "Prefers morning calls"]
    with pytest.raises(ValidationError, match="card number"):
        memory.observations.add(ANN, "Card 4111 1111 1111 1111 on file")
    with pytest.raises(ValidationError, match="this customer's messages"):
        memory.observations.add(ANN, "Likes cats", evidence=["msg_nope"])


def test_retract_and_delete_observations(memory: Memory) -> None:
    talk(memory, ANN, [("customer", "I have two dogs."), ("human_agent", "Lovely")])
    [dogs] = memory.observations.list(ANN)
    retracted = memory.observations.retract(dogs.id, reason="they rehomed one")
    assert retracted.status is ObservationStatus.DELETED and retracted.valid_to is not None
    assert memory.observations.list(ANN) == []
    assert texts(memory, ANN, include_superseded=True) == ["Has two dogs"]
    receipt = memory.observations.delete(dogs.id)
    assert receipt.deleted == {"observations": 1}
    with pytest.raises(NotFoundError):
        memory.observations.get(dogs.id)


def test_deleting_a_conversation_takes_its_summary_and_sole_evidence_observations(
    memory: Memory,
) -> None:
    first = talk(
        memory, ANN, [("customer", "Please text me. I live in Boston."), ("human_agent", "OK")]
    )
    second = talk(
        memory,
        ANN,
        [("customer", "Text me please, not calls."), ("human_agent", "Sure")],
        at=T0 + timedelta(days=3),
    )
    assert len(memory.summaries.list(ANN)) == 2
    receipt = memory.conversations.delete(first)
    assert receipt.deleted == {
        "conversations": 1,
        "messages": 2,
        "observations": 1,  # "Lives in Boston" had no other evidence
        "traits": 1,  # the extracted location
        "summaries": 1,
        "extractions": 1,
    }
    [pref] = memory.observations.list(ANN)  # the preference survives on the other evidence
    assert pref.evidence == (memory.conversations.list_messages(second)[0].id,)
    assert [s.conversation_id for s in memory.summaries.list(ANN)] == [second]

    receipt = memory.conversations.delete_message(memory.conversations.list_messages(second)[0].id)
    assert receipt.deleted["observations"] == 1 and receipt.deleted["summaries"] == 1
    assert memory.observations.list(ANN) == [] and memory.summaries.list(ANN) == []


def test_deleting_a_newer_statement_brings_the_older_one_back(memory: Memory) -> None:
    talk(memory, ANN, [("customer", "I live in Boston."), ("human_agent", "ok")])
    newer = talk(
        memory, ANN, [("customer", "I moved to Denver."), ("human_agent", "ok")],
        at=T0 + timedelta(days=30),
    )  # fmt: skip
    memory.conversations.delete(newer)
    [boston] = memory.observations.list(ANN)
    assert boston.text == "Lives in Boston"
    assert (boston.status, boston.valid_to, boston.superseded_by) == (
        ObservationStatus.ACTIVE,
        None,
        None,
    )


def test_profile_deletion_and_merge_carry_observations_and_summaries(memory: Memory) -> None:
    talk(memory, ANN, [("customer", "I live in Boston."), ("human_agent", "ok")])
    talk(memory, "email:bob@example.com", [("customer", "Please text me."), ("human_agent", "ok")])
    survivor = memory.profiles.link(ANN, "email:bob@example.com")
    assert sorted(texts(memory, survivor.id)) == [
        "Lives in Boston",
        "Prefers to be contacted by SMS",
    ]
    assert len(memory.summaries.list(survivor.id)) == 2
    hits = memory.recall(survivor.id, "contact by SMS")
    assert "Prefers to be contacted by SMS" in [i.text for i in hits.items]

    receipt = memory.profiles.delete(survivor.id)
    assert receipt.deleted["observations"] == 2
    assert receipt.deleted["summaries"] == 2
    assert receipt.deleted["extractions"] == 2
    for collection in (Collection.OBSERVATIONS, Collection.SUMMARIES, Collection.EXTRACTIONS):
        assert memory.backend.count("default", collection) == 0


# -- recall ------------------------------------------------------------------------------


def test_recall_ranks_traits_observations_and_summaries_before_messages(memory: Memory) -> None:
    talk(
        memory,
        ANN,
        [
            ("customer", "My order still hasn't arrived."),
            ("human_agent", "I've sent a replacement, it has been shipped."),
        ],
    )
    result = memory.recall(ANN, "order arrived")
    kinds = [i.type for i in result.items]
    assert kinds[:2] == [ItemType.OBSERVATION, ItemType.SUMMARY]
    assert set(kinds[2:]) == {ItemType.MESSAGE}
    order = kinds.index(ItemType.MESSAGE)
    assert all(k is not ItemType.MESSAGE for k in kinds[:order])
    obs = result.items[0]
    assert obs.text == "Reported that their order has not arrived"
    assert obs.provenance.source == "heuristic-1" and len(obs.provenance.message_ids) == 1
    assert '<item type="observation' in result.context
    quiet = memory.recall(ANN)  # no query: newest first
    assert quiet.items[0].type is ItemType.OBSERVATION


def test_observations_never_leak_across_profiles_or_tenants(memory: Memory) -> None:
    memory.tenants.add("globex")
    talk(memory, ANN, [("customer", "I live in Boston, zebra street."), ("human_agent", "ok")])
    talk(memory, BOB, [("customer", "I live in Denver, okapi street."), ("human_agent", "ok")])
    talk(
        memory, ANN, [("customer", "I live in Paris, lemur street."), ("human_agent", "ok")],
        tenant="globex",
    )  # fmt: skip
    for options in (RecallOptions(), RecallOptions(mode="keyword"), RecallOptions(mode="vector"),
                    RecallOptions(include_superseded=True),
                    RecallOptions(as_of=T0 + timedelta(days=1))):  # fmt: skip
        for query in ("Denver okapi", "Paris lemur", "where do they live", None):
            result = memory.recall(ANN, query, options=options)
            joined = " ".join(i.text for i in result.items)
            assert "Denver" not in joined and "okapi" not in joined
            assert "Paris" not in joined and "lemur" not in joined
    assert texts(memory, ANN) == ["Lives in Boston"]
    assert texts(memory.tenant("globex"), ANN) == ["Lives in Paris"]
    [bobs] = memory.observations.list(BOB)
    with pytest.raises(NotFoundError):
        memory.tenant("globex").observations.get(bobs.id)
    with pytest.raises(NotFoundError):
        memory.tenant("globex").observations.explain(bobs.id)
    bob_message = memory.observations.explain(bobs.id).messages[0].id
    with pytest.raises(ValidationError):  # another customer's message is no evidence for Ann
        memory.observations.add(ANN, "Lives in Denver", evidence=[bob_message])
    paris = memory.tenant("globex").observations.list(ANN)[0]
    assert memory.backend.count("default", Collection.OBSERVATIONS, Where(eq={"id": paris.id})) == 0


async def test_the_async_facade_reaches_observations(memory: Memory) -> None:
    async with AsyncMemory(memory) as amem:
        conv = await amem.conversations.add("sms", [ANN])
        await amem.conversations.add_message(conv.id, "customer", "Please text me, don't call.")
        await amem.conversations.add_message(conv.id, "human_agent", "Sure.")
        await amem.conversations.end(conv.id)
        [obs] = await amem.observations.list(ANN)
        assert (await amem.observations.explain(obs.id)).observation == obs
        assert [v.key for v in await amem.traits.views(ANN)] == ["preferred_channel"]
