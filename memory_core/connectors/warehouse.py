"""Warehouse connector (Snowflake and any SQL database SQLAlchemy reaches): pull
rows into profile identifiers and traits, and export observations, traits and
summaries to tables.

The mapping file (TOML)::

    [warehouse]
    source = "warehouse"            # the trait source (a system of record)

    [[pull]]
    name = "customers"              # names the cursor kept in the store
    query = "SELECT id, email, phone, tier, updated_at FROM customers"
    cursor = "updated_at"           # optional: only rows past the last one pulled
    key = "id"                      # optional: tie-break for rows with equal cursors
    identifiers = { email = "email", phone = "phone", id = "crm_id" }
    traits = { tier = "tier" }

    [export]
    prefix = "convmem_"             # tables convmem_observations, _traits, _summaries
    schema = "analytics"            # optional; created if missing
    tables = ["observations", "traits", "summaries"]

A pull wraps the query as a sub-select and adds the cursor condition and order,
compiled by the database's own dialect (so the same mapping runs on SQLite,
PostgreSQL, DuckDB or Snowflake). An export creates the tables if missing and
upserts by primary key (``ON CONFLICT`` on SQLite, PostgreSQL and DuckDB,
``MERGE`` on Snowflake, update-then-insert elsewhere); after a complete export the
rows of erased records are deleted from the tables.

SQLAlchemy is imported lazily (the ``warehouse`` extra brings it with the DuckDB
driver; PostgreSQL needs ``psycopg``, Snowflake ``snowflake-sqlalchemy``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from memory_core.connectors._base import ConnectorRun, ItemOutcome, Progress, RunReport
from memory_core.connectors.mapping import FieldMapping, apply_mapped, load_toml, plain_value
from memory_core.errors import ConfigError, ValidationError
from memory_core.models import utcnow

if TYPE_CHECKING:
    import sqlalchemy as sa

    from memory_core.memory import Memory

__all__ = [
    "ExportSpec",
    "PullSpec",
    "WarehouseMapping",
    "export",
    "export_tables",
    "open_engine",
    "pull",
    "pull_statement",
    "run_every",
    "upsert_rows",
    "upsert_statement",
]

CONNECTOR = "warehouse"
BATCH_ROWS = 500
"""Rows fetched (and then committed, with the cursor) at a time."""
PROFILE_PAGE = 100

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EXPORT_TABLES = ("observations", "traits", "summaries")


@dataclass(frozen=True)
class PullSpec:
    """One ``[[pull]]``: a query and how its columns map to a profile."""

    name: str
    query: str
    mapping: FieldMapping
    cursor: str | None = None
    key: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the pull reads (mapped ones, the cursor and the key)."""
        extra = [c for c in (self.cursor, self.key) if c]
        return tuple(dict.fromkeys([*self.mapping.fields, *extra]))


@dataclass(frozen=True)
class ExportSpec:
    """The ``[export]`` table: where observations, traits and summaries go."""

    prefix: str = "convmem_"
    schema: str | None = None
    tables: tuple[str, ...] = EXPORT_TABLES


