"""Recall an agent can act on: scores on a fixed scale with a floor, time windows
over observations and summaries, a token budget that always holds the best items,
and message re-scoring with the shape of conversations (issue 18, sections 2-3).

Real SQLite stores; the bundled MiniLM model where the scale of the score matters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_core import Memory
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder, LocalOnnxEmbedder
from memory_core.models import Channel, ConversationIn, MessageIn, Role
from memory_core.recall import (
    ItemType,
    RecallOptions,
    count_tokens,
    parse_context,
    token_counter,
)

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def _memory(tmp_path: Path, embedder: object, **settings: object) -> Memory:
    return Memory(
        SQLiteBackend(tmp_path / "memory.db"),
        embedder,  # type: ignore[arg-type]
        settings=load_settings(data_dir=tmp_path, auto_extract=False, **settings),
    )


@pytest.fixture(scope="module")
def minilm() -> LocalOnnxEmbedder:
    return LocalOnnxEmbedder()


@pytest.fixture
def local(tmp_path: Path, minilm: LocalOnnxEmbedder) -> Iterator[Memory]:
    mem = _memory(tmp_path, minilm)
    yield mem
    mem.close()


def _ingest(
    memory: Memory,
    turns: list[str],
    *,
    start: datetime = T0,
    cid: str | None = None,
    ids: list[str] | None = None,
) -> list[str]:
    result = memory.ingest(
        ConversationIn(
            id=cid,
            channel=Channel.CHAT,
            customer=["email:dana@example.com"],
            started_at=start,
            messages=[
                MessageIn(
                    id=ids[i] if ids else None,
                    role=Role.CUSTOMER if i % 2 == 0 else Role.HUMAN_AGENT,
                    text=text,
                    ts=start + timedelta(minutes=i),
                )
                for i, text in enumerate(turns)
            ],
        )
    )
    return [m.id for m in result.messages]


def _messages(n: int = 8) -> RecallOptions:
    """Messages only, with no floor: the hash embedder's scores carry no meaning."""
    return RecallOptions(
        types=frozenset({ItemType.MESSAGE}), limits={ItemType.MESSAGE: n}, min_score=0.0
    )


# -- absolute relevance ----------------------------------------------------------------


def test_a_nonsense_query_returns_only_the_profiles_key_traits(local: Memory) -> None:
    _ingest(
        local,
        [
            "My router keeps dropping the connection every evening.",
            "Let me reset your line from here, please restart the router.",
            "It works now, thanks. Also my invoice shows a roaming fee.",
            "I have removed the roaming fee from your March invoice.",
        ],
    )
    pid = local.profiles.get("email:dana@example.com").id
    local.traits.set(pid, "plan", "Premium", source="crm")

    nonsense = local.recall(pid, "purple giraffe violin sonata")
    assert [i.type for i in nonsense.items] == [ItemType.TRAIT]
    assert [p.text for p in parse_context(nonsense.context)] == ["plan: Premium"]

    relevant = local.recall(pid, "why is there a roaming fee on my invoice?")
    messages = [i for i in relevant.items if i.type is ItemType.MESSAGE]
    assert "roaming fee" in messages[0].text
    assert messages[0].score >= 0.5  # a clear match scores high on the fixed scale
    assert all(0.0 < i.score <= 1.0 for i in messages)


def test_min_score_is_on_the_same_scale_for_every_query(local: Memory) -> None:
    _ingest(
        local,
        [
            "The parcel with my new headphones never arrived.",
            "I'm sorry, the courier lost it; a replacement ships tomorrow.",
        ],
    )
    pid = local.profiles.get("email:dana@example.com").id
    options = RecallOptions(
        types=frozenset({ItemType.MESSAGE}), limits={ItemType.MESSAGE: 5}, min_score=0.0
    )
    good = local.recall(pid, "my headphones parcel did not arrive", options=options).items
    weak = local.recall(pid, "weather forecast for the weekend", options=options).items
    assert good and good[0].score > 0.5
    # the best hit of an unrelated query is not 1.0 (no per-query min-max)
    assert not weak or weak[0].score < 0.2 < good[0].score


# -- time ------------------------------------------------------------------------------


