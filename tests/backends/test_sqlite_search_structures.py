"""The SQLite backend's search structures (issue 17): BM25 with configurable k1
and b, one keyword query per search, empty collections skipped, and the
memory-mapped vector matrices -- kept in sync with every write, rebuilt from
SQLite when their file is stale or damaged, scrubbed on erasure, and never
mixing tenants. Statements are counted with ``sqlite3``'s trace callback; no
timings."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory_core.backends.base import Collection, SearchMode, Vectors, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.backends.sqlite_keyword import text_length
from memory_core.models import Channel, Message, Role
from tests.backends.test_sqlite import T0, message, q, unit_rows

M = Collection.MESSAGES
MODEL = "test-model"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def backend(path: Path) -> Iterator[SQLiteBackend]:
    b = SQLiteBackend(path)
    b.ensure_tenant("acme")
    yield b
    b.close()


def statements(backend: SQLiteBackend) -> list[str]:
    """Every statement this thread's connection runs from now on."""
    seen: list[str] = []
    backend._holder().conn.set_trace_callback(seen.append)
    return seen


# -- keyword ranking --------------------------------------------------------------


def test_bm25_with_k1_and_b_equals_a_hand_computed_reference(path: Path) -> None:
    # Messages have a length normalisation of their own (short turns): 0.3, not 0.9.
    backend = SQLiteBackend(path, bm25_k1=1.5, bm25_b=0.9, bm25_message_b=0.3)
    backend.ensure_tenant("acme")
    texts = [
        "refund refund for the router",  # 5 tokens, refund x2, router x1
        "router stopped working again today please help",  # 7 tokens, router x1
        "billing question",  # 2 tokens
        "unrelated words only here",  # 4 tokens
    ]
    backend.upsert("acme", M, [message(f"m{i}", t, seq=i) for i, t in enumerate(texts)])
    # Another tenant's rows never enter acme's statistics.
    backend.ensure_tenant("other")
    backend.upsert(
        "other", M, [message(f"o{i}", "router refund", tenant="other") for i in range(9)]
    )
    hits = backend.search(
        "acme",
        M,
        mode=SearchMode.KEYWORD,
        text="refund router",
        where=Where(eq={"profile_id": "prf_ann"}),
    )
    n, avgdl, k1, b = 4, (5 + 7 + 2 + 4) / 4, 1.5, 0.3

    def idf(df: int) -> float:
        return max(1e-6, math.log((n - df + 0.5) / (df + 0.5)))

    def part(tf: int, dl: int, df: int) -> float:
        return idf(df) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

    expected = {"m0": part(2, 5, 1) + part(1, 5, 2), "m1": part(1, 7, 2)}
    assert [h.record.id for h in hits] == ["m0", "m1"]
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.record.id], rel=1e-9)
    backend.close()


def test_text_length_reads_fts5_varints() -> None:
    assert text_length(bytes([2, 6])) == 6
    assert text_length(bytes([1, 0x81, 0x00])) == 128
    assert text_length(bytes([3, 0x82, 0x83, 0x04])) == (2 << 14) | (3 << 7) | 4


def test_a_long_text_is_measured_as_fts5_counts_it(backend: SQLiteBackend) -> None:
    backend.upsert("acme", M, [message("long", " ".join(["word"] * 300) + " router")])
    conn = backend._holder().conn
    [(size,)] = conn.execute("SELECT sz FROM messages_fts_docsize").fetchall()
    assert text_length(size) == 301


def test_a_keyword_search_runs_its_ranked_query_once(backend: SQLiteBackend) -> None:
    backend.upsert(
        "acme", M, [message(f"m{i}", f"router issue number {i}", seq=i) for i in range(3)]
    )
    where = Where(eq={"profile_id": "prf_ann"})
    backend.search("acme", M, mode=SearchMode.KEYWORD, text="router", where=where, limit=10)
    seen = statements(backend)
    hits = backend.search("acme", M, mode=SearchMode.KEYWORD, text="router", where=where, limit=10)
    assert len(hits) == 3  # fewer than the limit: no second search
    ranked = [s for s in seen if "MATCH" in s]
    assert not ranked, ranked  # the profile's rows ranked from postings already read
    parsed = [s for s in seen if "body" in s]
    assert len(parsed) == 1, parsed  # the returned records' bodies, read once