@dataclass(frozen=True)
class WarehouseMapping:
    """A warehouse mapping file: the trait source, the pulls and the export."""

    source: str
    pulls: tuple[PullSpec, ...]
    export: ExportSpec

    @classmethod
    def load(cls, path: str | Path) -> WarehouseMapping:
        return cls.from_dict(load_toml(path))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> WarehouseMapping:
        head = doc.get("warehouse", {})
        if not isinstance(head, dict):
            raise ConfigError("[warehouse] must be a table")
        source = head.get("source", "warehouse")
        if not isinstance(source, str) or not _NAME.fullmatch(source):
            raise ConfigError(f"warehouse.source must be a plain name, not {source!r}")
        pulls = []
        raw = doc.get("pull", [])
        if not isinstance(raw, list):
            raise ConfigError("[[pull]] entries must be an array of tables")
        names: set[str] = set()
        for n, item in enumerate(raw):
            where = f"pull[{n}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{where} must be a table")
            name = item.get("name", f"pull{n}")
            query = item.get("query")
            if not isinstance(name, str) or not _NAME.fullmatch(name) or name in names:
                raise ConfigError(f"{where}.name must be a unique plain name, not {name!r}")
            if not isinstance(query, str) or not query.strip():
                raise ConfigError(f"{where}.query is required (a SELECT statement)")
            names.add(name)
            cursor, key = item.get("cursor"), item.get("key")
            for label, value in (("cursor", cursor), ("key", key)):
                if value is not None and (not isinstance(value, str) or not _NAME.fullmatch(value)):
                    raise ConfigError(f"{where}.{label} must be a column name, not {value!r}")
            if key and not cursor:
                raise ConfigError(f"{where}.key breaks ties of the cursor: give a cursor too")
            mapping = FieldMapping.from_table(item, where)
            if not mapping.identifiers:
                raise ConfigError(f"{where}.identifiers must map at least one column")
            for column in mapping.fields:
                if not _NAME.fullmatch(column):
                    raise ConfigError(f"{where}: {column!r} is not a plain column name")
            pulls.append(PullSpec(name, query.strip().rstrip(";"), mapping, cursor, key))
        ex = doc.get("export", {})
        if not isinstance(ex, dict):
            raise ConfigError("[export] must be a table")
        prefix = ex.get("prefix", "convmem_")
        schema = ex.get("schema")
        tables = tuple(ex.get("tables", EXPORT_TABLES))
        if not isinstance(prefix, str) or (prefix and not _NAME.fullmatch(prefix)):
            raise ConfigError(f"export.prefix must be a plain name prefix, not {prefix!r}")
        if schema is not None and (not isinstance(schema, str) or not _NAME.fullmatch(schema)):
            raise ConfigError(f"export.schema must be a plain name, not {schema!r}")
        unknown = [t for t in tables if t not in EXPORT_TABLES]
        if unknown:
            raise ConfigError(
                f"export.tables: unknown {unknown}; choose from {', '.join(EXPORT_TABLES)}"
            )
        return cls(source, tuple(pulls), ExportSpec(prefix, schema, tables))


# -- SQL ---------------------------------------------------------------------------
def pull_statement(spec: PullSpec, cursor: Any = None, key: Any = None) -> sa.Select[Any]:
    """The SELECT of a pull: the query as a sub-select, its mapped columns, the rows
    past ``cursor`` (and, at an equal cursor, past ``key``), in cursor order."""
    import sqlalchemy as sa

    src = sa.text(spec.query).columns(*[sa.column(c) for c in spec.columns]).subquery("src")
    stmt = sa.select(*[src.c[c] for c in spec.columns])
    if spec.cursor:
        col = src.c[spec.cursor]
        if cursor is not None and spec.key and key is not None:
            stmt = stmt.where(
                sa.or_(
                    col > sa.bindparam("cursor", cursor),
                    sa.and_(
                        col == sa.bindparam("cursor_eq", cursor),
                        src.c[spec.key] > sa.bindparam("key", key),
                    ),
                )
            )
        elif cursor is not None:
            # without a key, rows at the last cursor value are read again (and skipped
            # as unchanged), so none sharing that value is lost
            stmt = stmt.where(col >= sa.bindparam("cursor", cursor))
        order = [col, src.c[spec.key]] if spec.key else [col]
        stmt = stmt.order_by(*order)
    return stmt