def test_since_and_until_filter_observations_by_when_they_were_true(tmp_path: Path) -> None:
    memory = _memory(tmp_path, HashEmbedder())
    jan = datetime(2024, 1, 10, tzinfo=UTC)
    jun = datetime(2024, 6, 10, tzinfo=UTC)
    first = _ingest(memory, ["I live in Boston."], start=jan)
    second = _ingest(memory, ["I moved to Denver last week."], start=jun)
    pid = memory.profiles.get("email:dana@example.com").id
    boston = memory.observations.add(
        pid, "Lives in Boston", "fact", evidence=first, trait_key="location", value="Boston"
    )
    denver = memory.observations.add(
        pid, "Lives in Denver", "fact", evidence=second, trait_key="location", value="Denver"
    )
    assert memory.observations.get(boston.id).valid_to is not None  # superseded in June

    def observed(**window: datetime) -> list[str]:
        options = RecallOptions(types=frozenset({ItemType.OBSERVATION}), min_score=0.0, **window)
        return [i.id for i in memory.recall(pid, "where does she live", options=options).items]

    assert observed(until=datetime(2024, 3, 1, tzinfo=UTC)) == [boston.id]
    assert observed(since=datetime(2024, 7, 1, tzinfo=UTC)) == [denver.id]
    both = observed(since=datetime(2024, 5, 1, tzinfo=UTC), until=datetime(2024, 7, 1, tzinfo=UTC))
    assert sorted(both) == sorted([boston.id, denver.id])  # each was true within the window
    memory.close()


def test_since_and_until_filter_summaries_by_when_their_conversation_was_held(
    tmp_path: Path,
) -> None:
    memory = _memory(tmp_path, HashEmbedder())
    jan = datetime(2024, 1, 10, tzinfo=UTC)
    jun = datetime(2024, 6, 10, tzinfo=UTC)
    _ingest(memory, ["My invoice is wrong.", "Fixed it for you."], start=jan, cid="c-jan")
    _ingest(memory, ["My invoice is wrong again.", "Fixed it again."], start=jun, cid="c-jun")
    for cid in ("c-jan", "c-jun"):
        memory.observations.extract(cid)
    pid = memory.profiles.get("email:dana@example.com").id
    options = RecallOptions(
        types=frozenset({ItemType.SUMMARY}), since=datetime(2024, 3, 1, tzinfo=UTC), min_score=0
    )
    found = memory.recall(pid, "invoice", options=options).items
    assert [i.provenance.conversation_id for i in found] == ["c-jun"]
    memory.close()


def test_a_query_naming_a_month_prefers_turns_of_that_month(tmp_path: Path) -> None:
    memory = _memory(tmp_path, HashEmbedder())
    may = datetime(2023, 5, 8, tzinfo=UTC)
    june = datetime(2023, 6, 12, tzinfo=UTC)
    _ingest(memory, ["We went hiking with the kids."], start=june, cid="c-june")
    _ingest(memory, ["We went hiking with the kids."], start=may, cid="c-may")
    pid = memory.profiles.get("email:dana@example.com").id
    found = memory.recall(pid, "where did we go hiking in May 2023?", options=_messages())
    assert found.items[0].provenance.conversation_id == "c-may"
    june_first = memory.recall(pid, "where did we go hiking in June 2023?", options=_messages())
    assert june_first.items[0].provenance.conversation_id == "c-june"
    memory.close()


def test_a_month_named_without_a_year_matches_that_month_of_any_year(tmp_path: Path) -> None:
    # "in June" pins no year: the customer's June of 2023 is as meant as this year's.
    memory = _memory(tmp_path, HashEmbedder())
    for cid, when in (
        ("a-may", datetime(2023, 5, 8, tzinfo=UTC)),
        ("b-june", datetime(2023, 6, 12, tzinfo=UTC)),
    ):
        # the same words: without the date signal, the tie goes to a-may's id
        _ingest(memory, ["We went hiking with the kids."], start=when, cid=cid, ids=[f"{cid}-1"])
    pid = memory.profiles.get("email:dana@example.com").id
    found = memory.recall(pid, "where did we go hiking in June?", options=_messages())
    assert found.items[0].provenance.conversation_id == "b-june"
    other_year = memory.recall(pid, "where did we go hiking in June 2024?", options=_messages())
    assert other_year.items[0].provenance.conversation_id == "a-may"  # a named year binds
    memory.close()