def test_hybrid_search_reads_only_the_records_it_returns(backend: SQLiteBackend) -> None:
    vectors = unit_rows(40, 8, seed=1)
    backend.upsert(
        "acme",
        M,
        [message(f"m{i:02}", f"router issue {i}", seq=i) for i in range(40)],
        Vectors(MODEL, vectors),
    )
    where = Where(eq={"profile_id": "prf_ann"})
    args: dict[str, Any] = {"mode": SearchMode.HYBRID, "text": "router", "vector": q(vectors[3])}
    backend.search("acme", M, where=where, limit=4, **args)
    seen = statements(backend)
    hits = backend.search("acme", M, where=where, limit=4, **args)
    assert len(hits) == 4 and hits[0].record.id == "m03"
    [bodies] = [s for s in seen if "body" in s]
    assert len(re.search(r"IN \(([^)]*)\)", bodies).group(1).split(",")) == 4  # four rows


def test_empty_collections_are_not_searched_and_writes_are_seen(backend: SQLiteBackend) -> None:
    from memory_core.models import Summary

    S = Collection.SUMMARIES
    args: dict[str, Any] = {
        "mode": SearchMode.HYBRID,
        "text": "router",
        "vector": q(unit_rows(1, 8, 2)[0]),
    }
    backend.search("acme", S, **args)
    seen = statements(backend)
    assert backend.search("acme", S, **args) == []
    assert not [s for s in seen if "summaries_fts" in s or "vector" in s], seen
    summary = Summary(
        id="s1", tenant="acme", profile_id="prf_ann", conversation_id="c1", channel=Channel.CHAT,
        text="router replaced", ts=T0, extractor="test",
    )  # fmt: skip
    backend.upsert("acme", S, [summary], Vectors(MODEL, unit_rows(1, 8, 3)))
    assert [h.record.id for h in backend.search("acme", S, **args)] == ["s1"]
    backend.delete("acme", S, Where(eq={"id": "s1"}))
    assert backend.search("acme", S, **args) == []


# -- vector matrices --------------------------------------------------------------


def exact(backend: SQLiteBackend, tenant: str, query: np.ndarray, where: Where) -> list[str]:
    """Every vector of the tenant's matching messages scored with numpy from SQLite."""
    conn = backend._holder().conn
    rows = conn.execute(
        "SELECT id, profile_id, vector FROM messages WHERE tenant = ? AND vector IS NOT NULL",
        (tenant,),
    ).fetchall()
    wanted = where.eq.get("profile_id")
    scored = [
        (float(np.frombuffer(v, "<f4") @ query), i) for i, p, v in rows if wanted in (None, p)
    ]
    return [i for _, i in sorted(scored, key=lambda s: (-s[0], s[1]))]


def nearest(
    backend: SQLiteBackend, tenant: str, query: np.ndarray, where: Where, k: int = 5
) -> list[str]:
    hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=q(query), where=where, limit=k)
    return [h.record.id for h in hits]


def agree(backend: SQLiteBackend, tenant: str, queries: np.ndarray) -> None:
    for where in (
        Where(),
        Where(eq={"profile_id": "prf_ann"}),
        Where(eq={"profile_id": "prf_bob"}),
    ):
        for query in queries:
            assert (
                nearest(backend, tenant, query, where) == exact(backend, tenant, query, where)[:5]
            )


def msgs(prefix: str, n: int, tenant: str = "acme", start: int = 0) -> list[Message]:
    return [
        message(f"{prefix}{i:03}", f"text {i}", tenant=tenant,
                profile_id=("prf_ann", "prf_bob")[i % 2], seq=i)
        for i in range(start, start + n)
    ]  # fmt: skip


def files(path: Path) -> list[Path]:
    directory = Path(f"{path}.vectors")
    return sorted(directory.glob("*")) if directory.is_dir() else []


