"""Recall's fast path on SQLite (issue 17, item 1): ranking reads message rows
(ids, position, time, text) instead of whole records, looks neighbouring turns up
in one statement, and runs in one read snapshot -- and returns exactly what the
straightforward path returns: the same items, in the same order, with the same
scores, as recall through the backend's base protocol alone.

Real SQLite stores; the reference is the same store read through an adapter that
offers only the :class:`~memory_core.backends.base.Backend` protocol (so recall
takes its generic path: whole records, a lookup per conversation, a snapshot per
call)."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_core import Memory
from memory_core.backends.base import (
    ALL,
    Collection,
    Hit,
    MessageRow,
    SearchMode,
    SupportsMessageRows,
    SupportsSnapshot,
    Vectors,
    Where,
)
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.models import Channel, ConversationIn, Message, MessageIn, Role
from memory_core.recall import ItemType, RecallOptions, RecallResult
from memory_core.relevance import _PREFIX, _stems, keyword_evidence, query_terms

T0 = datetime(2024, 1, 8, 9, 30, tzinfo=UTC)

_WORDS = tuple(
    [
        "router",
        "modem",
        "fiber",
        "invoice",
        "refund",
        "charged",
        "twice",
        "technician",
        "visit",
        "moving",
        "Denver",
        "Boston",
        "cancel",
        "upgrade",
        "plan",
        "premium",
        "delivery",
        "delivered",
        "deliver",
        "package",
        "late",
        "evening",
        "weekend",
        "callback",
        "promised",
        "nobody",
        "called",
        "email",
        "prefer",
        "text",
        "work",
        "dropping",
        "signal",
        "outage",
        "billing",
        "fee",
        "ordered",
        "never",
        "store",
        "return",
        "hotspot",
        "tablet",
        "watch",
    ]
)


class PlainBackend:
    """A backend through the base protocol only: no optional capability."""

    name = "sqlite"

    def __init__(self, inner: SQLiteBackend) -> None:
        self._inner = inner

    def close(self) -> None:
        self._inner.close()

    def batch(self) -> AbstractContextManager[None]:
        return self._inner.batch()

    def ensure_tenant(self, tenant: str) -> None:
        self._inner.ensure_tenant(tenant)

    def list_tenants(self) -> list[str]:
        return self._inner.list_tenants()

    def drop_tenant(self, tenant: str) -> dict[str, int]:
        return self._inner.drop_tenant(tenant)

    def upsert(self, tenant: str, collection: Any, records: Any, vectors: Any = None) -> None:
        self._inner.upsert(tenant, collection, records, vectors)

    def get(self, tenant: str, collection: Any, ids: Sequence[str]) -> list[Any]:
        return self._inner.get(tenant, collection, ids)

    def find(self, tenant: str, collection: Any, where: Where = ALL, **kw: Any) -> list[Any]:
        return self._inner.find(tenant, collection, where, **kw)

    def count(self, tenant: str, collection: Any, where: Where = ALL) -> int:
        return self._inner.count(tenant, collection, where)

    def delete(self, tenant: str, collection: Any, where: Where) -> int:
        return self._inner.delete(tenant, collection, where)

    def search(self, tenant: str, collection: Any, **kw: Any) -> list[Hit[Any]]:
        return self._inner.search(tenant, collection, **kw)


def _settings(tmp_path: Path) -> Any:
    return load_settings(data_dir=tmp_path, auto_extract=False)


def _build(memory: Memory, seed: int = 5) -> list[str]:
    """Three customers, each with conversations of many turns over several months on
    three channels; returns the profile ids."""
    rng = random.Random(seed)
    profiles = []
    for c in range(3):
        for k in range(6):
            start = T0 + timedelta(days=23 * k + 5 * c, hours=k)
            turns = []
            for i in range(12):
                words = rng.sample(_WORDS, rng.randint(4, 9))
                if rng.random() < 0.2:
                    words.append(f"on {(start + timedelta(days=i)).strftime('%B %d')}")
                turns.append(
                    MessageIn(
                        role=Role.CUSTOMER if i % 2 == 0 else Role.HUMAN_AGENT,
                        text=" ".join(words).capitalize() + ".",
                        ts=start + timedelta(minutes=3 * i),
                    )
                )
            result = memory.ingest(
                ConversationIn(
                    channel=(Channel.SMS, Channel.CHAT, Channel.EMAIL)[k % 3],
                    customer=[f"email:c{c}@example.com"],
                    started_at=start,
                    messages=turns,
                )
            )
            if k == 0:
                profiles.append(result.profile.id)
    return profiles


def _queries(seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    out = [" ".join(rng.sample(_WORDS, rng.randint(1, 6))) for _ in range(14)]
    out += [
        "what happened with the router in February 2024",
        "refund promised on March 2024",
        "delivery late in 2024",
        "the technician visit January 15, 2024",
        "deliver",  # a prefix of longer forms (delivery, delivered)
        "nothing here matches zzz",
    ]
    return out


_OPTIONS = [
    RecallOptions(),
    RecallOptions(limits={ItemType.MESSAGE: 20}, min_score=0.0),
    RecallOptions(mode=SearchMode.KEYWORD, min_score=0.0),
    RecallOptions(mode=SearchMode.VECTOR, min_score=0.0),
    RecallOptions(channels=frozenset({Channel.SMS, Channel.EMAIL}), min_score=0.0),
    RecallOptions(roles=frozenset({Role.CUSTOMER}), limits={ItemType.MESSAGE: 15}),
    RecallOptions(since=T0 + timedelta(days=30), until=T0 + timedelta(days=100), min_score=0.0),
]


def _items(result: RecallResult) -> list[tuple[Any, ...]]:
    return [(i.type, i.id, i.score, i.text, i.provenance.model_dump_json()) for i in result.items]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Memory, Memory, list[str]]]:
    fast = Memory(SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=_settings(tmp_path))
    profiles = _build(fast)
    plain = Memory(
        PlainBackend(SQLiteBackend(tmp_path / "m.db")),
        HashEmbedder(),
        settings=_settings(tmp_path),
    )
    yield fast, plain, profiles
    plain.close()
    fast.close()


def test_the_fast_path_is_the_path_taken(stores: tuple[Memory, Memory, list[str]]) -> None:
    fast, plain, _ = stores
    assert isinstance(fast.backend, SupportsMessageRows)
    assert isinstance(fast.backend, SupportsSnapshot)
    assert not isinstance(plain.backend, SupportsMessageRows)
    assert not isinstance(plain.backend, SupportsSnapshot)


def test_recall_equals_the_generic_path_exactly(
    stores: tuple[Memory, Memory, list[str]],
) -> None:
    fast, plain, profiles = stores
    compared = 0
    for profile in profiles:
        for query in _queries():
            for opts in _OPTIONS:
                got = fast.recall(profile, query, options=opts)
                want = plain.recall(profile, query, options=opts)
                assert _items(got) == _items(want), (profile, query, opts)
                assert got.context_ids == want.context_ids
                compared += len(want.items)
    assert compared > 2000  # the comparison saw real rankings, not empty ones


def test_conversation_recall_equals_the_generic_path(
    stores: tuple[Memory, Memory, list[str]],
) -> None:
    fast, plain, profiles = stores
    for conv in fast.conversations.list(profiles[1]):
        got = fast.recall(profiles[1], conversation_id=conv.id)
        want = plain.recall(profiles[1], conversation_id=conv.id)
        assert _items(got) == _items(want)


def test_search_rows_match_search(stores: tuple[Memory, Memory, list[str]]) -> None:
    fast, _, profiles = stores
    backend = fast.backend
    assert isinstance(backend, SQLiteBackend)
    tenant = fast.name
    vector = Vectors(fast.embedder.model_id, fast.embedder.embed_batch(["router refund"]))
    for where in (
        Where(eq={"profile_id": profiles[0]}),
        Where(eq={"profile_id": profiles[2]}, any_of={"channel": ["sms"]}),
        ALL,
    ):
        for mode, args in (
            (SearchMode.KEYWORD, {"text": "router refund evening"}),
            (SearchMode.VECTOR, {"vector": vector}),
        ):
            hits = backend.search(
                tenant, Collection.MESSAGES, mode=mode, where=where, limit=30, **args
            )
            rows = backend.search_rows(tenant, mode=mode, where=where, limit=30, **args)
            assert [(h.record.id, h.score) for h in hits] == [(r.id, s) for r, s in rows]
            for hit, (row, _) in zip(hits, rows, strict=True):
                message = hit.record
                assert (row.conversation_id, row.seq, row.ts) == (
                    message.conversation_id,
                    message.seq,
                    message.ts,
                )
                assert row.text == (message.text if mode is SearchMode.KEYWORD else None)


def test_rows_hold_exact_times_and_texts_at_the_edges(tmp_path: Path) -> None:
    """Times far in the future (a float64 of epoch seconds no longer holds their
    microseconds) and text with characters SQLite's JSON functions would cut."""
    with SQLiteBackend(tmp_path / "edges.db") as backend:
        backend.ensure_tenant("t")
        times = [
            datetime(1901, 2, 3, 4, 5, 6, 7, tzinfo=UTC),
            datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2242, 3, 16, 12, 56, 31, 999999, tzinfo=UTC),
            datetime(8999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
        texts = ["router a\x00b router", 'router "quoted" \\ \u2028 ü 🙂', "router\ttab", "router"]
        messages = [
            Message(
                id=f"m{i}",
                tenant="t",
                conversation_id="c",
                profile_id="p",
                channel=Channel.CHAT,
                role=Role.CUSTOMER,
                text=text,
                ts=ts,
                seq=i,
            )
            for i, (ts, text) in enumerate(zip(times, texts, strict=True))
        ]
        backend.upsert("t", Collection.MESSAGES, messages)
        rows = backend.search_rows(
            "t", mode=SearchMode.KEYWORD, text="router", where=Where(eq={"profile_id": "p"})
        )
        assert {(r.id, r.ts, r.text) for r, _ in rows} == {(m.id, m.ts, m.text) for m in messages}
        found = backend.message_rows("t", ALL, [("c", 1), ("c", 3), ("c", 9), ("other", 0)])
        assert sorted((r.id, r.ts) for r in found) == [("m1", times[1]), ("m3", times[3])]


def test_message_rows_stay_within_the_tenant_and_the_filter(
    stores: tuple[Memory, Memory, list[str]],
) -> None:
    fast, _, profiles = stores
    backend = fast.backend
    assert isinstance(backend, SQLiteBackend)
    other = fast.tenants.add("other")
    theirs = _build(other, seed=6)
    conv = other.conversations.list(theirs[0])[0].id
    mine = fast.conversations.list(profiles[0])[0].id
    positions = [(conv, 0), (conv, 1), (mine, 0), (mine, 1)]
    found = backend.message_rows(fast.name, ALL, positions)
    assert {r.conversation_id for r in found} == {mine}  # nothing of the other tenant
    assert {r.conversation_id for r in backend.message_rows("other", ALL, positions)} == {conv}
    roles = backend.message_rows(fast.name, Where(any_of={"role": ["customer"]}), positions)
    assert [r.seq for r in roles] == [0]  # turn 1 is the agent's
    searched = backend.search_rows(
        "other", mode=SearchMode.KEYWORD, text=" ".join(_WORDS), where=ALL, limit=500
    )
    assert searched and all(r.conversation_id != mine for r, _ in searched)


def test_a_recall_reads_in_one_snapshot_with_few_statements(
    stores: tuple[Memory, Memory, list[str]],
) -> None:
    """One BEGIN/COMMIT, one tenant check, one neighbour lookup per recall (the
    generic path issues one lookup per conversation and a snapshot per call). A
    word searched for the first time adds a bounded cost: its postings and its
    document frequency are read once."""
    fast, _, profiles = stores
    backend = fast.backend
    assert isinstance(backend, SQLiteBackend)
    fast.recall(profiles[0], "router refund")  # warm: statistics, matrices
    conn: sqlite3.Connection = backend._holder().conn  # this thread's connection

    def traced(query: str) -> list[str]:
        statements: list[str] = []
        conn.set_trace_callback(lambda sql: statements.append(sql))
        try:
            assert fast.recall(profiles[0], query).items
        finally:
            conn.set_trace_callback(None)
        return [s for s in statements if not s.startswith("--")]  # not FTS5's own reads

    query = "router refund technician evening"
    cold = traced(query)  # two words not searched before
    top = traced(query)
    assert top.count("BEGIN") == 1 and top.count("COMMIT") == 1
    assert sum("FROM tenants" in s for s in top) == 1
    assert sum("json_each(" in s and "m.conversation_id = j.value" in s for s in top) == 1
    assert not any('"conversation_id" = ?' in s for s in top)  # no lookup per conversation
    assert not any("MATCH" in s for s in top)  # words, lengths and statistics in memory
    assert len(top) <= 16, "\n".join(top)
    assert len(cold) <= len(top) + 5 + 3 * 2, "\n".join(cold)


def test_a_write_inside_a_snapshot_ends_it(tmp_path: Path) -> None:
    with SQLiteBackend(tmp_path / "snap.db") as backend:
        backend.ensure_tenant("t")
        with backend.snapshot():
            assert backend.count("t", Collection.PROFILES) == 0
            backend.ensure_tenant("u")  # a write: the snapshot ends first, no error
            assert "u" in backend.list_tenants()
        with backend.batch(), backend.snapshot():  # inside a transaction: joins it
            backend.ensure_tenant("v")
        assert "v" in backend.list_tenants()
        with pytest.raises(Exception, match="does not exist"), backend.snapshot():
            backend.count("nobody", Collection.PROFILES)


def _reference_evidence(terms: frozenset[str], text: str) -> float:
    """keyword_evidence as first written: every word tried against every term."""
    if not terms:
        return 0.0
    words = _stems(text)
    found = len(terms & words)
    for term in terms - words:
        if len(term) >= _PREFIX and any(
            w.startswith(term) or (len(w) >= _PREFIX and term.startswith(w)) for w in words
        ):
            found += 1
    return found / len(terms)


_word = st.text(alphabet="abcdeilmnorsty", min_size=1, max_size=11)


@settings(max_examples=400, deadline=None)
@given(st.lists(_word, max_size=6), st.lists(_word, max_size=25))
def test_keyword_evidence_equals_the_reference(query: list[str], words: list[str]) -> None:
    terms = query_terms(" ".join(query))
    text = " ".join(words)
    assert keyword_evidence(terms, text) == _reference_evidence(terms, text)


def test_keyword_evidence_reads_longer_and_shorter_forms() -> None:
    terms = query_terms("deliver packages")
    assert keyword_evidence(terms, "the delivery of a package") == 1.0
    assert keyword_evidence(query_terms("delivery"), "they deliver") == 1.0
    assert keyword_evidence(terms, "nothing related") == 0.0


def test_message_row_is_what_ranking_reads() -> None:
    row = MessageRow(id="m", conversation_id="c", seq=2, ts=T0)
    assert row.text is None  # not read: vector searches, neighbour lookups
