"""The warehouse connector, live on real databases: SQLite files and DuckDB here,
PostgreSQL in test_warehouse_postgres.py; Snowflake's SQL is compiled by its
dialect and checked (no account exists here)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from memory_core.connectors import warehouse
from memory_core.connectors.warehouse import (
    WarehouseMapping,
    export,
    export_tables,
    pull,
    pull_statement,
    run_every,
    upsert_rows,
    upsert_statement,
)
from memory_core.errors import ConfigError, ValidationError
from memory_core.memory import Memory
from tests.test_ingest_cli import convmem

MAPPING = """
[warehouse]
source = "warehouse"

[[pull]]
name = "customers"
query = "SELECT id, email, phone, name, tier, lifetime_value, updated_at FROM customers"
cursor = "updated_at"
key = "id"
identifiers = { email = "email", phone = "phone" }
traits = { tier = "tier", lifetime_value = "lifetime_value" }
display_name = "name"

[export]
prefix = "convmem_"
"""

ROWS = [
    (1, "ann@example.com", "+1 617 555 0101", "Ann Lee", "gold", 1250.5, "2026-11-01 09:00:00"),
    (2, "bo@example.com", None, "Bo Chen", "silver", 310, "2026-11-01 09:05:00"),
    (3, "cy@example.com", "617-555-0103", "Cy Diaz", "bronze", 42, "2026-11-01 09:05:00"),
    (4, "di@example.com", None, "Di Ray", "gold", 990, "2026-11-02 12:00:00"),
]


def mapping(text: str = MAPPING) -> WarehouseMapping:
    import tomllib

    return WarehouseMapping.from_dict(tomllib.loads(text))


def make_customers(engine: sa.Engine, rows: list[tuple[Any, ...]] = ROWS) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS customers"))
        conn.execute(
            sa.text(
                "CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(200), "
                "phone VARCHAR(40), name VARCHAR(100), tier VARCHAR(20), "
                "lifetime_value NUMERIC(12, 2), updated_at TIMESTAMP)"
            )
        )
        insert_customers(conn, rows)


def insert_customers(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    for row in rows:
        conn.execute(
            sa.text("INSERT INTO customers VALUES (:id, :email, :phone, :name, :tier, :ltv, :at)"),
            dict(
                zip(
                    ("id", "email", "phone", "name", "tier", "ltv", "at"),
                    [*row[:6], dt.datetime.fromisoformat(row[6])],
                    strict=True,
                )
            ),
        )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(url)
    make_customers(engine)
    engine.dispose()
    return url


# -- pull ------------------------------------------------------------------------------------


def check_pulled(memory: Memory) -> None:
    """What every database's pull of ROWS must give."""
    ann = memory.profiles.get("email:ann@example.com")
    assert memory.profiles.get("phone:+16175550101").id == ann.id
    assert ann.display_name == "Ann Lee"
    views = {v.key: v for v in memory.traits.views(ann.id)}
    assert views["tier"].value == "gold" and views["tier"].source == "warehouse"
    assert views["lifetime_value"].value == 1250.5
    bo = {v.key: v.value for v in memory.traits.views("email:bo@example.com")}
    assert bo["lifetime_value"] == 310 and isinstance(bo["lifetime_value"], int)
    result = memory.recall("email:ann@example.com", "what tier is this customer")
    traits = {i.text: i.provenance.source for i in result.items if i.type == "trait"}
    assert traits["tier: gold"] == "warehouse"
    assert 'source="warehouse"' in result.context


