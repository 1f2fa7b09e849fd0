"""The warehouse connector live on a real PostgreSQL server, started by the suite
(see tests/connectors/_postgres.py; CI installs it with .ci/postgres.sh and sets
CONVMEM_REQUIRE_POSTGRES, so there these tests cannot be skipped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from memory_core.connectors.warehouse import pull
from memory_core.memory import Memory
from tests.connectors._postgres import PostgresServer, find_bin, unavailable
from tests.connectors.test_warehouse import check_export, check_pulled, make_customers, mapping

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bindir = find_bin()
    if bindir is None:
        unavailable("no initdb/pg_ctl (set CONVMEM_POSTGRES_BIN or run .ci/postgres.sh)")
    try:
        pytest.importorskip("psycopg")
    except pytest.skip.Exception:
        unavailable("the psycopg driver is not installed (extra: test)")
    assert bindir is not None
    server = PostgresServer(bindir)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        unavailable(f"the server did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_engine(postgres: PostgresServer) -> Iterator[sa.Engine]:
    """A fresh database on the session's server."""
    name = f"wh_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = sa.create_engine(postgres.url.rsplit("/", 1)[0] + f"/{name}")
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def test_postgres_pull_live(memory: Memory, pg_engine: sa.Engine) -> None:
    make_customers(pg_engine)
    report = pull(memory, mapping(), pg_engine)
    assert report.counts() == {"created": 4, "updated": 0, "skipped": 0, "failed": 0}
    check_pulled(memory)
    assert pull(memory, mapping(), pg_engine).total == 0  # the cursor holds


def test_postgres_export_live_in_a_schema_it_creates(memory: Memory, pg_engine: sa.Engine) -> None:
    check_export(memory, pg_engine, schema="analytics")
    with pg_engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names(schema="analytics")
    assert sorted(tables) == ["convmem_observations", "convmem_summaries", "convmem_traits"]


def test_postgres_pull_failure_is_reported_not_raised(memory: Memory, pg_engine: sa.Engine) -> None:
    report = pull(memory, mapping(), pg_engine)  # no customers table
    assert report.interrupted and report.failed == 1
    assert 'relation "customers" does not exist' in report.failures[0].reason
    assert "postgresql+psycopg://convmem@127.0.0.1" in report.failures[0].reason
