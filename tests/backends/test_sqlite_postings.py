"""Keyword search over in-memory term postings (issue 17): knowledge chunks over a
whole tenant or some knowledge bases, and a profile's messages. The same BM25
ranking as FTS5's path, kept exact through inserts, replacements, deletions, moves
between profiles, another process's writes and evictions, never mixing tenants or
profiles. Real SQLite; the reference is the backend's own FTS5 path (chunks: a
filter that admits every row sends a search there; messages: the same search with
postings serving chunks only)."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import memory_core.backends.sqlite as sqlite_backend
from memory_core.backends.base import Collection, Hit, SearchMode, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.models import Channel, Chunk, Message, Role
from tests.backends.test_sqlite import T0
from tests.backends.test_sqlite_search_structures import statements

C = Collection.CHUNKS
KBS = ["kb1", "kb2"]
WORDS = [
    "router", "wifi", "refund", "invoice", "plan", "upgrade", "modem", "fiber", "outage",
    "billing", "charge", "address", "move", "contract", "cancel", "discount", "voucher",
    "signal", "speed", "password", "reset", "account", "email", "phone", "store",
    "delivery", "parcel", "screen", "battery", "warranty", "repair",
]  # fmt: skip


def chunk(i: int, text: str, kb: str = "kb1", tenant: str = "acme") -> Chunk:
    return Chunk(
        id=f"ch{i}",
        tenant=tenant,
        kb_id=kb,
        source_id=f"src-{kb}",
        since=1,
        gen=f"src-{kb}:1",
        page_uri=f"https://help.example.com/{i}",
        page_hash="h",
        text=text,
    )


def corpus(rng: random.Random, n: int, start: int = 0) -> list[Chunk]:
    return [
        chunk(i, " ".join(rng.choices(WORDS, k=rng.randint(3, 25))), KBS[i % 2])
        for i in range(start, start + n)
    ]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    b = SQLiteBackend(tmp_path / "memory.db")
    for tenant in ("acme", "globex"):
        b.ensure_tenant(tenant)
    yield b
    b.close()


Ranking = tuple[list[float], set[str]]


def ranking(hits: list[Hit[Chunk]]) -> Ranking:
    """The scores in order, and the rows scoring above the last one (rows tied with
    the last may be cut at the limit either way)."""
    scores = [round(h.score, 9) for h in hits]
    above = {h.record.id for h, score in zip(hits, scores, strict=True) if score > scores[-1]}
    return scores, above


def search(backend: SQLiteBackend, text: str, tenant: str = "acme") -> Ranking:
    return ranking(backend.search(tenant, C, mode=SearchMode.KEYWORD, text=text, limit=10))


def ids(backend: SQLiteBackend, text: str, tenant: str = "acme") -> list[str]:
    hits = backend.search(tenant, C, mode=SearchMode.KEYWORD, text=text, limit=10)
    return [h.record.id for h in hits]


def reference(
    backend: SQLiteBackend, text: str, tenant: str = "acme", kbs: list[str] = KBS
) -> Ranking:
    """FTS5's path: a filter on the chunks' generations, which postings do not serve,
    admitting every chunk of these knowledge bases (fewer than 100 matches, so it
    ranks every match)."""
    gens = [f"src-{kb}:1" for kb in kbs]
    return ranking(
        backend.search(
            tenant,
            C,
            mode=SearchMode.KEYWORD,
            text=text,
            where=Where(any_of={"gen": gens}),
            limit=10,
        )  # fmt: skip
    )


def queries(rng: random.Random, n: int = 25) -> list[str]:
    return [" ".join(rng.sample(WORDS, rng.randint(1, 5))) for _ in range(n)]


def test_postings_rank_exactly_as_fts5_does(backend: SQLiteBackend) -> None:
    rng = random.Random(7)
    backend.upsert("acme", C, corpus(rng, 60))
    for q in queries(rng):
        assert search(backend, q) == reference(backend, q), q


def test_a_search_narrowed_to_knowledge_bases_or_sources_ranks_exactly(
    backend: SQLiteBackend,
) -> None:
    rng = random.Random(13)
    backend.upsert("acme", C, corpus(rng, 80))
    backend.upsert("acme", C, corpus(rng, 5, start=80))  # fresh rows of both bases
    for q in queries(rng):
        for kbs in (["kb1"], ["kb2"], KBS):
            narrowed = backend.search(
                "acme", C, mode=SearchMode.KEYWORD, text=q, where=Where(any_of={"kb_id": kbs}),
                limit=10,
            )  # fmt: skip
            assert {h.record.kb_id for h in narrowed} <= set(kbs)
            assert ranking(narrowed) == reference(backend, q, kbs=kbs), (q, kbs)
        by_source = backend.search(
            "acme", C, mode=SearchMode.KEYWORD, text=q,
            where=Where(any_of={"source_id": ["src-kb2"]}), limit=10,
        )  # fmt: skip
        assert ranking(by_source) == reference(backend, q, kbs=["kb2"])
    seen = statements(backend)
    backend.search(
        "acme", C, mode=SearchMode.KEYWORD, text=queries(rng)[0],
        where=Where(any_of={"kb_id": ["kb1"]}), limit=10,
    )  # fmt: skip
    assert sum("MATCH" in s for s in seen) <= 1  # the fresh rows only, not every match


def test_words_are_matched_as_fts5_indexes_them(backend: SQLiteBackend) -> None:
    # Stemming, case and diacritics are FTS5's: postings look the word up as its
    # tokenizer wrote it into the index.
    texts = [
        "Café refunds happily processed",
        "the cafe refunded twice",
        "REFUNDING at the CAFÉ",
        "naïve user connected",
        "connection naive",
        "x-ray and e-mail",
    ]
    backend.upsert("acme", C, [chunk(i, t) for i, t in enumerate(texts)])
    for q in ["cafés refund", "happily", "naive connecting", "e-mail", "x", "Ray", "refund"]:
        assert search(backend, q) == reference(backend, q), q
        assert search(backend, q)[0], q  # every one of them matches something


def test_a_connection_that_cannot_write_its_scratch_tables_still_ranks_exactly(
    backend: SQLiteBackend,
) -> None:
    rng = random.Random(14)
    backend.upsert("acme", C, corpus(rng, 40))
    conn = backend._holder().conn
    conn.execute("PRAGMA query_only = ON")  # no temp table can be created or written
    try:
        for q in queries(rng, 10):
            assert search(backend, q) == reference(backend, q), q
    finally:
        conn.execute("PRAGMA query_only = OFF")


def test_a_repeated_search_reads_no_postings_from_fts5(backend: SQLiteBackend) -> None:
    rng = random.Random(8)
    backend.upsert("acme", C, corpus(rng, 40))
    first = search(backend, "router refund")
    seen = statements(backend)
    assert search(backend, "router refund") == first
    assert not [s for s in seen if "MATCH" in s]  # terms, lengths and statistics in memory


def test_writes_are_seen_at_once_and_ranked_exactly(backend: SQLiteBackend) -> None:
    rng = random.Random(9)
    backend.upsert("acme", C, corpus(rng, 50))
    qs = queries(rng)
    for q in qs:  # postings of every query term read
        search(backend, q)
    backend.upsert("acme", C, corpus(rng, 10, start=50))  # new rows
    backend.upsert("acme", C, [chunk(3, "router router router refund"), chunk(4, "fiber")])
    backend.delete("acme", C, Where(any_of={"id": ["ch5", "ch6", "ch7"]}))
    for q in qs:
        assert search(backend, q) == reference(backend, q), q
    assert ids(backend, "router refund")[0] == "ch3"  # replaced text, same row
    assert not set(ids(backend, "wifi fiber router")) & {"ch5", "ch6", "ch7"}
    # Nothing of a deleted or rewritten row stays in the cached postings.
    state = backend._postings._tenants[("acme", "chunks")]
    gone = {int(r) for r in state.rids[~state.live]}
    assert len(gone) >= 5  # ch3, ch4 rewritten; ch5-ch7 deleted
    for term in state.terms.values():
        assert not {int(state.rids[p]) for p in term.positions} & gone


def test_another_processs_writes_are_read_again(tmp_path: Path) -> None:
    rng = random.Random(10)
    one = SQLiteBackend(tmp_path / "memory.db")
    one.ensure_tenant("acme")
    one.upsert("acme", C, corpus(rng, 30))
    search(one, "router modem")
    other = SQLiteBackend(tmp_path / "memory.db")  # another handle: no ops reach `one`
    other.upsert("acme", C, [chunk(100, "modem modem modem router")])
    other.close()
    assert ids(one, "router modem")[0] == "ch100"
    assert search(one, "router modem") == reference(one, "router modem")
    one.close()


def test_tenants_never_mix(backend: SQLiteBackend) -> None:
    rng = random.Random(11)
    backend.upsert("acme", C, corpus(rng, 30))
    backend.upsert(
        "globex", C, [chunk(i, "router wifi refund " * (i + 1), tenant="globex") for i in range(30)]
    )
    for q in queries(rng):
        mine = search(backend, q)
        assert mine == reference(backend, q)
        assert set(ids(backend, q, "globex")) <= {f"ch{i}" for i in range(30)}
        # Same ids in both tenants: the scores must be this tenant's own.
        assert search(backend, q, "globex") == reference(backend, q, "globex")
    backend.drop_tenant("globex")
    backend.ensure_tenant("globex")
    assert ids(backend, "router", "globex") == []


def test_a_small_memory_bound_evicts_terms_without_changing_results(
    backend: SQLiteBackend,
) -> None:
    rng = random.Random(12)
    backend.upsert("acme", C, corpus(rng, 60))
    backend._postings._max = 40  # a few terms' postings at a time
    for q in queries(rng):
        assert search(backend, q) == reference(backend, q), q
    assert backend._postings._held <= 40 + 60  # the bound, plus the one term just read


# -- a profile's messages ---------------------------------------------------------

M = Collection.MESSAGES
PROFILES = [f"prf_{i}" for i in range(12)]


def message(i: int, text: str, profile: str, day: int = 0) -> Message:
    return Message(
        id=f"m{i}",
        tenant="acme",
        conversation_id=f"conv_{profile}",
        profile_id=profile,
        channel=Channel.SMS if i % 3 == 0 else Channel.CHAT,
        role=Role.CUSTOMER,
        text=text,
        ts=T0 + timedelta(days=day, minutes=i),
        seq=i,
    )


def messages(rng: random.Random, n: int, start: int = 0) -> list[Message]:
    return [
        message(i, " ".join(rng.choices(WORDS, k=rng.randint(2, 12))), rng.choice(PROFILES), i % 30)
        for i in range(start, start + n)
    ]


def profile_search(backend: SQLiteBackend, text: str, where: Where) -> list[tuple[str, float]]:
    hits = backend.search("acme", M, mode=SearchMode.KEYWORD, text=text, where=where, limit=8)
    return [(h.record.id, round(h.score, 9)) for h in hits]


def fts5_path(backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """The same search through FTS5 (postings serve chunks only)."""

    def run(text: str, where: Where) -> list[tuple[str, float]]:
        with monkeypatch.context() as m:
            m.setattr(sqlite_backend, "INDEXED_TABLES", frozenset({"chunks"}))
            return profile_search(backend, text, where)

    return run


def filters(profile: str) -> list[Where]:
    mine = Where(eq={"profile_id": profile})
    return [
        mine,
        Where(any_of={"profile_id": [profile, "prf_0"]}),
        mine.and_(Where(gte={"ts": T0 + timedelta(days=10)})),  # not served alone: every match
        mine.and_(Where(any_of={"channel": ["sms"]})),
    ]


def test_a_profiles_messages_rank_exactly_as_fts5_does(
    backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(21)
    backend.upsert("acme", M, messages(rng, 400))
    reference = fts5_path(backend, monkeypatch)
    for q in queries(rng, 15):
        for profile in PROFILES[:4]:
            for where in filters(profile):
                got = profile_search(backend, q, where)
                assert got == reference(q, where), (q, where)
                owners = {m.profile_id for m in backend.get("acme", M, [i for i, _ in got])}
                assert owners <= set(where.any_of.get("profile_id", [profile]))


def test_a_profiles_new_moved_and_deleted_messages_are_ranked_exactly(
    backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(22)
    backend.upsert("acme", M, messages(rng, 300))
    qs = queries(rng, 12)
    for q in qs:  # postings of every query term read
        profile_search(backend, q, Where(eq={"profile_id": "prf_1"}))
    backend.upsert("acme", M, messages(rng, 40, start=300))  # fresh rows of every profile
    moved = [
        m.model_copy(update={"profile_id": "prf_1"}) for m in backend.get("acme", M, ["m7", "m8"])
    ]
    backend.upsert("acme", M, moved)  # a merge moves messages to another profile
    backend.delete("acme", M, Where(any_of={"id": ["m9", "m10"]}))
    reference = fts5_path(backend, monkeypatch)
    seen = statements(backend)
    for q in qs:
        for profile in ("prf_1", "prf_2"):
            where = Where(eq={"profile_id": profile})
            got = profile_search(backend, q, where)
            assert got == reference(q, where), (q, profile)
            assert not {"m9", "m10"} & {i for i, _ in got}
    # Rows written since the postings were read are ranked through FTS5, and only
    # those of the searched profile: a moved row counts as its new profile's.
    fresh = backend._postings._tenants[("acme", "messages")].fresh
    conn = backend._holder().conn
    rids = dict(conn.execute("SELECT id, rid FROM messages WHERE id IN ('m7', 'm8')").fetchall())
    assert {fresh[rids["m7"]], fresh[rids["m8"]]} == {"prf_1"}
    searched = {rid for rid, profile in fresh.items() if profile in ("prf_1", "prf_2")}
    lists = [re.findall(r"\d+", s) for s in re.findall(r"rowid IN \(([^)]*)\)", " ".join(seen))]
    assert lists
    assert all({int(r) for r in rows} <= searched for rows in lists)
    assert len(searched) < len(fresh)


def test_one_profiles_search_never_returns_another_profiles_messages(
    backend: SQLiteBackend,
) -> None:
    backend.upsert(
        "acme",
        M,
        [message(i, "router refund " * (1 + i % 4), "prf_other") for i in range(200)]
        + [message(500, "a router", "prf_mine")],
    )
    for where in (Where(eq={"profile_id": "prf_mine"}), Where(any_of={"profile_id": ["prf_mine"]})):
        assert [i for i, _ in profile_search(backend, "router refund", where)] == ["m500"]
    assert profile_search(backend, "router", Where(eq={"profile_id": "prf_nobody"})) == []


def test_a_words_document_frequency_comes_with_its_postings(backend: SQLiteBackend) -> None:
    rng = random.Random(23)
    backend.upsert("acme", M, messages(rng, 200))
    backend.upsert("globex", C, [chunk(i, "router refund", tenant="globex") for i in range(9)])
    profile_search(backend, "wifi", Where(eq={"profile_id": "prf_1"}))  # the row table read
    seen = statements(backend)
    profile_search(backend, "router refund cancel", Where(eq={"profile_id": "prf_2"}))
    assert not [s for s in seen if "count(*) FROM messages_fts" in s]  # no FTS5 count
    conn = backend._holder().conn
    for word in ("router", "refund", "cancel"):
        cached = backend._ranker._stats[("acme", "messages", word)].value
        (exact,) = conn.execute(
            "SELECT count(*) FROM messages WHERE tenant = 'acme' "
            "AND ' ' || (body ->> '$.text') || ' ' LIKE ?",
            (f"% {word} %",),
        ).fetchone()
        assert cached == exact, word  # this tenant's rows holding the word, no other's


def test_the_same_profile_id_in_two_tenants_never_mixes(backend: SQLiteBackend) -> None:
    theirs = [
        message(i, "router refund router", "prf_same").model_copy(update={"tenant": "globex"})
        for i in range(50)
    ]
    backend.upsert("globex", M, theirs)
    backend.upsert("acme", M, [message(900, "one router", "prf_same")])
    where = Where(eq={"profile_id": "prf_same"})
    for _ in range(2):  # postings read, then from memory
        mine = backend.search("acme", M, mode=SearchMode.KEYWORD, text="router refund", where=where)
        assert [(h.record.id, h.record.tenant) for h in mine] == [("m900", "acme")]
        other = backend.search("globex", M, mode=SearchMode.KEYWORD, text="router", where=where)
        assert {h.record.tenant for h in other} == {"globex"} and len(other) == 10
    backend.upsert("globex", M, [theirs[0].model_copy(update={"id": "m901", "text": "one"})])
    mine = backend.search("acme", M, mode=SearchMode.KEYWORD, text="one", where=where)
    assert [h.record.id for h in mine] == ["m900"]  # the other tenant's fresh row is not mine