def test_pull_from_sqlite_into_recall_then_only_changes(memory: Memory, sqlite_url: str) -> None:
    report = pull(memory, mapping(), sqlite_url)
    assert report.counts() == {"created": 4, "updated": 0, "skipped": 0, "failed": 0}
    check_pulled(memory)
    events = memory.governance.audit.list(actor="connector:warehouse")
    assert {"create_profile", "set_trait", "connector_run"} <= {e.action for e in events}

    assert pull(memory, mapping(), sqlite_url).total == 0  # nothing past the cursor
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE customers SET tier = 'platinum', updated_at = :at WHERE id = 2"),
            {"at": dt.datetime(2026, 11, 3, 8, 0)},
        )
        insert_customers(
            conn, [(5, "ed@example.com", None, "Ed Park", "silver", 5, "2026-11-03 08:00:00")]
        )
    engine.dispose()
    report = pull(memory, mapping(), sqlite_url)
    assert report.counts() == {"created": 1, "updated": 1, "skipped": 0, "failed": 0}
    assert {v.key: v.value for v in memory.traits.views("email:bo@example.com")}["tier"] == (
        "platinum"
    )
    # --restart reads everything again, and changes nothing
    again = pull(memory, mapping(), sqlite_url, restart=True)
    assert again.counts() == {"created": 0, "updated": 0, "skipped": 5, "failed": 0}


