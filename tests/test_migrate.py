"""``convmem migrate``: a tenant copied between backends, vectors included,
verified by counts; SQLite to SQLite always, and through a live Weaviate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memory_core.backends.base import COLLECTIONS, Backend, Collection, SearchMode, Vectors
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.cli.app import app
from memory_core.errors import ConflictError, NotFoundError
from memory_core.memory import Memory
from memory_core.migrate import migrate_tenant

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
M = Collection.MESSAGES
runner = CliRunner()


def seed(db: Path, tenant: str = "acme") -> None:
    """Two customers, a few conversations, through the engine (hash embedder)."""
    with Memory.open(db, embedder="hash") as store:
        memory = store.tenants.add(tenant)
        for i, (who, texts) in enumerate(
            [
                ("phone:+16175550142", ["My router keeps dropping", "It started after the update"]),
                ("email:bob@example.com", ["Please refund the double charge", "Thanks!"]),
                ("phone:+16175550142", ["I am moving to Denver in May"]),
            ]
        ):
            memory.ingest(
                {
                    "channel": "sms" if i % 2 == 0 else "chat",
                    "customer": [who],
                    "messages": [
                        {"role": "customer", "text": t, "ts": T0 + timedelta(minutes=10 * i + j)}
                        for j, t in enumerate(texts)
                    ],
                }
            )


def snapshot(backend: Backend, tenant: str) -> dict[str, list[str]]:
    return {c.value: [r.model_dump_json() for r in backend.find(tenant, c)] for c in COLLECTIONS}


def vector_hits(backend: Backend, tenant: str, query: Vectors) -> list[tuple[str, float]]:
    hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query, limit=10)
    return [(h.record.id, round(h.score, 4)) for h in hits]


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SQLiteBackend]:
    seed(tmp_path / "source.db")
    backend = SQLiteBackend(tmp_path / "source.db")
    yield backend
    backend.close()


def some_query(backend: SQLiteBackend) -> Vectors:
    (_, vectors), *_ = [page for page in backend.export("acme", M) if page[1] is not None]
    assert vectors is not None
    return Vectors(vectors.model_id, vectors.array[:1] + np.float32(0.01))


def test_sqlite_to_sqlite_copies_everything_with_vectors(
    source: SQLiteBackend, tmp_path: Path
) -> None:
    target = SQLiteBackend(tmp_path / "target.db")
    seen: list[tuple[str, int, int]] = []
    report = migrate_tenant(
        source, target, "acme", batch_size=2, progress=lambda *a: seen.append(a)
    )
    assert report.ok and report.records > 0
    by_name = {c.collection: c for c in report.collections}
    assert by_name["messages"].with_vectors == by_name["messages"].source == 5
    assert by_name["messages"].target_with_vectors == 5
    assert snapshot(target, "acme") == snapshot(source, "acme")
    query = some_query(source)
    assert vector_hits(target, "acme", query) == vector_hits(source, "acme", query)
    assert ("messages", 5, 5) in seen  # progress reached the end of the collection
    target.close()


def test_the_target_tenant_is_never_overwritten_silently(
    source: SQLiteBackend, tmp_path: Path
) -> None:
    target = SQLiteBackend(tmp_path / "target.db")
    assert migrate_tenant(source, target, "acme").ok
    with pytest.raises(ConflictError, match="replace"):
        migrate_tenant(source, target, "acme")
    assert migrate_tenant(source, target, "acme", replace=True).ok
    with pytest.raises(NotFoundError):
        migrate_tenant(source, target, "nobody")
    target.close()


def test_migrate_command_prints_verified_counts(source: SQLiteBackend, tmp_path: Path) -> None:
    src, dst = f"sqlite:///{source.path}", f"sqlite:///{tmp_path / 'cli-target.db'}"
    result = runner.invoke(app, ["migrate", "--from", src, "--to", dst, "--tenant", "acme"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "messages" in result.output
    again = runner.invoke(
        app, ["migrate", "--from", src, "--to", dst, "-t", "acme", "--replace", "--json"]
    )
    assert again.exit_code == 0, again.output
    report = json.loads(again.output)
    assert report["ok"] and report["tenant"] == "acme"
    assert {c["collection"] for c in report["collections"]} == {c.value for c in Collection}


@pytest.mark.weaviate
def test_round_trip_through_weaviate(
    source: SQLiteBackend, tmp_path: Path, weaviate_url: str
) -> None:
    from memory_core.backends.weaviate import WeaviateBackend

    back = SQLiteBackend(tmp_path / "back.db")
    with WeaviateBackend.from_url(weaviate_url, prefix="ConvmemMigrate") as weaviate:
        weaviate.drop_tenant("acme")  # a previous run on a shared server
        there = migrate_tenant(source, weaviate, "acme", batch_size=3)
        assert there.ok, there
        assert snapshot(weaviate, "acme") == snapshot(source, "acme")
        query = some_query(source)
        ids = [i for i, _ in vector_hits(source, "acme", query)]
        assert [i for i, _ in vector_hits(weaviate, "acme", query)] == ids
        for (_, a), (_, b) in zip(
            vector_hits(weaviate, "acme", query), vector_hits(source, "acme", query), strict=True
        ):
            assert a == pytest.approx(b, abs=1e-3)  # cosine similarity on both
        again = migrate_tenant(weaviate, back, "acme", batch_size=4)
        assert again.ok, again
        weaviate.drop_tenant("acme")
    assert snapshot(back, "acme") == snapshot(source, "acme")
    assert vector_hits(back, "acme", query) == vector_hits(source, "acme", query)
    back.close()


@pytest.fixture(scope="session")
def weaviate_url(request: pytest.FixtureRequest) -> str:
    from tests.contract.conftest import SHARED_WEAVIATE

    request.addfinalizer(SHARED_WEAVIATE.stop)
    return SHARED_WEAVIATE.start()
