"""What the SQLite backend guarantees beyond the contract: its file format,
migrations, crash consistency, concurrency and keyword query handling."""

from __future__ import annotations

import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory_core.backends.base import ALL, Backend, Collection, SearchMode, Vectors, Where
from memory_core.backends.sqlite import SQLiteBackend, fts_query_terms
from memory_core.backends.sqlite_migrations import LATEST_VERSION, MIGRATIONS
from memory_core.errors import NotFoundError, SchemaMismatchError, StorageError, ValidationError
from memory_core.models import Channel, Message, Role

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MODEL = "test-model"
M = Collection.MESSAGES
TENANT = "acme"


def message(
    mid: str,
    text: str,
    *,
    tenant: str = TENANT,
    profile_id: str = "prf_ann",
    conversation_id: str = "conv_1",
    minutes: float = 0,
    seq: int = 0,
) -> Message:
    return Message(
        id=mid,
        tenant=tenant,
        conversation_id=conversation_id,
        profile_id=profile_id,
        channel=Channel.CHAT,
        role=Role.CUSTOMER,
        text=text,
        ts=T0 + timedelta(minutes=minutes),
        seq=seq,
    )


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def q(row: np.ndarray[Any, np.dtype[np.float32]], model: str = MODEL) -> Vectors:
    return Vectors(model, row.reshape(1, -1).astype(np.float32))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


@pytest.fixture
def backend(path: Path) -> Iterator[SQLiteBackend]:
    with SQLiteBackend(path) as opened:
        opened.ensure_tenant(TENANT)
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def assert_consistent(path: Path) -> None:
    """The message table and its FTS index agree, and both pass integrity checks."""
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        rows = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        assert conn.execute("SELECT count(*) FROM messages_fts").fetchone()[0] == rows
        orphans = conn.execute(
            "SELECT count(*) FROM messages_fts WHERE rowid NOT IN (SELECT rid FROM messages)"
        ).fetchone()[0]
        assert orphans == 0
    finally:
        conn.close()


# -- file format and migrations -------------------------------------------------------------


def test_store_is_one_wal_file_with_recorded_migrations(backend: SQLiteBackend, path: Path) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == "sqlite"
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    conn.close()
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in MIGRATIONS]
    backend.close()
    with SQLiteBackend(path):  # reopening applies nothing twice
        pass
    conn = raw(path)
    assert (
        conn.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall() == rows
    )
    conn.close()


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == LATEST_VERSION


def test_a_store_from_a_newer_release_is_refused(path: Path) -> None:
    SQLiteBackend(path).close()
    conn = raw(path)
    conn.execute(
        "INSERT INTO schema_migrations VALUES (?, 'from the future', '2031-01-01')",
        (LATEST_VERSION + 1,),
    )
    conn.close()
    with pytest.raises(SchemaMismatchError, match="(?i)upgrade conversation-memory"):
        SQLiteBackend(path)


def test_a_file_that_is_not_a_database_is_a_storage_error(path: Path) -> None:
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError):
        SQLiteBackend(path)


def test_a_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="directory"):
        SQLiteBackend(tmp_path / "missing" / "memory.db")


def test_a_closed_backend_raises_storage_error(backend: SQLiteBackend) -> None:
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        backend.count(TENANT, M)


def test_a_held_write_lock_times_out_as_storage_error(path: Path) -> None:
    with SQLiteBackend(path, busy_timeout=0.05) as impatient:
        impatient.ensure_tenant(TENANT)
        blocker = raw(path)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="locked"):
                impatient.upsert(TENANT, M, [message("msg_1", "hello")])
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        impatient.upsert(TENANT, M, [message("msg_1", "hello")])
        assert impatient.count(TENANT, M) == 1


@pytest.mark.slow
def test_a_writer_waits_for_another_process_lock(backend: SQLiteBackend, path: Path) -> None:
    blocker = raw(path)
    blocker.execute("BEGIN IMMEDIATE")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            backend.upsert(TENANT, M, [message("msg_1", "hello")])
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=0.3)
    assert writer.is_alive()  # waiting on the lock (busy_timeout), not failing
    blocker.execute("COMMIT")
    blocker.close()
    writer.join(timeout=30)
    assert not errors
    assert backend.count(TENANT, M) == 1


# -- crash consistency ------------------------------------------------------------------------