def test_the_matrix_stays_in_sync_across_writes_and_reopen(
    backend: SQLiteBackend, path: Path
) -> None:
    queries = unit_rows(6, 16, seed=9)
    backend.upsert("acme", M, msgs("a", 60), Vectors(MODEL, unit_rows(60, 16, seed=1)))
    agree(backend, "acme", queries)
    built = backend._matrices.rebuilds
    assert built >= 1 and files(path)
    # add
    backend.upsert("acme", M, msgs("a", 20, start=60), Vectors(MODEL, unit_rows(20, 16, seed=2)))
    agree(backend, "acme", queries)
    # update: new vectors for existing rows
    backend.upsert("acme", M, msgs("a", 10), Vectors(MODEL, unit_rows(10, 16, seed=3)))
    agree(backend, "acme", queries)
    # merge: rows move to another profile
    moved = [m.model_copy(update={"profile_id": "prf_bob"}) for m in msgs("a", 6)]
    backend.upsert("acme", M, moved, Vectors(MODEL, unit_rows(6, 16, seed=4)))
    agree(backend, "acme", queries)
    # replaced without a vector: it loses its old one
    backend.upsert("acme", M, msgs("a", 2, start=40))
    agree(backend, "acme", queries)
    # delete
    backend.delete("acme", M, Where(eq={"profile_id": "prf_ann"}))
    agree(backend, "acme", queries)
    assert backend._matrices.rebuilds == built  # every write applied incrementally
    # inside a batch that rolls back, nothing is applied
    with pytest.raises(RuntimeError), backend.batch():
        backend.upsert("acme", M, msgs("z", 5), Vectors(MODEL, unit_rows(5, 16, seed=5)))
        raise RuntimeError
    agree(backend, "acme", queries)
    backend.close()
    again = SQLiteBackend(path)
    agree(again, "acme", queries)
    again.close()


def test_many_writes_compact_the_matrix_into_its_file(backend: SQLiteBackend, path: Path) -> None:
    queries = unit_rows(3, 8, seed=9)
    backend.upsert("acme", M, msgs("a", 10), Vectors(MODEL, unit_rows(10, 8, seed=1)))
    agree(backend, "acme", queries)
    for batch in range(5):  # past the delta's bound
        start = 10 + batch * 1000
        backend.upsert(
            "acme", M, msgs("a", 1000, start=start), Vectors(MODEL, unit_rows(1000, 8, seed=start))
        )
    agree(backend, "acme", queries)
    backend.close()
    again = SQLiteBackend(path)
    agree(again, "acme", queries)
    assert again._matrices.rebuilds == 0  # the compacted file was current: opened, not rebuilt
    again.close()


def corrupt(target: Path, offset: int) -> None:
    data = bytearray(target.read_bytes())
    data[offset] ^= 0xFF
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["header", "rids", "vectors", "ranges", "truncated"])
def test_a_damaged_file_is_rebuilt_from_sqlite(path: Path, where: str) -> None:
    backend = SQLiteBackend(path)
    backend.ensure_tenant("acme")
    queries = unit_rows(3, 8, seed=9)
    backend.upsert("acme", M, msgs("a", 30), Vectors(MODEL, unit_rows(30, 8, seed=1)))
    agree(backend, "acme", queries)
    backend.close()
    [file] = files(path)
    size = file.stat().st_size
    if where == "truncated":
        file.write_bytes(file.read_bytes()[:-7])
    else:
        corrupt(
            file,
            {"header": 9, "rids": 64 + 3, "vectors": 64 + 30 * 8 + 17, "ranges": size - 3}[where],
        )
    again = SQLiteBackend(path)
    agree(again, "acme", queries)
    assert again._matrices.rebuilds >= 1
    again.close()


def test_writes_from_another_process_make_the_matrix_rebuild(
    backend: SQLiteBackend, path: Path
) -> None:
    queries = unit_rows(3, 8, seed=9)
    backend.upsert("acme", M, msgs("a", 30), Vectors(MODEL, unit_rows(30, 8, seed=1)))
    agree(backend, "acme", queries)
    other = SQLiteBackend(path)  # another handle: its writes are not applied here
    other.upsert("acme", M, msgs("b", 5), Vectors(MODEL, unit_rows(5, 8, seed=2)))
    other.delete("acme", M, Where(eq={"id": "a000"}))
    other.close()
    agree(backend, "acme", queries)


def test_erasure_leaves_no_vector_in_any_file(backend: SQLiteBackend, path: Path) -> None:
    vectors = unit_rows(40, 8, seed=1)
    backend.upsert("acme", M, msgs("a", 40), Vectors(MODEL, vectors))
    agree(backend, "acme", unit_rows(2, 8, seed=9))
    erased = [i for i in range(40) if i % 2 == 0]  # prf_ann's
    backend.delete("acme", M, Where(eq={"profile_id": "prf_ann"}))
    backend.close()
    blobs = b"".join(p.read_bytes() for p in files(path))
    assert blobs  # the matrix file is still there, with prf_bob's rows
    for i in erased:
        assert vectors[i].astype("<f4").tobytes() not in blobs
    assert vectors[1].astype("<f4").tobytes() in blobs


