"""The SQLite backend's schema: numbered migrations and the row layout they define.

Each migration is written out as literal DDL and never changes once released:
a store records which versions it has applied in ``schema_migrations`` and the
next release adds migration ``N + 1`` rather than editing an old one. The DDL is
deliberately not generated from the pydantic models, so the schema only moves
when a migration says so.

Layout (migration 1): one table per collection with ``tenant`` and ``id``, one
column per filter field (times as REAL epoch seconds, enums as their value,
bools as 0/1), then the record's JSON ``body`` last, so filter columns stay in
the row's local payload and scans never touch overflow pages. Messages also
carry their embedding (``vector``, float32 bytes, unit length) with its
``vector_model``, a stable ``rid`` shared with the FTS5 index ``messages_fts``
(columns ``scope`` -- tenant/profile tokens -- and ``text``), and a row in
``collection_versions`` that every write bumps so in-process vector caches can
tell whether they are stale.

Besides the migrations, this module holds what encodes into that layout --
records (:class:`Statements`, :func:`stored_value`), filters
(:func:`compile_where`) and FTS scopes (:func:`scope_token`, :func:`fts_match`)
-- and the check that the migrated schema has a column for every filter field,
so the layout and its encoders change together.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from memory_core.backends.base import COLLECTIONS, CollectionSpec, Where
from memory_core.errors import SchemaMismatchError, ValidationError
from memory_core.models import Record, as_utc

__all__ = [
    "IN_CHUNK",
    "LATEST_VERSION",
    "MIGRATIONS",
    "STATEMENTS",
    "TOKENIZER",
    "Filter",
    "Migration",
    "Statements",
    "applied_versions",
    "check_columns",
    "compile_where",
    "fts_match",
    "fts_scope",
    "migrate",
    "scope_token",
    "stored_value",
]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_INITIAL = (
    """CREATE TABLE tenants (
        name TEXT PRIMARY KEY,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE collection_versions (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (tenant, collection)
    ) WITHOUT ROWID""",
    # -- profiles
    """CREATE TABLE profiles (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "merged_into" TEXT,
        "created_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX profiles_merged_into ON profiles (tenant, "merged_into")',
    'CREATE INDEX profiles_created_at ON profiles (tenant, "created_at")',
    # -- identifiers
    """CREATE TABLE identifiers (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "kind" TEXT,
        "value" TEXT,
        "profile_id" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX identifiers_kind_value ON identifiers (tenant, "kind", "value")',
    'CREATE INDEX identifiers_profile_id ON identifiers (tenant, "profile_id")',
    # -- traits
    """CREATE TABLE traits (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_id" TEXT,
        "key" TEXT,
        "source" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX traits_profile_id_key ON traits (tenant, "profile_id", "key")',
    'CREATE INDEX traits_key ON traits (tenant, "key")',
    # -- conversations
    """CREATE TABLE conversations (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_id" TEXT,
        "channel" TEXT,
        "status" TEXT,
        "started_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX conversations_profile_id ON conversations (tenant, "profile_id", "started_at")',
    'CREATE INDEX conversations_started_at ON conversations (tenant, "started_at")',
    'CREATE INDEX conversations_status ON conversations (tenant, "status")',
    # -- messages (searchable)
    """CREATE TABLE messages (
        rid INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "conversation_id" TEXT,
        "profile_id" TEXT,
        "channel" TEXT,
        "role" TEXT,
        "ts" REAL,
        "seq" INTEGER,
        vector_model TEXT,
        body TEXT NOT NULL,
        vector BLOB,
        UNIQUE (tenant, id)
    )""",
    'CREATE INDEX messages_profile_id ON messages (tenant, "profile_id", "ts")',
    'CREATE INDEX messages_conversation_id ON messages (tenant, "conversation_id", "seq")',
    'CREATE INDEX messages_ts ON messages (tenant, "ts")',
    "CREATE INDEX messages_vector_model ON messages (tenant, vector_model)",
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        scope, text, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    # -- merges
    """CREATE TABLE merges (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "survivor_id" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX merges_survivor_id ON merges (tenant, "survivor_id")',
)

# Migration 2: observations and summaries (searchable, laid out like messages, with
# ``observations_fts`` and ``summaries_fts``), extraction records and the trait schema.
_OBSERVATIONS = (
    """CREATE TABLE observations (
        rid INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_id" TEXT,
        "conversation_id" TEXT,
        "kind" TEXT,
        "status" TEXT,
        "trait_key" TEXT,
        "source" TEXT,
        "valid_from" REAL,
        "valid_to" REAL,
        "created_at" REAL,
        "updated_at" REAL,
        vector_model TEXT,
        body TEXT NOT NULL,
        vector BLOB,
        UNIQUE (tenant, id)
    )""",
    'CREATE INDEX observations_profile_id ON observations (tenant, "profile_id", "status")',
    'CREATE INDEX observations_trait_key ON observations (tenant, "profile_id", "trait_key")',
    'CREATE INDEX observations_conversation_id ON observations (tenant, "conversation_id")',
    'CREATE INDEX observations_valid_from ON observations (tenant, "valid_from")',
    "CREATE INDEX observations_vector_model ON observations (tenant, vector_model)",
    """CREATE VIRTUAL TABLE observations_fts USING fts5(
        scope, text, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TABLE summaries (
        rid INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_id" TEXT,
        "conversation_id" TEXT,
        "channel" TEXT,
        "outcome" TEXT,
        "ts" REAL,
        "created_at" REAL,
        vector_model TEXT,
        body TEXT NOT NULL,
        vector BLOB,
        UNIQUE (tenant, id)
    )""",
    'CREATE INDEX summaries_profile_id ON summaries (tenant, "profile_id", "ts")',
    'CREATE INDEX summaries_conversation_id ON summaries (tenant, "conversation_id")',
    "CREATE INDEX summaries_vector_model ON summaries (tenant, vector_model)",
    """CREATE VIRTUAL TABLE summaries_fts USING fts5(
        scope, text, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TABLE extractions (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_id" TEXT,
        "conversation_id" TEXT,
        "status" TEXT,
        "extractor" TEXT,
        "updated_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX extractions_profile_id ON extractions (tenant, "profile_id")',
    'CREATE INDEX extractions_status ON extractions (tenant, "status")',
    """CREATE TABLE trait_schema (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "type" TEXT,
        "declared_by" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
)

# Migration 3: enterprise knowledge. Chunks are searchable like messages; their
# FTS ``scope`` holds tenant, knowledge-base ("k") and source ("s") tokens.
_KNOWLEDGE = (
    """CREATE TABLE knowledge_bases (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "name" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX knowledge_bases_name ON knowledge_bases (tenant, "name")',
    """CREATE TABLE sources (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "kb_id" TEXT,
        "type" TEXT,
        "status" TEXT,
        "uri" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX sources_kb_id_uri ON sources (tenant, "kb_id", "uri")',
    'CREATE INDEX sources_status ON sources (tenant, "status")',
    """CREATE TABLE chunks (
        rid INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "kb_id" TEXT,
        "source_id" TEXT,
        "page_uri" TEXT,
        "since" INTEGER,
        "gen" TEXT,
        vector_model TEXT,
        body TEXT NOT NULL,
        vector BLOB,
        UNIQUE (tenant, id)
    )""",
    'CREATE INDEX chunks_kb_id ON chunks (tenant, "kb_id")',
    'CREATE INDEX chunks_source_id ON chunks (tenant, "source_id", "page_uri", "since")',
    'CREATE INDEX chunks_gen ON chunks (tenant, "gen")',
    "CREATE INDEX chunks_vector_model ON chunks (tenant, vector_model)",
    """CREATE VIRTUAL TABLE chunks_fts USING fts5(
        scope, text, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
)

# Migration 4: governance. Per-tenant policies, the append-only audit log (ids and
# counts only, never deleted text) and API keys (salted SHA-256 digests, no secrets).
_GOVERNANCE = (
    """CREATE TABLE policies (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "updated_by" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    """CREATE TABLE audit (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "ts" REAL,
        "actor" TEXT,
        "action" TEXT,
        "target" TEXT,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX audit_ts ON audit (tenant, "ts")',
    'CREATE INDEX audit_action ON audit (tenant, "action", "ts")',
    'CREATE INDEX audit_target ON audit (tenant, "target", "ts")',
    """CREATE TABLE api_keys (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "name" TEXT,
        "role" TEXT,
        "created_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
)

# Migration 5: durable purge jobs. A transaction that deletes rows or replaces
# indexed text records, in the same transaction, what the purge must do: merge a
# full-text index (``target`` is its table) or only checkpoint the WAL (``target``
# ""). ``seq`` grows with each record, so a purge removes only the jobs it finished
# (see :meth:`~memory_core.backends.sqlite.SQLiteBackend.purge_deleted`).
_PURGE_JOBS = (
    """CREATE TABLE purge_jobs (
        target TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        created_at TEXT NOT NULL
    ) WITHOUT ROWID""",
)

# Migration 6: connector state. Cursors, processed external event ids and value
# versions of the connectors (``memory_core.connectors``), per tenant, so a killed
# run resumes and a replayed event changes nothing.
_CONNECTOR_STATE = (
    """CREATE TABLE connector_state (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "connector" TEXT,
        "kind" TEXT,
        "updated_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX connector_state_kind ON connector_state (tenant, "connector", "kind")',
)

# Migration 7: identity. Merges identity resolution proposes instead of doing
# silently (two profiles with history, a recycled number), until confirmed or rejected.
_PENDING_MERGES = (
    """CREATE TABLE pending_merges (
        tenant TEXT NOT NULL,
        id TEXT NOT NULL,
        "profile_a" TEXT,
        "profile_b" TEXT,
        "status" TEXT,
        "created_at" REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    )""",
    'CREATE INDEX pending_merges_status ON pending_merges (tenant, "status", "created_at")',
    'CREATE INDEX pending_merges_a ON pending_merges (tenant, "profile_a")',
    'CREATE INDEX pending_merges_b ON pending_merges (tenant, "profile_b")',
)

# Migration 8: connector state names the profile it concerns (applied event ids,
# value versions, push digests, message threads of a number), so erasing a
# profile erases its connector state. Rows written before have none: migration 6
# was never released without this one.
_CONNECTOR_STATE_PROFILE = (
    'ALTER TABLE connector_state ADD COLUMN "profile_id" TEXT',
    'CREATE INDEX connector_state_profile ON connector_state (tenant, "profile_id")',
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "observations, summaries, extraction records, trait schema", _OBSERVATIONS),
    Migration(3, "enterprise knowledge", _KNOWLEDGE),
    Migration(4, "governance: policies, audit log, api keys", _GOVERNANCE),
    Migration(5, "durable purge jobs", _PURGE_JOBS),
    Migration(6, "connector state", _CONNECTOR_STATE),
    Migration(7, "identity: pending merges", _PENDING_MERGES),
    Migration(8, "connector state: the profile it concerns", _CONNECTOR_STATE_PROFILE),
)
LATEST_VERSION = MIGRATIONS[-1].version

_TRACKING = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    """Versions recorded in ``schema_migrations``, ascending (empty for a new file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is None:
        return []
    return [int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def migrate(conn: sqlite3.Connection, location: str) -> list[int]:
    """Apply pending migrations in order, inside the caller's open transaction.

    Returns the versions applied. A store written by a newer release (a version
    above :data:`LATEST_VERSION`) raises ``SchemaMismatchError`` before anything
    is changed.
    """
    done = applied_versions(conn)
    if done and done[-1] > LATEST_VERSION:
        raise SchemaMismatchError(
            f"The store at {location} has schema version {done[-1]}, but this version of "
            f"conversation-memory only knows versions up to {LATEST_VERSION}. Upgrade "
            "conversation-memory (pip install -U conversation-memory) to open it."
        )
    conn.execute(_TRACKING)
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, datetime.now(UTC).isoformat()),
        )
        applied.append(migration.version)
    return applied


def check_columns(conn: sqlite3.Connection, location: str) -> None:
    """Every collection table has a column for each filter field of its record model."""
    for spec in COLLECTIONS.values():
        table = spec.name.value
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        need = {"tenant", "id", "body", *spec.filter_fields}
        if spec.searchable:
            need |= {"vector", "vector_model"}
        if missing := need - have:
            raise SchemaMismatchError(
                f"Table {table!r} in {location} lacks columns {sorted(missing)}: the schema "
                "migrations do not match the record models. Upgrade conversation-memory."
            )


# -- encoding records into the layout ------------------------------------------------


def stored_value(value: object, field: str, *, time: bool) -> object:
    """A record or filter value as stored: epoch seconds, enum value, 0/1, ..."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).timestamp()
    if time:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValidationError(f"{field!r} holds times: compare it with a datetime, not {value!r}")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str | int | float):
        return value
    raise ValidationError(
        f"Cannot filter {field!r} on {value!r}: use str, int, float, bool, datetime or None"
    )


# Filter fields whose values are FTS scope tokens besides the tenant's, narrowest
# first: a profile, a knowledge source, a knowledge base.
_SCOPE_FIELDS = (("profile_id", "p"), ("source_id", "s"), ("kb_id", "k"))


def scope_token(kind: str, value: str) -> str:
    """The FTS ``scope`` token for a tenant (``kind`` "t"), a profile ("p"), a
    knowledge source ("s") or a knowledge base ("k").

    Hex keeps any id a single token; the trailing digit keeps the porter stemmer
    from shortening it (stemming only strips letter suffixes).
    """
    return f"{kind}{value.encode().hex()}0"


class Statements:
    """The write statements of one collection, built once from its spec."""

    def __init__(self, spec: CollectionSpec) -> None:
        table = spec.name.value
        self.spec = spec
        self.table = table
        self.fts = f"{table}_fts"
        columns = ["tenant", "id", *spec.filter_fields, "body"]
        if spec.searchable:
            columns += ["vector_model", "vector"]
        quoted = ", ".join(f'"{c}"' for c in columns)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns[2:])
        self.upsert = (
            f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (tenant, id) DO UPDATE SET {updates}"
        )
        self.fts_delete_one = (
            f"DELETE FROM {self.fts} WHERE rowid = "
            f"(SELECT rid FROM {table} WHERE tenant = ? AND id = ?)"
        )
        self.fts_insert = (
            f"INSERT INTO {self.fts} (rowid, scope, text) "
            f"SELECT rid, ?, ? FROM {table} WHERE tenant = ? AND id = ?"
        )

    def row(self, tenant: str, record: Record) -> list[object]:
        """The upsert parameters of ``record``, without the vector columns."""
        times = self.spec.time_fields
        values: list[object] = [tenant, record.id]
        values += [
            stored_value(getattr(record, f), f, time=f in times) for f in self.spec.filter_fields
        ]
        values.append(record.model_dump_json())
        return values

    def fts_row(self, tenant: str, record: Record) -> tuple[str, str, str, str]:
        """The ``fts_insert`` parameters of ``record``: scope tokens, text, tenant, id."""
        scope = [scope_token("t", tenant)]
        for field, kind in _SCOPE_FIELDS:
            value = getattr(record, field, None)
            if isinstance(value, str):
                scope.append(scope_token(kind, value))
        text = str(getattr(record, self.spec.text_field or "", "") or "")
        return " ".join(scope), text, tenant, record.id


STATEMENTS = {collection: Statements(spec) for collection, spec in COLLECTIONS.items()}


# -- encoding conditions -------------------------------------------------------------

IN_CHUNK = 500  # values per ``IN (...)`` list; longer lists go through json_each
#: The tokenizer every FTS5 table is created with (in the migrations above, as written
#: then): what a word becomes in the index.
TOKENIZER = "'porter unicode61 remove_diacritics 2'"
MAX_SCOPE_PROFILES = 64  # profile ids worth narrowing an FTS query to


@dataclass(frozen=True)
class Filter:
    """A compiled :class:`Where`: SQL conditions and their parameters."""

    sql: str  # "" or " AND cond AND cond ..."
    params: tuple[object, ...]
    empty: bool  # an empty any_of: matches nothing
    profiles: tuple[str, ...] | None  # profile ids to narrow an FTS query to
    scopes: tuple[str, ...] | None = None  # else: scope tokens (knowledge bases, sources)


def compile_where(spec: CollectionSpec, where: Where, prefix: str = "") -> Filter:
    """``where`` as SQL on ``spec``'s table (columns prefixed by ``prefix``).

    Only filter fields and ``id`` may be named; values are encoded as stored.
    """
    allowed = (*spec.filter_fields, "id")
    unknown = where.fields() - set(allowed)
    if unknown:
        raise ValidationError(
            f"Unknown filter field(s) {', '.join(sorted(unknown))} for collection "
            f"{spec.name.value!r}; allowed: {', '.join(allowed)}"
        )
    parts: list[str] = []
    params: list[object] = []
    empty = False

    def value(name: str, raw: object) -> object:
        return stored_value(raw, name, time=name in spec.time_fields)

    for name, raw in where.eq.items():
        converted = value(name, raw)
        if converted is None:
            parts.append(f'{prefix}"{name}" IS NULL')
        else:
            parts.append(f'{prefix}"{name}" = ?')
            params.append(converted)
    for name, raws in where.any_of.items():
        if isinstance(raws, str | bytes):
            raise ValidationError(f"any_of[{name!r}] must be a list of values, not a string")
        values = [value(name, raw) for raw in raws]
        present = [v for v in values if v is not None]
        if not values:
            empty = True
            continue
        alternatives: list[str] = []
        if len(present) > IN_CHUNK:
            alternatives.append(f'{prefix}"{name}" IN (SELECT value FROM json_each(?))')
            params.append(json.dumps(present))
        elif present:
            alternatives.append(f'{prefix}"{name}" IN ({", ".join("?" * len(present))})')
            params.extend(present)
        if len(present) < len(values):
            alternatives.append(f'{prefix}"{name}" IS NULL')
        parts.append("(" + " OR ".join(alternatives) + ")")
    for op, bounds in ((">=", where.gte), ("<", where.lt)):
        for name, raw in bounds.items():
            converted = value(name, raw)
            if converted is None:
                raise ValidationError(f"The range bound on {name!r} must not be None")
            parts.append(f'{prefix}"{name}" {op} ?')
            params.append(converted)

    profiles: tuple[str, ...] | None = None
    eq_profile = where.eq.get("profile_id")
    any_profiles = where.any_of.get("profile_id")
    if isinstance(eq_profile, str):
        profiles = (eq_profile,)
    elif (
        any_profiles
        and len(any_profiles) <= MAX_SCOPE_PROFILES
        and all(isinstance(p, str) for p in any_profiles)
    ):
        profiles = tuple(str(p) for p in any_profiles)
    scopes: tuple[str, ...] | None = None
    for name, kind in _SCOPE_FIELDS[1:]:  # the narrowest filtered one (profiles above)
        eq_value, any_values = where.eq.get(name), where.any_of.get(name)
        if isinstance(eq_value, str):
            any_values = [eq_value]
        if (
            any_values
            and len(any_values) <= MAX_SCOPE_PROFILES
            and all(isinstance(v, str) for v in any_values)
        ):
            scopes = tuple(scope_token(kind, str(v)) for v in any_values)
            break
    sql = "".join(f" AND {part}" for part in parts)
    return Filter(sql, tuple(params), empty, profiles, scopes)


def fts_match(
    tenant: str,
    profiles: tuple[str, ...] | None,
    terms: list[str],
    scopes: tuple[str, ...] | None = None,
) -> str:
    """The FTS5 query for any of ``terms`` within a tenant, or within some of its profiles.

    The scope only narrows the search inside the index (the SQL around it still
    checks tenant and profile): a profile's token is far more selective than the
    tenant's, and bm25() pays for every phrase's full doclist, so it is used alone.
    """
    terms_part = "text : (" + " OR ".join(f'"{term}"' for term in terms) + ")"
    return f"{fts_scope(tenant, profiles, scopes)} AND {terms_part}"


def fts_scope(
    tenant: str, profiles: tuple[str, ...] | None, scopes: tuple[str, ...] | None = None
) -> str:
    """The FTS5 query part narrowing to some profiles, else to some scope tokens
    (knowledge bases, sources), else to the tenant (see :func:`fts_match`)."""
    if profiles:
        return "scope : (" + " OR ".join(f'"{scope_token("p", p)}"' for p in profiles) + ")"
    if scopes:
        return "scope : (" + " OR ".join(f'"{token}"' for token in scopes) + ")"
    return f'scope : "{scope_token("t", tenant)}"'