CHILD = r"""
import sys, time
import numpy as np
from datetime import UTC, datetime
from memory_core.backends.base import Collection, Vectors
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.models import Channel, Message, Role

path, tenant, mode = sys.argv[1:4]
backend = SQLiteBackend(path)
rng = np.random.default_rng(0)

def make(start, n):
    records = [
        Message(id=f"crash_{i}", tenant=tenant, conversation_id="conv_crash",
                profile_id="prf_crash", channel=Channel.CHAT, role=Role.CUSTOMER,
                text=f"uncommitted kraken number {i} " + "lorem ipsum dolor " * 30,
                ts=datetime(2024, 1, 1, tzinfo=UTC), seq=i)
        for i in range(start, start + n)
    ]
    return records, Vectors("test-model", rng.normal(size=(n, 64)).astype(np.float32))

if mode == "batch":
    with backend.batch():
        backend.upsert(tenant, Collection.MESSAGES, *make(0, 2000))
        print("inside", flush=True)
        for chunk in range(1, 100):  # keep writing until killed
            backend.upsert(tenant, Collection.MESSAGES, *make(chunk * 2000, 2000))
        time.sleep(600)
else:
    records, vectors = make(0, 30000)
    print("starting", flush=True)
    backend.upsert(tenant, Collection.MESSAGES, records, vectors)
    print("committed", flush=True)
    time.sleep(600)
"""


def _wait_for_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise AssertionError(f"the child printed nothing within {timeout}s")
    return proc.stdout.readline().strip()


def _seed(path: Path) -> None:
    with SQLiteBackend(path) as backend:
        backend.ensure_tenant(TENANT)
        backend.upsert(
            TENANT,
            M,
            [message(f"msg_{i}", f"baseline message {i}") for i in range(10)],
            Vectors(MODEL, unit_rows(10, 64, 1)),
        )


def _kill_child(path: Path, mode: str, marker: str) -> None:
    """Run CHILD, wait for its marker and for its transaction to spill pages into
    the WAL (so uncommitted frames are on disk), then SIGKILL it."""
    wal = Path(f"{path}-wal")
    start = wal.stat().st_size if wal.exists() else 0
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), TENANT, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            line = _wait_for_line(proc, timeout=60)
            assert line == marker, f"child said {line!r}"
            deadline = time.monotonic() + 60
            while wal.stat().st_size < start + (1 << 20):  # poll for the marker on disk
                assert proc.poll() is None and time.monotonic() < deadline, "child never wrote"
                threading.Event().wait(0.002)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_a_process_killed_inside_a_batch_leaves_nothing_behind(path: Path) -> None:
    _seed(path)
    with SQLiteBackend(path) as watcher:  # a reader open during the crash
        _kill_child(path, "batch", "inside")
        assert watcher.count(TENANT, M) == 10
    assert_consistent(path)
    with SQLiteBackend(path) as backend:
        assert backend.count(TENANT, M) == 10
        assert backend.count(TENANT, M, Where(eq={"profile_id": "prf_crash"})) == 0
        assert backend.search(TENANT, M, mode=SearchMode.KEYWORD, text="kraken") == []
        hits = backend.search(
            TENANT, M, mode=SearchMode.VECTOR, vector=q(unit_rows(1, 64, 5)), limit=100
        )
        assert len(hits) == 10
        backend.upsert(TENANT, M, [message("msg_after", "written after the crash")])
        assert backend.count(TENANT, M) == 11
    assert_consistent(path)


@pytest.mark.slow
def test_a_process_killed_during_one_upsert_applies_all_or_nothing(path: Path) -> None:
    _seed(path)
    _kill_child(path, "single", "starting")
    assert_consistent(path)
    with SQLiteBackend(path) as backend:
        crashed = backend.count(TENANT, M, Where(eq={"profile_id": "prf_crash"}))
        assert crashed in (0, 30000)
        keyword = backend.search(TENANT, M, mode=SearchMode.KEYWORD, text="kraken", limit=5)
        assert len(keyword) == min(crashed, 5)
        backend.upsert(TENANT, M, [message("msg_after", "written after the crash")])


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.slow
def test_readers_never_see_half_a_batch(backend: SQLiteBackend) -> None:
    batches, per_batch, per_upsert = 15, 50, 10
    done, reading = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    seen: Counter[int] = Counter()

    def write() -> None:
        try:
            assert reading.wait(timeout=30)
            for b in range(batches):
                with backend.batch():
                    for first in range(0, per_batch, per_upsert):
                        backend.upsert(
                            TENANT,
                            M,
                            [
                                message(
                                    f"msg_{b}_{i}",
                                    f"atomic walrus {b} {i}",
                                    conversation_id=f"conv_{b}",
                                    seq=i,
                                )
                                for i in range(first, first + per_upsert)
                            ],
                            Vectors(MODEL, unit_rows(per_upsert, 16, b * 100 + first)),
                        )
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                per_conversation = Counter(
                    m.model_dump()["conversation_id"] for m in backend.find(TENANT, M)
                )
                assert set(per_conversation.values()) <= {per_batch}
                total = backend.count(TENANT, M)
                assert total % per_batch == 0
                hits = backend.search(
                    TENANT, M, mode=SearchMode.KEYWORD, text="walrus", limit=10_000
                )
                assert len(hits) % per_batch == 0
                vec = backend.search(
                    TENANT, M, mode=SearchMode.VECTOR, vector=q(unit_rows(1, 16, 0)), limit=10_000
                )
                assert len(vec) % per_batch == 0
                seen[total] += 1
                reading.set()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sum(seen.values()) >= 2
    assert backend.count(TENANT, M) == batches * per_batch
    assert_consistent(backend.path)