def test_erasure_scrubs_a_file_this_process_has_not_loaded(path: Path) -> None:
    vectors = unit_rows(20, 8, seed=1)
    first = SQLiteBackend(path)
    first.ensure_tenant("acme")
    first.upsert("acme", M, msgs("a", 20), Vectors(MODEL, vectors))
    agree(first, "acme", unit_rows(1, 8, seed=9))  # writes the file
    first.close()
    second = SQLiteBackend(path)  # the file is current: kept, not loaded
    second.delete("acme", M, Where(eq={"id": "a002"}))
    blobs = b"".join(p.read_bytes() for p in files(path))
    assert vectors[2].astype("<f4").tobytes() not in blobs
    second.close()


def test_tenants_with_the_same_vectors_never_mix(path: Path) -> None:
    backend = SQLiteBackend(path)
    vectors = unit_rows(20, 8, seed=1)
    for tenant in ("acme", "evil"):
        backend.ensure_tenant(tenant)
        backend.upsert(tenant, M, msgs("same", 20, tenant=tenant), Vectors(MODEL, vectors))
    for tenant in ("acme", "evil"):
        for where in (Where(), Where(eq={"profile_id": "prf_ann"})):
            hits = backend.search(
                tenant, M, mode=SearchMode.VECTOR, vector=q(vectors[0]), where=where, limit=50
            )
            assert hits and {h.record.tenant for h in hits} == {tenant}
    backend.delete("evil", M, Where(eq={"profile_id": "prf_ann"}))
    acme = backend.search("acme", M, mode=SearchMode.VECTOR, vector=q(vectors[0]), limit=50)
    assert len(acme) == 20
    evil = backend.search("evil", M, mode=SearchMode.VECTOR, vector=q(vectors[0]), limit=50)
    assert len(evil) == 10 and {h.record.tenant for h in evil} == {"evil"}
    before = set(files(path))
    backend.drop_tenant("evil")
    assert len(set(files(path))) == len(before) - 1  # evil's file went, acme's stayed
    assert (
        len(backend.search("acme", M, mode=SearchMode.VECTOR, vector=q(vectors[0]), limit=50)) == 20
    )
    backend.close()
    blobs = b"".join(p.read_bytes() for p in files(path))
    assert blobs.count(vectors[0].astype("<f4").tobytes()) == 1  # acme's row only


def test_a_snapshot_older_than_the_matrix_reads_sqlite(backend: SQLiteBackend) -> None:
    vectors = unit_rows(10, 8, seed=1)
    backend.upsert("acme", M, msgs("a", 10), Vectors(MODEL, vectors))
    with backend.batch():  # inside a write: the matrix is not used, SQLite is
        backend.upsert("acme", M, msgs("b", 1), Vectors(MODEL, vectors[:1]))
        hits = backend.search("acme", M, mode=SearchMode.VECTOR, vector=q(vectors[0]), limit=2)
        assert {h.record.id for h in hits} == {"a000", "b000"}
    hits = backend.search("acme", M, mode=SearchMode.VECTOR, vector=q(vectors[0]), limit=2)
    assert {h.record.id for h in hits} == {"a000", "b000"}


def test_messages_of_other_roles_are_kept(backend: SQLiteBackend) -> None:
    # A filter the matrix cannot serve by ranges (role) still searches the matrix's rows.
    vectors = unit_rows(10, 8, seed=1)
    rows = [
        m.model_copy(update={"role": Role.HUMAN_AGENT if i % 3 == 0 else Role.CUSTOMER})
        for i, m in enumerate(msgs("a", 10))
    ]
    backend.upsert("acme", M, rows, Vectors(MODEL, vectors))
    where = Where(eq={"role": "human_agent"})
    hits = backend.search(
        "acme", M, mode=SearchMode.VECTOR, vector=q(vectors[3]), where=where, limit=10
    )
    assert [h.record.id for h in hits][0] == "a003" and {h.record.id for h in hits} == {
        "a000",
        "a003",
        "a006",
        "a009",
    }