def test_the_best_hit_of_each_view_weighs_in_fully(tmp_path: Path) -> None:
    # Each view is min-max normalised within the query before fusion: the best vector
    # hit of a query no keyword matches has the whole dense share (alpha) of the key,
    # however low its raw cosine (short texts' cosines bunch up).
    from memory_core.backends.base import Collection, SearchMode, Where
    from memory_core.relevance import ranked

    memory = _memory(tmp_path, HashEmbedder())
    _ingest(memory, ["The router blinks red.", "Invoice paid.", "Moving to Denver soon."])
    pid = memory.profiles.get("email:dana@example.com").id
    query = "zebra quokka"
    pool = ranked(
        memory.backend,
        memory.name,
        Collection.MESSAGES,
        mode=SearchMode.HYBRID,
        text=query,
        vector=lambda: memory._ctx.query_vectors(memory.name, [query]),
        where=Where(eq={"profile_id": pid}),
        alpha=0.4,
        settings=memory.settings,
    )
    assert [round(s.key, 9) for s in pool] == [0.4, *[round(s.key, 9) for s in pool[1:]]]
    assert pool[-1].key == 0.0  # the deepest hit read
    memory.close()


def test_when_every_keyword_match_is_listed_the_weakest_match_still_counts(
    tmp_path: Path,
) -> None:
    # A keyword search that returns fewer hits than it may has listed every match:
    # its scale's zero is a non-match, so the weakest of three matches keeps a share
    # of the keyword side instead of scoring like a text that matches no query word
    # (in a small profile, one rare word's match otherwise takes the whole side).
    from memory_core.backends.base import Collection, SearchMode, Where
    from memory_core.relevance import ranked

    memory = _memory(tmp_path, HashEmbedder())
    _ingest(
        memory,
        [
            "I can't pick up calls at work.",
            "My wifi is still dropping every evening since the move, it's really annoying.",
            "The router keeps dropping wifi.",
            "Thanks for the refund.",
        ],
    )
    pid = memory.profiles.get("email:dana@example.com").id
    query = "Is the customer's wifi working?"

    def keys(depth: int) -> dict[str, float]:
        pool = ranked(
            memory.backend,
            memory.name,
            Collection.MESSAGES,
            mode=SearchMode.KEYWORD,
            text=query,
            vector=lambda: None,
            where=Where(eq={"profile_id": pid}),
            alpha=0.4,
            settings=memory.settings,
            depth=depth,
        )
        return {s.record.text: s.key for s in pool}  # keyword hits carry their text

    every = keys(100)
    assert len(every) == 3 and "Thanks for the refund." not in every
    assert min(every.values()) > 0.0  # each match keeps its share
    read_two = keys(2)  # more matches than read: the deepest hit read anchors the zero
    assert len(read_two) == 2 and min(read_two.values()) == 0.0
    memory.close()


# -- the shape of conversations ---------------------------------------------------------


def _answer_rank(
    tmp_path: Path,
    turns: list[str],
    answer: int,
    others: list[str],
    query: str,
    **settings: float,
) -> int:
    """Where ``turns[answer]`` ranks for ``query`` (99: not returned) when ``turns`` are
    one conversation and each of ``others`` a conversation of its own on a later day.
    Turns are embedded alone, so only the neighbour signal can lift a turn by the
    words of another."""
    path = tmp_path / ("-".join(f"{k}{v}" for k, v in settings.items()) or "default")
    path.mkdir()
    memory = _memory(path, HashEmbedder(), embed_context_turns=0, **settings)
    wanted = _ingest(memory, turns, cid="c-answer")[answer]
    for day, text in enumerate(others, 1):
        _ingest(memory, [text], start=T0 + timedelta(days=day))
    pid = memory.profiles.get("email:dana@example.com").id
    ids = [i.id for i in memory.recall(pid, query, options=_messages(8)).items]
    memory.close()
    return ids.index(wanted) if wanted in ids else 99


def test_neighbour_smoothing_lifts_the_answer_turn_after_the_question(tmp_path: Path) -> None:
    turns = [
        "What did the vet say about Max's limp?",
        "Nothing serious: a sprained paw, two weeks of rest.",
    ]
    others = [
        "Max ran around the garden all afternoon.",
        "The vet clinic moved downtown last year.",
        "Say hello to your sister for me.",
        "The limp in my old knee is back.",
    ]

    def rank(**settings: float) -> int:
        query = "what did the vet say about Max's limp"
        return _answer_rank(tmp_path, turns, 1, others, query, **settings)

    assert rank(recall_neighbour_weight=0.0, recall_session_weight=0.0) > 2  # not in the top 3
    assert rank() == 1  # right after the turn that matched the query