def export_tables(spec: ExportSpec) -> dict[str, sa.Table]:
    """The export tables (by export name), on their own MetaData."""
    import sqlalchemy as sa

    md = sa.MetaData(schema=spec.schema)
    ts = sa.DateTime(timezone=True)
    tables = {
        "observations": sa.Table(
            f"{spec.prefix}observations",
            md,
            sa.Column("tenant", sa.String(64), primary_key=True),
            sa.Column("id", sa.String(128), primary_key=True),
            sa.Column("profile_id", sa.String(128), nullable=False),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("trait_key", sa.String(128)),
            sa.Column("value", sa.Text),
            sa.Column("confidence", sa.Float, nullable=False),
            sa.Column("source", sa.String(64), nullable=False),
            sa.Column("valid_from", ts, nullable=False),
            sa.Column("valid_to", ts),
            sa.Column("updated_at", ts, nullable=False),
            sa.Column("exported_at", ts, nullable=False),
        ),
        "traits": sa.Table(
            f"{spec.prefix}traits",
            md,
            sa.Column("tenant", sa.String(64), primary_key=True),
            sa.Column("profile_id", sa.String(128), primary_key=True),
            sa.Column("key", sa.String(128), primary_key=True),
            sa.Column("source", sa.String(64), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),  # JSON text
            sa.Column("confidence", sa.Float, nullable=False),
            sa.Column("updated_at", ts, nullable=False),
            sa.Column("exported_at", ts, nullable=False),
        ),
        "summaries": sa.Table(
            f"{spec.prefix}summaries",
            md,
            sa.Column("tenant", sa.String(64), primary_key=True),
            sa.Column("conversation_id", sa.String(128), primary_key=True),
            sa.Column("profile_id", sa.String(128), nullable=False),
            sa.Column("channel", sa.String(32), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("ts", ts, nullable=False),
            sa.Column("exported_at", ts, nullable=False),
        ),
    }
    return {name: tables[name] for name in spec.tables}


def upsert_statement(table: sa.Table, dialect: str) -> sa.Executable:
    """An upsert of one row given as bind parameters named like the columns:
    ``INSERT ... ON CONFLICT DO UPDATE`` (sqlite, postgresql, duckdb) or ``MERGE``
    (snowflake). Raises ConfigError for other dialects (see :func:`upsert_rows`)."""
    import sqlalchemy as sa

    keys = [c.name for c in table.primary_key.columns]
    rest = [c.name for c in table.columns if c.name not in keys]
    if dialect in ("sqlite", "postgresql", "duckdb"):
        from sqlalchemy.dialects import postgresql, sqlite

        # DuckDB speaks PostgreSQL's ON CONFLICT
        insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        ins = insert(table)
        return cast(
            "sa.Executable",
            ins.on_conflict_do_update(index_elements=keys, set_={c: ins.excluded[c] for c in rest}),
        )
    if dialect == "snowflake":
        from snowflake.sqlalchemy.custom_commands import MergeInto

        src = sa.select(
            *[sa.bindparam(c.name, type_=c.type).label(c.name) for c in table.columns]
        ).subquery("src")
        merge = MergeInto(
            target=table,
            source=src,
            on=sa.and_(*[table.c[k] == src.c[k] for k in keys]),
        )
        merge.when_matched_then_update().values(**{c: src.c[c] for c in rest})
        merge.when_not_matched_then_insert().values(
            **{c.name: src.c[c.name] for c in table.columns}
        )
        return merge
    raise ConfigError(f"no native upsert for dialect {dialect!r}")


def upsert_rows(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *, native: bool = True
) -> None:
    """Upsert ``rows`` into ``table`` in the connection's transaction: the dialect's
    native upsert, else (or with ``native=False``) an UPDATE by primary key followed
    by an INSERT of the rows it did not find."""
    import sqlalchemy as sa

    if not rows:
        return
    dialect = conn.dialect.name
    if native and dialect in ("sqlite", "postgresql", "duckdb", "snowflake"):
        stmt = upsert_statement(table, dialect)
        if dialect == "snowflake":
            for row in rows:  # MERGE takes one source row per execution here
                conn.execute(stmt, row)
        else:
            conn.execute(stmt, list(rows))
        return
    keys = [c.name for c in table.primary_key.columns]
    rest = [c.name for c in table.columns if c.name not in keys]
    update = (
        sa.update(table)
        .where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys])
        .values({c: sa.bindparam(f"v_{c}") for c in rest})
    )
    for row in rows:
        params = {f"k_{k}": row[k] for k in keys} | {f"v_{c}": row[c] for c in rest}
        if conn.execute(update, params).rowcount == 0:
            conn.execute(sa.insert(table), row)


# -- running -------------------------------------------------------------------------
def open_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for ``url`` (ConfigError naming what to install when the
    dialect or its driver is missing; the password is never shown)."""
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        raise ConfigError(
            f"no SQLAlchemy dialect for this URL ({exc}): install the database's dialect, "
            "e.g. pip install 'conversation-memory[warehouse]' (DuckDB), psycopg "
            "(PostgreSQL) or snowflake-sqlalchemy (Snowflake)"
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"the database driver is not installed: {exc}") from None


def _shown_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _db_error(engine: sa.Engine, exc: Exception) -> str:
    first = " ".join(str(exc).split())[:300]
    return f"{_shown_url(engine)}: {first}"


def encode_cursor(value: Any, key: Any = None) -> str:
    """A pull's position as stored: the last cursor value (typed) and key."""
    import datetime as dt
    import decimal

    kind = "str"
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, decimal.Decimal):
        kind, value = "decimal", str(value)
    elif isinstance(value, dt.datetime):
        kind, value = "datetime", value.isoformat()
    elif isinstance(value, dt.date):
        kind, value = "date", value.isoformat()
    else:
        value = str(value)
    return json.dumps({"t": kind, "v": value, "k": plain_value(key)})