def test_a_failed_inner_batch_undoes_only_itself(backend: SQLiteBackend) -> None:
    with backend.batch():
        backend.upsert(TENANT, M, [message("msg_outer", "outer write")])
        with pytest.raises(RuntimeError), backend.batch():
            backend.upsert(TENANT, M, [message("msg_inner", "inner write")])
            raise RuntimeError("inner failure")
        backend.upsert(TENANT, M, [message("msg_after", "written afterwards")])
    assert sorted(m.id for m in backend.find(TENANT, M)) == ["msg_after", "msg_outer"]
    assert backend.search(TENANT, M, mode=SearchMode.KEYWORD, text="inner") == []


def test_connections_of_other_threads_are_closed_by_close(path: Path) -> None:
    backend = SQLiteBackend(path)
    backend.ensure_tenant(TENANT)
    started, release = threading.Event(), threading.Event()

    def use() -> None:
        backend.count(TENANT, M)
        started.set()
        release.wait(timeout=30)

    worker = threading.Thread(target=use)
    worker.start()
    assert started.wait(timeout=30)
    backend.close()
    release.set()
    worker.join(timeout=30)
    with pytest.raises(StorageError):
        backend.list_tenants()


# -- vector search and its cache ----------------------------------------------------------------


def _brute_force(
    ids: list[str],
    rows: np.ndarray[Any, np.dtype[np.float32]],
    query: np.ndarray[Any, np.dtype[np.float32]],
    k: int,
) -> list[str]:
    return [ids[i] for i in np.argsort(-(rows @ query), kind="stable")[:k]]


def test_every_vector_search_path_is_exact(backend: SQLiteBackend) -> None:
    n, dim = 6000, 16
    rows = unit_rows(n, dim, 3)
    ids = [f"msg_{i:05d}" for i in range(n)]
    records = [
        message(ids[i], f"text {i}", profile_id=f"prf_{i % 50}", minutes=i) for i in range(n)
    ]
    backend.upsert(TENANT, M, records, Vectors(MODEL, rows))
    query = unit_rows(1, dim, 4)[0]

    def search(where: Where) -> list[str]:
        hits = backend.search(
            TENANT, M, mode=SearchMode.VECTOR, vector=q(query), where=where, limit=7
        )
        return [h.record.id for h in hits]

    narrow = Where(eq={"profile_id": "prf_7"})
    broad = Where(lt={"ts": T0 + timedelta(minutes=5000)})
    in_narrow = [i for i in range(n) if i % 50 == 7]
    in_broad = list(range(5000))
    # no cache yet: narrow reads rows directly, broad builds the cache
    assert search(narrow) == _brute_force([ids[i] for i in in_narrow], rows[in_narrow], query, 7)
    assert search(broad) == _brute_force([ids[i] for i in in_broad], rows[in_broad], query, 7)
    # cache valid: whole tenant, and both filters through the cache's mask
    assert search(ALL) == _brute_force(ids, rows, query, 7)
    assert search(narrow) == _brute_force([ids[i] for i in in_narrow], rows[in_narrow], query, 7)
    assert search(broad) == _brute_force([ids[i] for i in in_broad], rows[in_broad], query, 7)


def test_writes_from_another_connection_invalidate_the_vector_cache(
    backend: SQLiteBackend, path: Path
) -> None:
    rows = unit_rows(20, 8, 9)
    backend.upsert(TENANT, M, [message(f"msg_{i}", "x") for i in range(20)], Vectors(MODEL, rows))
    target = unit_rows(1, 8, 10)[0]
    first = backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(target))
    assert "msg_new" not in [h.record.id for h in first]
    with SQLiteBackend(path) as other:  # another process, as far as the cache can tell
        other.upsert(TENANT, M, [message("msg_new", "y")], Vectors(MODEL, target.reshape(1, -1)))
        hits = backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(target), limit=1)
        assert [h.record.id for h in hits] == ["msg_new"]
        other.delete(TENANT, M, Where(any_of={"id": ["msg_new"]}))
        hits = backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(target), limit=100)
        assert "msg_new" not in [h.record.id for h in hits] and len(hits) == 20
        other.drop_tenant(TENANT)
    with pytest.raises(NotFoundError):
        backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(target))
    backend.ensure_tenant(TENANT)
    assert backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(target)) == []