def test_neighbour_smoothing_reaches_a_reply_two_turns_after_the_topic(tmp_path: Path) -> None:
    # The reply names nothing the query asks about: the topic is two turns back, with
    # a short question ("how is it working?") in between.
    turns = [
        "The replacement router from my March order arrived this morning.",
        "Great to hear! How is it working so far?",
        "It drops the connection every evening around nine.",
    ]
    others = [
        "The printer ran out of ink again.",
        "My March invoice is still missing.",
        "The morning delivery was late.",
        "Great, thanks for the quick answer!",
        "The connection in the lobby is slow.",
    ]

    def rank(**settings: float) -> int:
        return _answer_rank(tmp_path, turns, 2, others, "replacement router", **settings)

    # adjacent turns only: a distractor outranks it
    assert rank(recall_neighbour_reach=1, recall_session_weight=0.0) > 2
    assert rank(recall_session_weight=0.0) == 2  # after the topic and the question
    assert rank() == 2


def test_session_prior_prefers_a_turn_of_the_conversation_the_query_is_about(
    tmp_path: Path,
) -> None:
    def second(**settings: float) -> str | None:
        path = tmp_path / ("-".join(f"{k}{v}" for k, v in settings.items()) or "default")
        path.mkdir()
        memory = _memory(
            path, HashEmbedder(), embed_context_turns=0, recall_neighbour_weight=0.0, **settings
        )
        _ingest(
            memory,
            ["The refund for my broken blender arrived.", "Good.", "Fine.", "A refund, again?"],
            cid="c-blender",
        )
        _ingest(memory, ["Refund."], start=T0 + timedelta(days=2), cid="c-other")
        pid = memory.profiles.get("email:dana@example.com").id
        items = memory.recall(pid, "refund for the broken blender", options=_messages(2)).items
        memory.close()
        return items[1].provenance.conversation_id

    assert second(recall_session_weight=0.0) == "c-other"  # the shortest match, alone
    assert second() == "c-blender"  # the episode the query is about


# -- the token budget ---------------------------------------------------------------------


def test_a_small_token_budget_still_holds_the_most_relevant_items(local: Memory) -> None:
    _ingest(
        local,
        [
            "My router keeps dropping the connection every evening, usually around nine "
            "when everyone at home starts streaming films and the kids play online games.",
            "Let me reset your line from here, please restart the router afterwards.",
        ],
    )
    pid = local.profiles.get("email:dana@example.com").id
    local.traits.set(pid, "plan", "Premium fibre with the evening streaming add-on", source="crm")
    result = local.recall(pid, "router dropping", options=RecallOptions(token_budget=60))
    assert result.items and result.context
    assert 0 < result.context_tokens <= 60
    shown = parse_context(result.context)
    assert shown and shown[0].text.startswith("plan: Premium")
    assert list(result.context_ids) == [i.id for i in result.items][: len(shown)]
    counter = token_counter(local.embedder)
    assert counter(result.context) <= 60  # counted with the model's own tokenizer

    roomy = local.recall(pid, "router dropping", options=RecallOptions(token_budget=400))
    assert len(parse_context(roomy.context)) == len(roomy.context_ids) == len(roomy.items)


def test_the_last_item_that_does_not_fit_is_cut_not_dropped(local: Memory) -> None:
    long_turn = " ".join(f"word{i}" for i in range(400))
    _ingest(local, [long_turn])
    pid = local.profiles.get("email:dana@example.com").id
    options = RecallOptions(token_budget=120, min_score=0.0)
    result = local.recall(pid, "word1 word2", options=options)
    shown = parse_context(result.context)
    assert len(shown) == 1 and shown[0].text.endswith("…")
    assert result.context_tokens <= 120


def test_tokens_are_counted_with_the_embedders_tokenizer(minilm: LocalOnnxEmbedder) -> None:
    chinese = "我今天在北京买了一台新电脑"
    assert minilm.count_tokens(chinese) == 13  # one wordpiece per character
    assert count_tokens(chinese) < 6  # the regex estimate sees one or two "words"
    assert token_counter(minilm)(chinese) == 13
    assert token_counter(HashEmbedder()) is count_tokens