def test_a_pull_failing_mid_stream_resumes_from_the_stored_cursor(
    memory: Memory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = sa.create_engine(url)
    make_customers(engine)
    connections: list[sqlite3.Connection] = []

    @sa.event.listens_for(engine, "checkout")
    def _keep(dbapi_conn: sqlite3.Connection, _record: Any, _proxy: Any) -> None:
        connections.append(dbapi_conn)

    def fail_after_two(done: int, total: int | None) -> None:
        if done == 2:  # the database aborts the running query mid-stream
            connections[-1].interrupt()

    monkeypatch.setattr(warehouse, "BATCH_ROWS", 2)
    first = pull(memory, mapping(), engine, progress=fail_after_two)
    assert first.interrupted
    assert first.counts() == {"created": 2, "updated": 0, "skipped": 0, "failed": 1}
    assert "interrupted" in first.failures[0].reason
    assert memory.profiles.find("email:cy@example.com") is None
    second = pull(memory, mapping(), engine)
    assert not second.interrupted
    assert second.counts() == {"created": 2, "updated": 0, "skipped": 0, "failed": 0}
    assert memory.profiles.find("email:cy@example.com") is not None
    runs = memory.governance.audit.list(action="connector_run")
    assert [e.details.get("status") for e in runs] == ["interrupted", None]
    engine.dispose()


def test_a_cursor_without_a_key_rereads_only_the_last_value(
    memory: Memory, sqlite_url: str
) -> None:
    spec = mapping(MAPPING.replace('key = "id"\n', ""))
    assert pull(memory, spec, sqlite_url).created == 4
    again = pull(memory, spec, sqlite_url)
    assert again.counts() == {"created": 0, "updated": 0, "skipped": 1, "failed": 0}


def test_rows_without_a_cursor_value_do_not_break_the_cursor(
    memory: Memory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = sa.create_engine(url)
    make_customers(engine, ROWS[:2])
    with engine.begin() as conn:  # rows never stamped (NULLs sort first on SQLite)
        conn.execute(
            sa.text("INSERT INTO customers (id, email, tier) VALUES (7, 'n@example.com', 'x')")
        )
    monkeypatch.setattr(warehouse, "BATCH_ROWS", 1)
    assert pull(memory, mapping(), engine).created == 3
    assert pull(memory, mapping(), engine).total == 0
    engine.dispose()


def test_rows_with_bad_values_fail_alone(memory: Memory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = sa.create_engine(url)
    make_customers(
        engine,
        [
            (1, None, None, "Nobody", "gold", 1, "2026-11-01 09:00:00"),
            (2, "not-an-email", "12", "Bad Ids", "gold", 1, "2026-11-01 09:01:00"),
            (3, "ok@example.com", "999", "Bad Phone", "gold", 1, "2026-11-01 09:02:00"),
        ],
    )
    report = pull(memory, mapping(), engine)
    assert report.counts() == {"created": 1, "updated": 0, "skipped": 0, "failed": 2}
    assert all("no usable identifier" in f.reason for f in report.failures)
    assert any("phone identifier left out" in c.reason for c in report.changes)
    assert memory.profiles.find("email:ok@example.com") is not None
    engine.dispose()


def test_dry_run_writes_nothing_anywhere(memory: Memory, sqlite_url: str) -> None:
    report = pull(memory, mapping(), sqlite_url, dry_run=True)
    assert report.dry_run and report.created == 4
    assert any(
        "trait tier = 'gold'" in c.reason or "trait tier = gold" in c.reason for c in report.changes
    )
    assert memory.profiles.list() == []
    assert memory.governance.audit.list() == []
    memory.profiles.add(["email:ann@example.com"])
    memory.traits.set("email:ann@example.com", "tier", "gold", source="warehouse")
    plan = export(memory, mapping(), sqlite_url, dry_run=True)
    assert plan.created == 1 and any("export 0 observations" in c.reason for c in plan.changes)
    assert "convmem_traits" not in sa.inspect(sa.create_engine(sqlite_url)).get_table_names()
    assert pull(memory, mapping(), sqlite_url).total == 4  # no cursor was stored


def test_tenants_are_isolated_in_pulls_and_exports(memory: Memory, sqlite_url: str) -> None:
    acme = memory.tenants.add("acme")
    beta = memory.tenants.add("beta")
    assert pull(acme, mapping(), sqlite_url).created == 4
    assert memory.profiles.list() == [] and beta.profiles.list() == []
    assert pull(beta, mapping(), sqlite_url).created == 4  # beta's cursor is its own
    beta.traits.set("email:ann@example.com", "tier", "beta-only", source="api")
    export(acme, mapping(), sqlite_url)
    export(beta, mapping(), sqlite_url)
    beta.profiles.delete("email:ann@example.com")
    report = export(beta, mapping(), sqlite_url)
    assert report.updated == 1  # the erased profile's rows went
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT tenant, value FROM convmem_traits")).all()
    engine.dispose()
    by_tenant = {t: [v for tt, v in rows if tt == t] for t in ("acme", "beta")}
    assert len(by_tenant["acme"]) == 8  # acme's rows survive beta's erasure
    assert '"beta-only"' not in by_tenant["acme"]
    assert len(by_tenant["beta"]) == 6  # Ann's rows (3 traits) went
    assert set(by_tenant) == {t for t, _ in rows}


# -- export ----------------------------------------------------------------------------------


def seed_memory(memory: Memory) -> str:
    memory.profiles.add(["email:ann@example.com"], display_name="Ann Lee")
    memory.traits.set("email:ann@example.com", "tier", "gold", source="crm")
    memory.traits.set("email:ann@example.com", "language", "es", source="extracted")
    memory.observations.add("email:ann@example.com", "Prefers SMS over calls", "preference")
    result = memory.ingest(
        {
            "channel": "chat",
            "customer": ["email:ann@example.com"],
            "messages": [
                {"role": "customer", "text": "I moved to Denver last month."},
                {"role": "human_agent", "text": "Thanks, I updated your address."},
            ],
        }
    )
    memory.conversations.end(result.conversation.id)
    memory.observations.extract(result.conversation.id)
    return result.conversation.id


def read_tables(engine: sa.Engine, schema: str | None = None) -> dict[str, list[dict[str, Any]]]:
    out = {}
    with engine.connect() as conn:
        for name, table in export_tables(mapping().export.__class__(schema=schema)).items():
            out[name] = [dict(r._mapping) for r in conn.execute(sa.select(table))]
    return out


def check_export(memory: Memory, engine: sa.Engine, schema: str | None = None) -> None:
    """Export, re-export (nothing), change, erase: what every database must give."""
    spec = mapping() if schema is None else mapping(MAPPING + f'schema = "{schema}"\n')
    conversation_id = seed_memory(memory)
    first = export(memory, spec, engine)
    assert first.counts() == {"created": 1, "updated": 0, "skipped": 0, "failed": 0}, first
    tables = read_tables(engine, schema)
    traits = {(r["key"], r["source"]): json.loads(r["value"]) for r in tables["traits"]}
    assert traits == {
        ("tier", "crm"): "gold",
        ("language", "extracted"): "es",
        ("location", "extracted"): "Denver",  # extracted from the conversation
    }
    texts = {r["text"] for r in tables["observations"]}
    assert "Prefers SMS over calls" in texts
    assert all(r["tenant"] == memory.name for rows in tables.values() for r in rows)
    (summary,) = tables["summaries"]
    assert summary["conversation_id"] == conversation_id and summary["channel"] == "chat"

    assert export(memory, spec, engine).skipped == 1  # unchanged: nothing written
    memory.traits.set("email:ann@example.com", "tier", "platinum", source="crm")
    memory.traits.delete("email:ann@example.com", "language")
    obs = memory.observations.add(
        "email:ann@example.com",
        "Prefers email over SMS",
        "preference",
        trait_key="preferred_channel",
        value="email",
    )
    assert export(memory, spec, engine).updated == 1
    tables = read_tables(engine, schema)
    traits = {(r["key"], r["source"]): json.loads(r["value"]) for r in tables["traits"]}
    # the deleted trait's row went too
    assert traits == {("tier", "crm"): "platinum", ("location", "extracted"): "Denver"}
    assert obs.id in {r["id"] for r in tables["observations"]}

    memory.profiles.delete("email:ann@example.com")
    assert export(memory, spec, engine).updated == 1
    assert all(rows == [] for rows in read_tables(engine, schema).values())


def test_export_to_sqlite_upserts_and_follows_erasure(memory: Memory, sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    check_export(memory, engine)
    engine.dispose()


def test_generic_upsert_updates_then_inserts(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    table = export_tables(mapping().export)["traits"]
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    row = {
        "tenant": "t",
        "profile_id": "p",
        "key": "tier",
        "source": "crm",
        "value": '"gold"',
        "confidence": 1.0,
        "updated_at": now,
        "exported_at": now,
    }
    with engine.begin() as conn:
        table.create(conn)
        upsert_rows(conn, table, [row], native=False)
        upsert_rows(
            conn, table, [{**row, "value": '"platinum"'}, {**row, "key": "x"}], native=False
        )
        values = conn.execute(sa.select(table.c.key, table.c.value).order_by(table.c.key)).all()
    assert values == [("tier", '"platinum"'), ("x", '"gold"')]
    engine.dispose()


def test_duckdb_pull_and_export_live(memory: Memory, tmp_path: Path) -> None:
    pytest.importorskip("duckdb_engine")
    engine = sa.create_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    make_customers(engine)
    report = pull(memory, mapping(), engine)
    assert report.counts() == {"created": 4, "updated": 0, "skipped": 0, "failed": 0}
    check_pulled(memory)
    assert pull(memory, mapping(), engine).total == 0
    other = memory.tenants.add("exports")
    check_export(other, engine, schema="analytics")
    engine.dispose()


# -- Snowflake: compiled, not run ----------------------------------------------------------


def test_snowflake_sql_is_generated_by_its_dialect() -> None:
    from snowflake.sqlalchemy.snowdialect import SnowflakeDialect

    dialect = SnowflakeDialect()
    spec = mapping().pulls[0]
    select = str(pull_statement(spec, dt.datetime(2026, 11, 1, 9, 5), 3).compile(dialect=dialect))
    assert " ".join(select.split()) == (
        "SELECT src.email, src.phone, src.tier, src.lifetime_value, src.name, src.updated_at, "
        "src.id FROM (SELECT id, email, phone, name, tier, lifetime_value, updated_at FROM "
        "customers) AS src WHERE src.updated_at > %(cursor)s OR src.updated_at = %(cursor_eq)s "
        "AND src.id > %(key)s ORDER BY src.updated_at, src.id"
    )
    table = export_tables(mapping(MAPPING + 'schema = "analytics"\n').export)["traits"]
    merge = " ".join(str(upsert_statement(table, "snowflake").compile(dialect=dialect)).split())
    assert merge.startswith(
        "MERGE INTO analytics.convmem_traits USING (SELECT %(tenant)s AS tenant, "
        "%(profile_id)s AS profile_id, %(key)s AS key, %(source)s AS source"
    )
    assert (
        "ON analytics.convmem_traits.tenant = src.tenant AND analytics.convmem_traits.profile_id "
        "= src.profile_id AND analytics.convmem_traits.key = src.key AND "
        "analytics.convmem_traits.source = src.source" in merge
    )
    assert "WHEN MATCHED THEN UPDATE SET value = src.value, confidence = src.confidence" in merge
    assert merge.endswith(
        "WHEN NOT MATCHED THEN INSERT (tenant, profile_id, key, source, value, confidence, "
        "updated_at, exported_at) VALUES (src.tenant, src.profile_id, src.key, src.source, "
        "src.value, src.confidence, src.updated_at, src.exported_at)"
    )
    create = str(sa.schema.CreateTable(table).compile(dialect=dialect))
    assert "PRIMARY KEY (tenant, profile_id, key, source)" in create


def test_the_upserts_of_sqlite_postgresql_and_duckdb_are_on_conflict() -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    table = export_tables(mapping().export)["observations"]
    for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        sql = str(upsert_statement(table, name).compile(dialect=dialect))
        assert "ON CONFLICT (tenant, id) DO UPDATE SET profile_id = excluded.profile_id" in sql
    with pytest.raises(ConfigError, match="no native upsert"):
        upsert_statement(table, "mssql")


# -- the mapping file, the schedule ----------------------------------------------------------


def test_mapping_errors_name_the_entry() -> None:
    bad = [
        ("[[pull]]\nname = 'a'\nidentifiers = { email = 'email' }", "query is required"),
        ("[[pull]]\nquery = 'SELECT 1'", "must map at least one column"),
        (
            "[[pull]]\nquery = 'SELECT 1'\nkey = 'id'\nidentifiers = { e = 'email' }",
            "give a cursor",
        ),
        ("[[pull]]\nquery = 'x'\ncursor = 'a; DROP'\nidentifiers = { e = 'email' }", "column name"),
        ("[[pull]]\nquery = 'x'\nidentifiers = { \"e mail\" = 'email' }", "plain column name"),
        ("[export]\ntables = ['messages']", "unknown ['messages']"),
        ("[export]\nschema = 'a.b'", "export.schema"),
        ("[warehouse]\nsource = 'Data Lake'", "warehouse.source"),
    ]
    for text, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            mapping(text)


def test_bad_urls_and_missing_drivers_are_config_errors(memory: Memory) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        pull(memory, mapping(), "not a url")
    with pytest.raises(ConfigError, match="no SQLAlchemy dialect"):
        pull(memory, mapping(), "nosuchdb://host/db")


def test_every_runs_again_after_the_interval(memory: Memory, sqlite_url: str) -> None:
    sleeps: list[float] = []
    seen: list[int] = []
    reports = run_every(
        30,
        lambda: pull(memory, mapping(), sqlite_url),
        runs=3,
        sleep=sleeps.append,
        on_report=lambda r: seen.append(r.total),
    )
    assert seen == [4, 0, 0] and sleeps == [30, 30] and len(reports) == 3
    with pytest.raises(ValidationError):
        run_every(0, lambda: pull(memory, mapping(), sqlite_url))


# -- the command line --------------------------------------------------------------------------


def test_cli_pull_and_export(
    tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mapping.toml").write_text(MAPPING)
    db = str(tmp_path / "memory.db")
    common = ["--mapping", str(tmp_path / "mapping.toml"), "--db", db, "--embedder", "hash"]
    code, out, _ = convmem(
        capsys, "connect", "warehouse", "pull", *common, "--url", sqlite_url, "--dry-run", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["created"] == 4 and json.loads(out)["dry_run"]
    code, out, _ = convmem(
        capsys,
        "connect",
        "warehouse",
        "pull",
        *common,
        "--url",
        sqlite_url,
        "--json",
        "--no-progress",
    )
    assert code == 0 and json.loads(out)["created"] == 4
    code, out, _ = convmem(capsys, "connect", "warehouse", "export", *common, "--url", sqlite_url)
    assert code == 0 and "warehouse: 4 created" in out, out
    code, out, err = convmem(
        capsys, "connect", "warehouse", "pull", *common, "--url", "nosuchdb://x/y"
    )
    assert code == 2 and "no SQLAlchemy dialect" in out + err