def test_a_rolled_back_batch_does_not_poison_the_vector_cache(backend: SQLiteBackend) -> None:
    e1, e2 = np.eye(2, 8, dtype=np.float32)
    backend.upsert(
        TENANT,
        M,
        [message("msg_base", "base")],
        Vectors(MODEL, ((e1 + e2) / 2)[None].astype(np.float32)),
    )
    with pytest.raises(RuntimeError), backend.batch():
        backend.upsert(TENANT, M, [message("msg_ghost", "ghost")], Vectors(MODEL, e1[None]))
        inside = backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(e1))
        assert [h.record.id for h in inside] == ["msg_ghost", "msg_base"]
        raise RuntimeError
    # The next write commits the version number the rolled-back batch had used.
    backend.upsert(TENANT, M, [message("msg_real", "real")], Vectors(MODEL, e2[None]))
    hits = backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(e1))
    assert [h.record.id for h in hits] == ["msg_base", "msg_real"]


def test_vector_dimensions_must_match_the_model(backend: SQLiteBackend) -> None:
    backend.upsert(TENANT, M, [message("msg_1", "x")], Vectors(MODEL, unit_rows(1, 8, 1)))
    with pytest.raises(ValidationError, match="dimensions"):
        backend.upsert(TENANT, M, [message("msg_2", "y")], Vectors(MODEL, unit_rows(1, 16, 1)))
    with pytest.raises(ValidationError, match="dimensions"):
        backend.search(TENANT, M, mode=SearchMode.VECTOR, vector=q(unit_rows(1, 16, 2)[0]))
    backend.upsert(TENANT, M, [message("msg_2", "y")], Vectors("bigger", unit_rows(1, 16, 1)))
    assert backend.count(TENANT, M) == 2


# -- keyword queries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ('what\'s "this" -- OR (x', ["x"]),
        ("What did Caroline do last weekend?", ["caroline", "last", "weekend"]),
        ("what is it", ["what", "is", "it"]),  # only stopwords: keep them
        ("Refund REFUND refund!", ["refund"]),
        ("NEAR(order AND shipping)", ["near", "order", "shipping"]),
        ("snake_case col:value", ["snake", "case", "col", "value"]),
        ("Café Zürich", ["café", "zürich"]),
        ("", []),
        ("-- ?! ()", []),
    ],
)
def test_keyword_query_terms(text: str, terms: list[str]) -> None:
    assert fts_query_terms(text) == terms


def test_keyword_query_terms_are_bounded() -> None:
    assert len(fts_query_terms(" ".join(f"word{i}" for i in range(1000)))) == 64


def test_stopwords_do_not_drown_the_content_words(backend: SQLiteBackend) -> None:
    backend.upsert(
        TENANT,
        M,
        [
            message("msg_1", "What did you do? What did they do? What do you do?"),
            message("msg_2", "what is it, what was it, what did it do"),
            message("msg_3", "Caroline went kayaking on the lake"),
            message("msg_4", "Did you do what I asked?"),
        ],
    )
    hits = backend.search(TENANT, M, mode=SearchMode.KEYWORD, text="What did Caroline do?")
    assert [h.record.id for h in hits] == ["msg_3"]


@pytest.mark.parametrize(
    "other", ["acme ", "Acme", "acme\u0301", 'o\'brien "co"', "ac", "acmeacme"]
)
def test_tenants_with_similar_names_stay_apart(backend: SQLiteBackend, other: str) -> None:
    backend.ensure_tenant(other)
    backend.upsert(
        TENANT, M, [message("msg_1", "shared words here")], Vectors(MODEL, unit_rows(1, 8, 1))
    )
    backend.upsert(
        other,
        M,
        [message("msg_1", "shared words here", tenant=other)],
        Vectors(MODEL, unit_rows(1, 8, 1)),
    )
    for tenant in (TENANT, other):
        for hits in (
            backend.search(tenant, M, mode=SearchMode.KEYWORD, text="shared"),
            backend.search(tenant, M, mode=SearchMode.VECTOR, vector=q(unit_rows(1, 8, 1)[0])),
        ):
            assert [h.record.tenant for h in hits] == [tenant]
    assert backend.drop_tenant(other)[M.value] == 1
    assert backend.count(TENANT, M) == 1


def test_fts_index_follows_every_write(backend: SQLiteBackend) -> None:
    backend.upsert(
        TENANT,
        M,
        [message(f"msg_{i}", f"text {i}") for i in range(30)],
        Vectors(MODEL, unit_rows(30, 8, 1)),
    )
    backend.upsert(TENANT, M, [message(f"msg_{i}", f"new text {i}") for i in range(0, 30, 2)])
    backend.delete(TENANT, M, Where(any_of={"id": [f"msg_{i}" for i in range(0, 30, 3)]}))
    assert_consistent(backend.path)
    assert backend.count(TENANT, M) == 20
    backend.drop_tenant(TENANT)
    assert_consistent(backend.path)