def decode_cursor(raw: str | None) -> tuple[Any, Any]:
    """The ``(cursor value, key)`` of a stored position (``(None, None)``: none)."""
    import datetime as dt
    import decimal

    if not raw:
        return None, None
    try:
        data = json.loads(raw)
        kind, value = data["t"], data["v"]
        if kind == "datetime":
            value = dt.datetime.fromisoformat(value)
        elif kind == "date":
            value = dt.date.fromisoformat(value)
        elif kind == "decimal":
            value = decimal.Decimal(value)
        return value, data.get("k")
    except (ValueError, KeyError, TypeError, decimal.InvalidOperation):
        raise ConfigError("the stored warehouse cursor is not valid: run with --restart") from None


def pull(
    memory: Memory,
    mapping: WarehouseMapping,
    url: str | sa.Engine,
    *,
    dry_run: bool = False,
    restart: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Run every ``[[pull]]`` of ``mapping`` against the database at ``url``: each row
    becomes a profile's identifiers and traits (source ``warehouse.source``). With a
    cursor column only rows past the stored position are read, and the position is
    stored after every batch of rows, so a failed or killed run resumes there. A
    database error stops the run (``interrupted``, the error among the failures)."""
    import sqlalchemy as sa

    engine = open_engine(url) if isinstance(url, str) else url
    with ConnectorRun(memory, CONNECTOR, dry_run=dry_run, progress=progress) as run:
        done = 0
        for spec in mapping.pulls:
            try:
                done = _pull_one(run, engine, spec, mapping.source, restart, done)
            except sa.exc.SQLAlchemyError as exc:
                run.report.add(ItemOutcome.FAILED, f"warehouse:{spec.name}", _db_error(engine, exc))
                run.report.interrupted = True
                break
    if isinstance(url, str):
        engine.dispose()
    return run.report


def _pull_one(
    run: ConnectorRun,
    engine: sa.Engine,
    spec: PullSpec,
    source: str,
    restart: bool,
    done: int,
) -> int:
    cursor, key = (None, None) if restart else decode_cursor(run.state.cursor(spec.name))
    stmt = pull_statement(spec, cursor, key)
    with engine.connect() as conn:
        result = conn.execute(stmt)
        while rows := result.fetchmany(BATCH_ROWS):
            for row in rows:
                rec = dict(row._mapping)
                ident = rec.get(spec.key) if spec.key else None
                if ident is None:
                    ident = next(
                        (rec[c] for c, _ in spec.mapping.identifiers if rec.get(c) is not None),
                        done,
                    )
                ref = f"warehouse:{spec.name}:{plain_value(ident)}"
                with run.item(ref) as item:
                    apply_mapped(run, item, spec.mapping.map(rec, ref), source=source)
                done += 1
                run.tick(done, None)
            # the batch is done: a later failure resumes after its last row (a NULL
            # cursor value is no position: such rows are read by full runs only)
            last = next(
                (
                    r._mapping
                    for r in reversed(rows)
                    if spec.cursor and r._mapping[spec.cursor] is not None
                ),
                None,
            )
            if spec.cursor and last is not None:
                position = encode_cursor(last[spec.cursor], last[spec.key] if spec.key else None)
                run.report.cursor = position
                run.state.set_cursor(position, spec.name)
    return done


def export(
    memory: Memory,
    mapping: WarehouseMapping,
    url: str | sa.Engine,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Export every profile's observations (every version), traits (every source)
    and summaries to the ``[export]`` tables, created if missing, by upsert.

    Per profile: ``created`` the first time, ``updated`` when its rows changed since
    the last export (rows of records it no longer has are deleted), ``skipped``
    when unchanged. A complete run also deletes the rows of profiles erased or
    merged away since. Re-running after a failure redoes only what changed. A
    database error stops the run (``interrupted``)."""
    import sqlalchemy as sa

    engine = open_engine(url) if isinstance(url, str) else url
    tables = export_tables(mapping.export)
    with ConnectorRun(memory, CONNECTOR, dry_run=dry_run, progress=progress) as run:
        try:
            if not dry_run:
                _create_tables(engine, mapping.export, tables)
            _export_all(run, engine, tables)
        except sa.exc.SQLAlchemyError as exc:
            run.report.add(ItemOutcome.FAILED, "warehouse:export", _db_error(engine, exc))
            run.report.interrupted = True
    if isinstance(url, str):
        engine.dispose()
    return run.report


def _create_tables(engine: sa.Engine, spec: ExportSpec, tables: dict[str, sa.Table]) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        if spec.schema and conn.dialect.name != "sqlite":
            conn.execute(sa.schema.CreateSchema(spec.schema, if_not_exists=True))
        for table in tables.values():
            table.create(conn, checkfirst=True)


def _rows(memory: Memory, profile_id: str, tenant: str) -> dict[str, list[dict[str, Any]]]:
    """The export rows of one profile, by export table (``exported_at`` left out)."""
    observations = [
        {
            "tenant": tenant,
            "id": o.id,
            "profile_id": profile_id,
            "kind": o.kind.value,
            "text": o.text,
            "status": o.status.value,
            "trait_key": o.trait_key,
            "value": o.value,
            "confidence": o.confidence,
            "source": o.source,
            "valid_from": o.valid_from,
            "valid_to": o.valid_to,
            "updated_at": o.updated_at,
        }
        for o in memory.observations.list(profile_id, include_superseded=True)
    ]
    traits = [
        {
            "tenant": tenant,
            "profile_id": profile_id,
            "key": t.key,
            "source": t.source,
            "value": json.dumps(t.value, ensure_ascii=False, sort_keys=True),
            "confidence": t.confidence,
            "updated_at": t.updated_at,
        }
        for t in memory.traits.list(profile_id)
    ]
    summaries = [
        {
            "tenant": tenant,
            "conversation_id": s.conversation_id,
            "profile_id": profile_id,
            "channel": s.channel.value,
            "text": s.text,
            "outcome": s.outcome.value,
            "ts": s.ts,
        }
        for s in memory.summaries.list(profile_id, limit=None)
    ]
    return {"observations": observations, "traits": traits, "summaries": summaries}


def _digest(rows: dict[str, list[dict[str, Any]]]) -> str:
    text = json.dumps(rows, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _export_all(run: ConnectorRun, engine: sa.Engine, tables: dict[str, sa.Table]) -> None:
    import sqlalchemy as sa

    memory = run.memory
    tenant = memory.name
    visited: set[str] = set()
    offset = 0
    while page := memory.profiles.list(limit=PROFILE_PAGE, offset=offset):
        offset += len(page)
        for profile in page:
            visited.add(profile.id)
            rows = {k: v for k, v in _rows(memory, profile.id, tenant).items() if k in tables}
            digest = _digest(rows)
            before = run.state.value("exported", profile.id) or None
            with run.item(f"profile:{profile.id}") as item:
                if before == digest:
                    item.skip("unchanged since the last export")
                    continue
                counts = ", ".join(f"{len(v)} {k}" for k, v in rows.items())
                outcome = ItemOutcome.CREATED if before is None else ItemOutcome.UPDATED
                item.change(outcome, f"export {counts}")
                if run.dry_run:
                    continue
                now = utcnow()
                with engine.begin() as conn:
                    for name, table in tables.items():
                        upsert_rows(conn, table, [{**r, "exported_at": now} for r in rows[name]])
                        conn.execute(  # rows of records this profile no longer has
                            sa.delete(table).where(
                                table.c.tenant == tenant,
                                table.c.profile_id == profile.id,
                                table.c.exported_at < now,
                            )
                        )
                run.state.set_value("exported", profile.id, digest)
            run.tick(len(visited), None)
    gone = [s.key for s in run.state.list("exported") if s.key not in visited and s.value]
    for profile_id in gone:  # erased or merged away since the last export
        with run.item(f"profile:{profile_id}") as item:
            item.change(ItemOutcome.UPDATED, "delete the rows of a profile no longer held")
            if run.dry_run:
                continue
            with engine.begin() as conn:
                for table in tables.values():
                    conn.execute(
                        sa.delete(table).where(
                            table.c.tenant == tenant, table.c.profile_id == profile_id
                        )
                    )
            run.state.forget("exported", profile_id)


def run_every(
    seconds: float,
    once: Callable[[], RunReport],
    *,
    runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_report: Callable[[RunReport], None] | None = None,
) -> list[RunReport]:
    """Call ``once()`` now and then every ``seconds`` (``runs`` times, or until
    interrupted), handing each report to ``on_report``; the reports."""
    if seconds <= 0:
        raise ValidationError("the interval must be a positive number of seconds")
    reports: list[RunReport] = []
    while True:
        report = once()
        reports.append(report)
        if on_report is not None:
            on_report(report)
        if runs is not None and len(reports) >= runs:
            return reports
        sleep(seconds)
