"""The behaviour every storage backend guarantees (see memory_core.backends.base).

These tests only use the Backend protocol and assert what a caller can see,
never storage internals or exact BM25 scores, so they run unchanged on every
backend listed in ``conftest.BACKENDS``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from memory_core.backends.base import (
    ALL,
    COLLECTIONS,
    Backend,
    Collection,
    Hit,
    SearchMode,
    Vectors,
    Where,
    require,
)
from memory_core.errors import NotFoundError, ValidationError
from memory_core.models import (
    AccessRole,
    ApiKey,
    AuditEvent,
    Channel,
    Chunk,
    ConnectorState,
    Conversation,
    ConversationStatus,
    ExtractionRecord,
    ExtractionStatus,
    IdentifierKind,
    IdentifierLink,
    KnowledgeBase,
    MergeRecord,
    MergeStatus,
    Message,
    Observation,
    ObservationKind,
    ObservationStatus,
    Outcome,
    PendingMerge,
    PolicyRecord,
    Profile,
    Record,
    Role,
    Source,
    SourceType,
    Summary,
    Trait,
    TraitDefinition,
    TraitType,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MODEL = "test-model"
DIM = 8
M = Collection.MESSAGES
GHOST = f"ghost_{uuid.uuid4().hex[:8]}"  # a tenant nobody creates


# -- record builders ----------------------------------------------------------------


def profile(tenant: str, pid: str, *, minutes: int = 0, merged_into: str | None = None) -> Profile:
    return Profile(
        id=pid,
        tenant=tenant,
        created_at=T0 + timedelta(minutes=minutes),
        updated_at=T0 + timedelta(minutes=minutes),
        display_name=f"Customer {pid}",
        merged_into=merged_into,
        metadata={"crm": {"segment": "retail"}, "vip": False},
    )


def link(tenant: str, kind: IdentifierKind, value: str, profile_id: str) -> IdentifierLink:
    return IdentifierLink(
        id=f"{kind.value}:{value}",
        tenant=tenant,
        kind=kind,
        value=value,
        profile_id=profile_id,
        created_at=T0,
    )


def trait(tenant: str, profile_id: str, key: str, value: Any, source: str = "api") -> Trait:
    return Trait(
        id=f"{profile_id}:{key}",
        tenant=tenant,
        profile_id=profile_id,
        key=key,
        value=value,
        source=source,
        confidence=0.9,
        updated_at=T0,
        evidence=("msg_1", "msg_2"),
    )


def conversation(
    tenant: str, cid: str, profile_id: str, channel: Channel = Channel.SMS, minutes: int = 0
) -> Conversation:
    return Conversation(
        id=cid,
        tenant=tenant,
        profile_id=profile_id,
        channel=channel,
        status=ConversationStatus.ENDED,
        started_at=T0 + timedelta(minutes=minutes),
        ended_at=T0 + timedelta(minutes=minutes + 5),
        subject="Billing question",
        metadata={"queue": "billing"},
    )


def message(
    tenant: str,
    mid: str,
    text: str,
    *,
    profile_id: str = "prf_ann",
    conversation_id: str = "conv_1",
    minutes: float = 0,
    seq: int = 0,
    role: Role = Role.CUSTOMER,
    channel: Channel = Channel.SMS,
) -> Message:
    return Message(
        id=mid,
        tenant=tenant,
        conversation_id=conversation_id,
        profile_id=profile_id,
        channel=channel,
        role=role,
        text=text,
        ts=T0 + timedelta(minutes=minutes),
        seq=seq,
        author="phone:+16175550142",
        metadata={"source": "twilio"},
    )


def merge(tenant: str, mid: str, survivor: str) -> MergeRecord:
    """A merge record with its provenance (nested records round-trip in the body)."""
    return MergeRecord(
        id=mid,
        tenant=tenant,
        survivor_id=survivor,
        merged_at=T0,
        reason="same phone",
        profile=Profile(id=mid, tenant=tenant, created_at=T0, updated_at=T0, display_name="Ann"),
        identifiers=("phone:+16175550142", "email:ann@example.com"),
        conversations=("conv_1",),
        observations=("obs_1",),
        traits=(
            Trait(
                id=f"{mid}:tier",
                tenant=tenant,
                profile_id=mid,
                key="tier",
                value="gold",
                updated_at=T0,
            ),
        ),
        took_display_name=True,
    )


def kb(tenant: str, kid: str, name: str) -> KnowledgeBase:
    return KnowledgeBase(id=kid, tenant=tenant, name=name, created_at=T0)


def source(tenant: str, sid: str, kb_id: str, uri: str) -> Source:
    return Source(
        id=sid, tenant=tenant, kb_id=kb_id, type=SourceType.WEB, uri=uri, title=uri, tags=("x",)
    )


def chunk(tenant: str, cid: str, source_id: str, text: str, since: int = 1) -> Chunk:
    return Chunk(
        id=cid,
        tenant=tenant,
        kb_id="kb_1",
        source_id=source_id,
        since=since,
        gen=f"{source_id}:{since}",
        page_uri=f"https://example.com/{source_id}",
        page_hash="h",
        text=text,
        heading_path=("Returns", "Refunds"),
    )


def observation(
    tenant: str,
    oid: str,
    text: str,
    *,
    profile_id: str = "prf_a",
    status: ObservationStatus = ObservationStatus.ACTIVE,
    days: int = 0,
    valid_to: datetime | None = None,
) -> Observation:
    return Observation(
        id=oid,
        tenant=tenant,
        profile_id=profile_id,
        kind=ObservationKind.CONTEXT,
        text=text,
        evidence=("msg_1",),
        conversation_id="conv_1",
        trait_key="location",
        value=text,
        status=status,
        valid_from=T0 + timedelta(days=days),
        valid_to=valid_to,
        extractor="test",
    )


def summary(tenant: str, conv: str, text: str, profile_id: str = "prf_a") -> Summary:
    return Summary(
        id=f"sum:{conv}",
        tenant=tenant,
        conversation_id=conv,
        profile_id=profile_id,
        channel=Channel.CHAT,
        text=text,
        outcome=Outcome.RESOLVED,
        evidence=("msg_1",),
        extractor="test",
        ts=T0,
    )


def extraction(tenant: str, conv: str, status: ExtractionStatus) -> ExtractionRecord:
    return ExtractionRecord(
        id=conv,
        tenant=tenant,
        conversation_id=conv,
        profile_id="prf_a",
        status=status,
        extractor="heuristic-1",
    )


def unit(*components: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A unit vector in DIM dimensions from its leading components."""
    vec = np.zeros(DIM, dtype=np.float32)
    vec[: len(components)] = components
    return (vec / np.linalg.norm(vec)).astype(np.float32)


def vectors(*rows: np.ndarray[Any, np.dtype[np.float32]], model: str = MODEL) -> Vectors:
    return Vectors(model, np.stack(rows).astype(np.float32))


def query(row: np.ndarray[Any, np.dtype[np.float32]], model: str = MODEL) -> Vectors:
    return Vectors(model, row.reshape(1, -1).astype(np.float32))


def ids(items: Sequence[Record] | Sequence[Hit[Record]]) -> list[str]:
    return [item.record.id if isinstance(item, Hit) else item.id for item in items]


def assert_best_first(hits: Sequence[Hit[Record]]) -> None:
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)


# Per collection: three records, a filter selecting some of them, and the ids it selects.
SAMPLES: dict[Collection, Callable[[str], tuple[list[Record], Where, set[str]]]] = {
    Collection.PROFILES: lambda t: (
        [
            profile(t, "prf_a"),
            profile(t, "prf_b", minutes=1, merged_into="prf_a"),
            profile(t, "prf_c", minutes=2),
        ],
        Where(eq={"merged_into": None}),
        {"prf_a", "prf_c"},
    ),
    Collection.IDENTIFIERS: lambda t: (
        [
            link(t, IdentifierKind.PHONE, "+16175550142", "prf_a"),
            link(t, IdentifierKind.EMAIL, "ann@example.com", "prf_a"),
            link(t, IdentifierKind.EMAIL, "bob@example.com", "prf_b"),
        ],
        Where(eq={"kind": IdentifierKind.EMAIL, "profile_id": "prf_a"}),
        {"email:ann@example.com"},
    ),
    Collection.TRAITS: lambda t: (
        [
            trait(t, "prf_a", "tier", "gold"),
            trait(t, "prf_a", "language", "es", "extractor"),
            trait(t, "prf_b", "tier", {"name": "silver", "since": 2021}),
        ],
        Where(eq={"key": "tier"}),
        {"prf_a:tier", "prf_b:tier"},
    ),
    Collection.CONVERSATIONS: lambda t: (
        [
            conversation(t, "conv_1", "prf_a"),
            conversation(t, "conv_2", "prf_a", Channel.VOICE, 10),
            conversation(t, "conv_3", "prf_b", Channel.SMS, 20),
        ],
        Where(eq={"channel": "sms"}),
        {"conv_1", "conv_3"},
    ),
    Collection.MESSAGES: lambda t: (
        [
            message(t, "msg_1", "Hi, my order has not arrived", seq=0),
            message(t, "msg_2", "Sorry to hear that, let me check", role=Role.AI_AGENT, seq=1),
            message(t, "msg_3", "Where is my parcel?", profile_id="prf_bob", conversation_id="c2"),
        ],
        Where(eq={"conversation_id": "conv_1"}),
        {"msg_1", "msg_2"},
    ),
    Collection.MERGES: lambda t: (
        [merge(t, "prf_b", "prf_a"), merge(t, "prf_c", "prf_a"), merge(t, "prf_e", "prf_d")],
        Where(eq={"survivor_id": "prf_a"}),
        {"prf_b", "prf_c"},
    ),
    Collection.KNOWLEDGE_BASES: lambda t: (
        [kb(t, "kb_1", "faq"), kb(t, "kb_2", "policies"), kb(t, "kb_3", "faq")],
        Where(eq={"name": "faq"}),
        {"kb_1", "kb_3"},
    ),
    Collection.SOURCES: lambda t: (
        [
            source(t, "src_1", "kb_1", "https://a.example"),
            source(t, "src_2", "kb_1", "https://b.example"),
            source(t, "src_3", "kb_2", "https://a.example"),
        ],
        Where(eq={"kb_id": "kb_1", "uri": "https://a.example"}),
        {"src_1"},
    ),
    Collection.CHUNKS: lambda t: (
        [
            chunk(t, "chk_1", "src_1", "Refunds within 30 days"),
            chunk(t, "chk_2", "src_1", "Shipping is free", since=2),
            chunk(t, "chk_3", "src_2", "Returns need a receipt"),
        ],
        Where(eq={"source_id": "src_1"}, lt={"since": 2}),
        {"chk_1"},
    ),
    Collection.OBSERVATIONS: lambda t: (
        [
            observation(
                t,
                "obs_1",
                "Lives in Boston",
                days=0,
                valid_to=T0 + timedelta(days=9),
                status=ObservationStatus.SUPERSEDED,
            ),
            observation(t, "obs_2", "Lives in Denver", days=9),
            observation(t, "obs_3", "Lives in Paris", profile_id="prf_b"),
        ],  # fmt: skip
        Where(eq={"profile_id": "prf_a", "valid_to": None}),
        {"obs_2"},
    ),
    Collection.SUMMARIES: lambda t: (
        [
            summary(t, "conv_1", "Refund issued"),
            summary(t, "conv_2", "Plan upgraded"),
            summary(t, "conv_3", "Order tracked", profile_id="prf_b"),
        ],
        Where(eq={"profile_id": "prf_a"}),
        {"sum:conv_1", "sum:conv_2"},
    ),
    Collection.EXTRACTIONS: lambda t: (
        [
            extraction(t, "conv_1", ExtractionStatus.DONE),
            extraction(t, "conv_2", ExtractionStatus.PENDING),
            extraction(t, "conv_3", ExtractionStatus.DONE),
        ],
        Where(eq={"status": "pending"}),
        {"conv_2"},
    ),
    Collection.TRAIT_SCHEMA: lambda t: (
        [
            TraitDefinition(id="vip", tenant=t, type=TraitType.BOOL),
            TraitDefinition(id="seats", tenant=t, type=TraitType.INT),
            TraitDefinition(id="segment", tenant=t, type=TraitType.ENUM, values=("a", "b")),
        ],
        Where(eq={"type": "enum"}),
        {"segment"},
    ),
    Collection.POLICIES: lambda t: (
        [
            PolicyRecord(id="policy", tenant=t, policy={"retention": {}}, updated_by="ops"),
            PolicyRecord(id="draft", tenant=t, policy={}, updated_by="api"),
            PolicyRecord(id="old", tenant=t, policy={"x": [1]}, updated_by="ops"),
        ],
        Where(eq={"updated_by": "ops"}),
        {"policy", "old"},
    ),
    Collection.AUDIT: lambda t: (
        [
            AuditEvent(
                id=f"aud_{i}",
                tenant=t,
                ts=T0 + timedelta(minutes=i),
                actor=actor,
                action=action,
                target="profile:prf_a",
                details={"messages": i},
            )
            for i, (actor, action) in enumerate(
                [("api", "ingest"), ("ops", "delete_profile"), ("api", "delete_profile")]
            )
        ],
        Where(eq={"action": "delete_profile"}, gte={"ts": T0 + timedelta(minutes=2)}),
        {"aud_2"},
    ),
    Collection.API_KEYS: lambda t: (
        [
            ApiKey(id=f"key_{i}", tenant=t, name=f"k{i}", role=role, salt="00", secret_hash="ff")
            for i, role in enumerate([AccessRole.READ, AccessRole.ADMIN, AccessRole.READ])
        ],
        Where(eq={"role": "read"}),
        {"key_0", "key_2"},
    ),
    Collection.CONNECTOR_STATE: lambda t: (
        [
            ConnectorState(
                id=f"{connector}:{kind}:{key}",
                tenant=t,
                connector=connector,
                kind=kind,
                key=key,
                value="v",
                updated_at=T0 + timedelta(minutes=i),
            )
            for i, (connector, kind, key) in enumerate(
                [
                    ("segment", "seen", "m1"),
                    ("segment", "cursor", "import"),
                    ("twilio", "seen", "m1"),
                ]
            )
        ],
        Where(eq={"connector": "segment", "kind": "seen"}),
        {"segment:seen:m1"},
    ),
    Collection.PENDING_MERGES: lambda t: (
        [
            PendingMerge(
                id=f"pmg_{i}",
                tenant=t,
                profile_a=a,
                profile_b=b,
                status=status,
                reason="identifiers matched two profiles with history",
                identifiers=("phone:+16175550142",),
                created_at=T0 + timedelta(minutes=i),
            )
            for i, (a, b, status) in enumerate(
                [
                    ("prf_a", "prf_b", MergeStatus.PENDING),
                    ("prf_a", "prf_c", MergeStatus.REJECTED),
                    ("prf_d", "prf_a", MergeStatus.PENDING),
                ]
            )
        ],
        Where(eq={"status": "pending", "profile_a": "prf_a"}),
        {"pmg_0"},
    ),
}


# -- tenants ----------------------------------------------------------------------------


def test_tenants_are_created_idempotently_listed_sorted_and_dropped(backend: Backend) -> None:
    suffix = uuid.uuid4().hex[:8]
    alpha, zeta = f"alpha_{suffix}", f"zeta_{suffix}"
    backend.ensure_tenant(zeta)
    backend.ensure_tenant(alpha)
    backend.upsert(alpha, Collection.PROFILES, [profile(alpha, "prf_a")])
    backend.ensure_tenant(alpha)  # idempotent: keeps what is there
    assert backend.count(alpha, Collection.PROFILES) == 1
    listed = backend.list_tenants()
    assert listed == sorted(listed)
    assert {alpha, zeta} <= set(listed)

    counts = backend.drop_tenant(alpha)
    assert counts == {c.value: (1 if c is Collection.PROFILES else 0) for c in Collection}
    assert alpha not in backend.list_tenants()
    assert zeta in backend.list_tenants()
    with pytest.raises(NotFoundError):
        backend.count(alpha, Collection.PROFILES)
    backend.ensure_tenant(alpha)  # re-created empty
    assert backend.count(alpha, Collection.PROFILES) == 0


def test_drop_tenant_counts_every_collection(backend: Backend, tenant: str) -> None:
    for collection, sample in SAMPLES.items():
        records, _, _ = sample(tenant)
        backend.upsert(tenant, collection, records)
    assert backend.drop_tenant(tenant) == {c.value: 3 for c in Collection}


def test_drop_unknown_tenant_is_a_no_op(backend: Backend) -> None:
    assert backend.drop_tenant(GHOST) == {c.value: 0 for c in Collection}
    assert GHOST not in backend.list_tenants()


def test_ensure_tenant_rejects_an_empty_name(backend: Backend) -> None:
    with pytest.raises(ValidationError):
        backend.ensure_tenant("")


UNKNOWN_TENANT_CALLS: dict[str, Callable[[Backend], object]] = {
    "upsert": lambda b: b.upsert(GHOST, Collection.PROFILES, [profile(GHOST, "prf_a")]),
    "get": lambda b: b.get(GHOST, Collection.PROFILES, ["prf_a"]),
    "find": lambda b: b.find(GHOST, Collection.PROFILES),
    "count": lambda b: b.count(GHOST, Collection.PROFILES),
    "delete": lambda b: b.delete(GHOST, Collection.PROFILES, ALL),
    "keyword": lambda b: b.search(GHOST, M, mode=SearchMode.KEYWORD, text="refund"),
    "vector": lambda b: b.search(GHOST, M, mode=SearchMode.VECTOR, vector=query(unit(1))),
}


@pytest.mark.parametrize("call", list(UNKNOWN_TENANT_CALLS))
def test_unknown_tenant_raises_not_found(backend: Backend, call: str) -> None:
    with pytest.raises(NotFoundError, match="ensure_tenant"):
        UNKNOWN_TENANT_CALLS[call](backend)


# -- records ----------------------------------------------------------------------------


@pytest.mark.parametrize("collection", list(Collection), ids=str)
def test_round_trip(backend: Backend, tenant: str, collection: Collection) -> None:
    records, where, selected = SAMPLES[collection](tenant)
    backend.upsert(tenant, collection, records)
    by_id = {r.id: r for r in records}
    wanted = [records[2].id, "missing", records[0].id]
    assert backend.get(tenant, collection, wanted) == [by_id[records[2].id], by_id[records[0].id]]
    assert backend.get(tenant, collection, []) == []
    assert backend.find(tenant, collection) == sorted(records, key=lambda r: r.id)
    assert backend.count(tenant, collection) == 3
    assert set(ids(backend.find(tenant, collection, where))) == selected
    assert backend.count(tenant, collection, where) == len(selected)

    assert backend.delete(tenant, collection, where) == len(selected)
    left = [r for r in records if r.id not in selected]
    assert backend.find(tenant, collection) == sorted(left, key=lambda r: r.id)
    assert backend.get(tenant, collection, list(selected)) == []
    assert backend.delete(tenant, collection, where) == 0
    assert backend.delete(tenant, collection, ALL) == len(left)
    assert backend.count(tenant, collection) == 0


# A string filter field of each collection, changed by the replace test.
REPLACED_FIELD = {
    Collection.PROFILES: "merged_into",
    Collection.IDENTIFIERS: "profile_id",
    Collection.TRAITS: "source",
    Collection.CONVERSATIONS: "profile_id",
    Collection.MESSAGES: "conversation_id",
    Collection.MERGES: "survivor_id",
    Collection.KNOWLEDGE_BASES: "name",
    Collection.SOURCES: "uri",
    Collection.CHUNKS: "page_uri",
    Collection.OBSERVATIONS: "trait_key",
    Collection.SUMMARIES: "conversation_id",
    Collection.EXTRACTIONS: "extractor",
    Collection.TRAIT_SCHEMA: "declared_by",
    Collection.POLICIES: "updated_by",
    Collection.AUDIT: "actor",
    Collection.API_KEYS: "name",
    Collection.CONNECTOR_STATE: "connector",
    Collection.PENDING_MERGES: "profile_b",
}


@pytest.mark.parametrize("collection", list(Collection), ids=str)
def test_upsert_replaces_by_id(backend: Backend, tenant: str, collection: Collection) -> None:
    records, _, _ = SAMPLES[collection](tenant)
    backend.upsert(tenant, collection, records)
    field = REPLACED_FIELD[collection]
    assert field in COLLECTIONS[collection].filter_fields
    changed = records[0].model_copy(update={field: "replaced"})
    backend.upsert(tenant, collection, [changed])
    assert backend.count(tenant, collection) == 3
    assert backend.get(tenant, collection, [changed.id]) == [changed]
    assert ids(backend.find(tenant, collection, Where(eq={field: "replaced"}))) == [changed.id]


def test_replaced_message_is_reindexed_and_loses_its_old_vector(
    backend: Backend, tenant: str
) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "The zebra escaped")], vectors(unit(1)))
    backend.upsert(tenant, M, [message(tenant, "msg_1", "A giraffe arrived")])
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text="zebra") == []
    assert ids(backend.search(tenant, M, mode=SearchMode.KEYWORD, text="giraffe")) == ["msg_1"]
    assert backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1))) == []
    backend.upsert(tenant, M, [message(tenant, "msg_1", "A giraffe arrived")], vectors(unit(0, 1)))
    hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(0, 1)))
    assert ids(hits) == ["msg_1"]


def test_duplicate_ids_in_one_upsert_keep_the_last(backend: Backend, tenant: str) -> None:
    first, second = message(tenant, "msg_1", "first draft"), message(tenant, "msg_1", "final text")
    backend.upsert(tenant, M, [first, second], vectors(unit(1), unit(0, 1)))
    assert backend.get(tenant, M, ["msg_1"]) == [second]
    assert ids(backend.search(tenant, M, mode=SearchMode.KEYWORD, text="final")) == ["msg_1"]
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text="draft") == []


def test_where_semantics(backend: Backend, tenant: str) -> None:
    backend.upsert(
        tenant,
        Collection.PROFILES,
        [
            profile(tenant, "prf_a", minutes=0),
            profile(tenant, "prf_b", minutes=10, merged_into="prf_a"),
            profile(tenant, "prf_c", minutes=20),
            profile(tenant, "prf_d", minutes=30, merged_into="prf_c"),
        ],
    )

    def found(where: Where) -> list[str]:
        return ids(backend.find(tenant, Collection.PROFILES, where))

    assert found(Where(eq={"merged_into": None})) == ["prf_a", "prf_c"]
    assert found(Where(eq={"merged_into": "prf_c"})) == ["prf_d"]
    assert found(Where(any_of={"merged_into": ["prf_a", "prf_c"]})) == ["prf_b", "prf_d"]
    assert found(Where(any_of={"merged_into": [None, "prf_a"]})) == ["prf_a", "prf_b", "prf_c"]
    assert found(Where(any_of={"merged_into": []})) == []
    assert backend.count(tenant, Collection.PROFILES, Where(any_of={"merged_into": []})) == 0
    assert backend.delete(tenant, Collection.PROFILES, Where(any_of={"merged_into": []})) == 0
    assert found(Where(any_of={"id": ["prf_d", "prf_a", "nope"]})) == ["prf_a", "prf_d"]
    many = [f"nope_{i}" for i in range(1500)]  # long lists work too
    assert found(Where(any_of={"id": [*many, "prf_b"]})) == ["prf_b"]
    assert ids(backend.get(tenant, Collection.PROFILES, [*many, "prf_c", "prf_a"])) == [
        "prf_c",
        "prf_a",
    ]
    assert found(Where(gte={"created_at": T0 + timedelta(minutes=10)})) == [
        "prf_b",
        "prf_c",
        "prf_d",
    ]
    assert found(Where(lt={"created_at": T0 + timedelta(minutes=10)})) == ["prf_a"]
    window = Where(
        gte={"created_at": T0 + timedelta(minutes=10)},
        lt={"created_at": T0 + timedelta(minutes=30)},
    )
    assert found(window) == ["prf_b", "prf_c"]
    assert found(window.and_(Where(eq={"merged_into": None}))) == ["prf_c"]
    # naive datetimes are UTC, aware ones in any zone compare as the same instant
    naive = datetime(2024, 5, 1, 9, 20)
    assert found(Where(gte={"created_at": naive})) == ["prf_c", "prf_d"]
    east = (T0 + timedelta(minutes=20)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert found(Where(eq={"created_at": east})) == ["prf_c"]
    assert backend.count(tenant, Collection.PROFILES, Where(eq={"merged_into": None})) == 2


def test_where_on_enums_numbers_and_strings(backend: Backend, tenant: str) -> None:
    backend.upsert(
        tenant,
        M,
        [
            message(tenant, "msg_1", "hello", seq=0, channel=Channel.SMS),
            message(tenant, "msg_2", "hello", seq=1, channel=Channel.CHAT, role=Role.AI_AGENT),
            message(tenant, "msg_3", "hello", seq=2, channel=Channel.CHAT),
        ],
    )
    assert ids(backend.find(tenant, M, Where(eq={"channel": Channel.CHAT}))) == ["msg_2", "msg_3"]
    assert ids(backend.find(tenant, M, Where(eq={"channel": "chat", "role": "customer"}))) == [
        "msg_3"
    ]
    assert ids(backend.find(tenant, M, Where(gte={"seq": 1}, lt={"seq": 2}))) == ["msg_2"]
    assert ids(backend.find(tenant, M, Where(any_of={"role": [Role.AI_AGENT]}))) == ["msg_2"]


def test_order_by_limit_offset(backend: Backend, tenant: str) -> None:
    minutes = {"msg_e": 3, "msg_b": 1, "msg_d": 1, "msg_a": 2, "msg_c": 0}
    backend.upsert(tenant, M, [message(tenant, m, "text", minutes=t) for m, t in minutes.items()])
    ascending = ["msg_c", "msg_b", "msg_d", "msg_a", "msg_e"]  # ties broken by id
    assert ids(backend.find(tenant, M, order_by="ts")) == ascending
    assert ids(backend.find(tenant, M, order_by="ts", descending=True)) == ascending[::-1]
    pages = [backend.find(tenant, M, order_by="ts", limit=2, offset=o) for o in (0, 2, 4)]
    assert [ids(p) for p in pages] == [ascending[:2], ascending[2:4], ascending[4:]]
    assert backend.find(tenant, M, order_by="ts", limit=0) == []
    assert ids(backend.find(tenant, M, order_by="ts", offset=3)) == ascending[3:]
    assert ids(backend.find(tenant, M, limit=2)) == ["msg_a", "msg_b"]  # default order: id
    assert ids(backend.find(tenant, M, order_by="id", descending=True, limit=1)) == ["msg_e"]
    recent = backend.find(
        tenant,
        M,
        Where(gte={"ts": T0 + timedelta(minutes=1)}),
        order_by="ts",
        descending=True,
        limit=2,
    )
    assert ids(recent) == ["msg_e", "msg_a"]


UNKNOWN_FIELD_CALLS: dict[str, Callable[[Backend, str], object]] = {
    "find": lambda b, t: b.find(t, M, Where(eq={"colour": "red"})),
    "find_any_of": lambda b, t: b.find(t, M, Where(any_of={"tenant": ["x"]})),
    "order_by": lambda b, t: b.find(t, M, order_by="text"),
    "count": lambda b, t: b.count(t, M, Where(gte={"nope": 1})),
    "delete": lambda b, t: b.delete(t, M, Where(lt={"nope": 1})),
    "search": lambda b, t: b.search(
        t, M, mode=SearchMode.KEYWORD, text="hi", where=Where(eq={"text": "hi"})
    ),
}


@pytest.mark.parametrize("call", list(UNKNOWN_FIELD_CALLS))
def test_unknown_filter_field_is_rejected(backend: Backend, tenant: str, call: str) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "hi")])
    with pytest.raises(ValidationError, match="profile_id"):  # the message lists allowed fields
        UNKNOWN_FIELD_CALLS[call](backend, tenant)
    assert backend.count(tenant, M) == 1


BAD_UPSERTS: dict[str, Callable[[str], tuple[Collection, list[Any], Vectors | None]]] = {
    "wrong_model": lambda t: (M, [message(t, "msg_1", "hi"), profile(t, "prf_a")], None),
    "other_tenant": lambda t: (
        M,
        [message(t, "msg_1", "hi"), message("someone_else", "msg_2", "hi")],
        None,
    ),
    "vector_rows": lambda t: (M, [message(t, "msg_1", "hi")], vectors(unit(1), unit(0, 1))),
    "vector_1d": lambda t: (M, [message(t, "msg_1", "hi")], Vectors(MODEL, unit(1))),
    "float64": lambda t: (
        M,
        [message(t, "msg_1", "hi")],
        Vectors(MODEL, np.ones((1, DIM), dtype=np.float64)),
    ),
    "nan": lambda t: (
        M,
        [message(t, "msg_1", "hi")],
        Vectors(MODEL, np.full((1, DIM), np.nan, np.float32)),
    ),
    "not_searchable": lambda t: (Collection.PROFILES, [profile(t, "prf_a")], vectors(unit(1))),
}


@pytest.mark.parametrize("case", list(BAD_UPSERTS))
def test_invalid_upserts_are_rejected_and_write_nothing(
    backend: Backend, tenant: str, case: str
) -> None:
    collection, records, vecs = BAD_UPSERTS[case](tenant)
    good = message(tenant, "msg_0", "already here")
    backend.upsert(tenant, M, [good])
    with pytest.raises(ValidationError):
        backend.upsert(tenant, collection, records, vecs)
    assert backend.find(tenant, M) == [good]
    assert backend.count(tenant, Collection.PROFILES) == 0


def test_reads_return_the_collections_model(backend: Backend, tenant: str) -> None:
    backend.upsert(tenant, Collection.PROFILES, [profile(tenant, "prf_a")])
    backend.upsert(tenant, M, [message(tenant, "msg_1", "hello there")], vectors(unit(1)))
    found: list[Profile] = backend.get(tenant, Collection.PROFILES, ["prf_a"])
    listed: list[Message] = backend.find(tenant, M)
    hits: list[Hit[Message]] = backend.search(tenant, M, mode=SearchMode.KEYWORD, text="hello")
    assert [type(r) for r in found] == [Profile]
    assert [type(r) for r in listed] == [Message]
    assert [type(h.record) for h in hits] == [Message]


def test_a_collection_can_be_named_by_its_value(backend: Backend, tenant: str) -> None:
    backend.upsert(tenant, Collection.PROFILES, [profile(tenant, "prf_a")])
    by_name: Any = "profiles"  # not typed, but accepted as before
    assert ids(backend.get(tenant, by_name, ["prf_a"])) == ["prf_a"]
    assert backend.count(tenant, by_name) == 1
    unknown: Any = "nope"
    with pytest.raises(ValidationError, match="Unknown collection 'nope'; known: profiles"):
        backend.count(tenant, unknown)


def test_require_returns_the_record_or_names_what_is_missing(backend: Backend, tenant: str) -> None:
    stored = profile(tenant, "prf_a")
    backend.upsert(tenant, Collection.PROFILES, [stored])
    found: Profile = require(backend, tenant, Collection.PROFILES, "prf_a")
    assert found == stored
    with pytest.raises(NotFoundError) as caught:
        require(backend, tenant, Collection.API_KEYS, "key_1")
    assert str(caught.value) == f"API key 'key_1' does not exist in tenant {tenant!r}"
    assert caught.value.kind == "api_key"
    with pytest.raises(NotFoundError) as caught:
        require(backend, tenant, Collection.PROFILES, "prf_b", what="customer", kind="customer")
    assert str(caught.value) == f"customer 'prf_b' does not exist in tenant {tenant!r}"
    assert caught.value.kind == "customer"
    with pytest.raises(NotFoundError, match="ensure_tenant") as caught:
        require(backend, GHOST, Collection.PROFILES, "prf_a")
    assert caught.value.kind == "tenant"


# -- tenant isolation ----------------------------------------------------------------------


def _twin_corpus(backend: Backend, tenant: str) -> None:
    texts = [
        "I need a refund for the blue jacket",
        "My parcel never arrived in Denver",
        "Please switch my plan to the premium tier",
    ]
    records = [
        message(tenant, f"msg_{i}", text, profile_id="prf_ann", minutes=i, seq=i)
        for i, text in enumerate(texts)
    ]
    backend.upsert(tenant, Collection.PROFILES, [profile(tenant, "prf_ann")])
    backend.upsert(tenant, M, records, vectors(unit(1), unit(0, 1), unit(0, 0, 1)))


def _only(tenant: str, items: Sequence[Record] | Sequence[Hit[Record]]) -> None:
    for item in items:
        record = item.record if isinstance(item, Hit) else item
        assert record.tenant == tenant


def test_tenants_with_identical_data_never_see_each_other(
    backend: Backend, tenant: str, other_tenant: str
) -> None:
    _twin_corpus(backend, tenant)
    _twin_corpus(backend, other_tenant)
    for mine in (tenant, other_tenant):
        _only(mine, backend.get(mine, M, ["msg_0", "msg_1", "msg_2"]))
        _only(mine, backend.find(mine, M))
        _only(mine, backend.find(mine, Collection.PROFILES))
        assert backend.count(mine, M) == 3
        for hits in (
            backend.search(mine, M, mode=SearchMode.KEYWORD, text="refund jacket", limit=50),
            backend.search(mine, M, mode=SearchMode.VECTOR, vector=query(unit(1)), limit=50),
            backend.search(
                mine,
                M,
                mode=SearchMode.HYBRID,
                text="parcel Denver",
                vector=query(unit(1)),
                limit=50,
            ),
        ):
            assert hits
            _only(mine, hits)
            assert len(ids(hits)) == len(set(ids(hits)))
            assert len(hits) <= 3

    # Writes in one tenant leave the other untouched.
    backend.upsert(tenant, M, [message(tenant, "msg_0", "replaced in the first tenant only")])
    assert backend.get(other_tenant, M, ["msg_0"]) == [
        message(other_tenant, "msg_0", "I need a refund for the blue jacket")
    ]
    assert backend.delete(tenant, M, Where(eq={"profile_id": "prf_ann"})) == 3
    assert backend.count(tenant, M) == 0
    assert backend.count(other_tenant, M) == 3
    assert ids(backend.search(other_tenant, M, mode=SearchMode.KEYWORD, text="refund jacket")) == [
        "msg_0"
    ]
    assert ids(
        backend.search(other_tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1)), limit=1)
    ) == ["msg_0"]

    _twin_corpus(backend, tenant)
    counts = backend.drop_tenant(tenant)
    assert counts[M.value] == 3 and counts[Collection.PROFILES.value] == 1
    assert tenant not in backend.list_tenants()
    assert backend.count(other_tenant, M) == 3
    assert backend.count(other_tenant, Collection.PROFILES) == 1
    assert ids(backend.search(other_tenant, M, mode=SearchMode.KEYWORD, text="premium")) == [
        "msg_2"
    ]
    hits = backend.search(other_tenant, M, mode=SearchMode.VECTOR, vector=query(unit(0, 1)))
    assert ids(hits)[0] == "msg_1"
    _only(other_tenant, hits)


def test_profile_filter_isolates_search(backend: Backend, tenant: str) -> None:
    ann = message(tenant, "msg_ann", "Can you help me with my account?", profile_id="prf_ann")
    bob = message(tenant, "msg_bob", "refund refund the blue jacket refund", profile_id="prf_bob")
    eve = message(tenant, "msg_eve", "blue jacket refund please", profile_id="prf_eve")
    backend.upsert(tenant, M, [ann, bob, eve], vectors(unit(0, 1), unit(1), unit(1, 0.1)))
    q = query(unit(1))
    for where, allowed in (
        (Where(eq={"profile_id": "prf_ann"}), {"msg_ann"}),
        (Where(any_of={"profile_id": ["prf_ann", "prf_eve"]}), {"msg_ann", "msg_eve"}),
        (Where(eq={"profile_id": "prf_nobody"}), set()),
    ):
        for hits in (
            backend.search(
                tenant, M, mode=SearchMode.KEYWORD, text="blue jacket refund", where=where
            ),
            backend.search(tenant, M, mode=SearchMode.VECTOR, vector=q, where=where),
            backend.search(
                tenant, M, mode=SearchMode.HYBRID, text="blue jacket refund", vector=q, where=where
            ),
        ):
            assert set(ids(hits)) <= allowed
    vec_hits = backend.search(
        tenant, M, mode=SearchMode.VECTOR, vector=q, where=Where(eq={"profile_id": "prf_ann"})
    )
    assert ids(vec_hits) == ["msg_ann"]


def test_search_respects_other_filters(backend: Backend, tenant: str) -> None:
    backend.upsert(
        tenant,
        M,
        [
            message(tenant, "msg_1", "refund for order 1", minutes=0, channel=Channel.SMS),
            message(tenant, "msg_2", "refund for order 2", minutes=10, channel=Channel.CHAT),
            message(tenant, "msg_3", "refund for order 3", minutes=20, channel=Channel.SMS),
        ],
        vectors(unit(1), unit(1, 0.1), unit(1, 0.2)),
    )
    where = Where(eq={"channel": "sms"}, lt={"ts": T0 + timedelta(minutes=15)})
    for hits in (
        backend.search(tenant, M, mode=SearchMode.KEYWORD, text="refund order", where=where),
        backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1)), where=where),
        backend.search(
            tenant, M, mode=SearchMode.HYBRID, text="refund", vector=query(unit(1)), where=where
        ),
    ):
        assert ids(hits) == ["msg_1"]
    empty = Where(any_of={"profile_id": []})
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text="refund", where=empty) == []
    assert (
        backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1)), where=empty) == []
    )


# -- search ------------------------------------------------------------------------------


def test_keyword_search_ranks_rare_terms_first(backend: Backend, tenant: str) -> None:
    texts = {
        "msg_1": "Thanks for your help with the order",
        "msg_2": "The order is on its way, thanks for waiting",
        "msg_3": "I am planning a snorkel trip to Zanzibar next month",
        "msg_4": "Can I change the delivery address for my order?",
        "msg_5": "Thanks, have a nice trip",
    }
    backend.upsert(tenant, M, [message(tenant, k, v) for k, v in texts.items()])
    hits = backend.search(tenant, M, mode=SearchMode.KEYWORD, text="snorkelling in Zanzibar?")
    assert ids(hits)[0] == "msg_3"
    assert_best_first(hits)
    assert all(hit.score > 0 for hit in hits)
    hits = backend.search(tenant, M, mode=SearchMode.KEYWORD, text="order", limit=2)
    assert len(hits) == 2 and set(ids(hits)) <= {"msg_1", "msg_2", "msg_4"}


@pytest.mark.parametrize(
    "text",
    [
        'what\'s "this" -- OR (x',
        "NEAR(a b",
        "*",
        '"',
        "AND",
        "text: refund",
        "^refund",
        "-refund",
        "a'b",
        "refund)",
        "(",
        "{scope}",
        "ünïcödé café",
        "😀",
        "x" * 5000,
        "",
    ],
)
def test_keyword_search_accepts_any_text(backend: Backend, tenant: str, text: str) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "refund for the cafe order")])
    hits = backend.search(tenant, M, mode=SearchMode.KEYWORD, text=text)
    assert set(ids(hits)) <= {"msg_1"}


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!", "-- ()"])
def test_keyword_search_without_words_finds_nothing(
    backend: Backend, tenant: str, text: str
) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "refund please")])
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text=text) == []


def test_keyword_search_ignores_case_and_diacritics(backend: Backend, tenant: str) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "Meet me at the Café in Zürich")])
    assert ids(backend.search(tenant, M, mode=SearchMode.KEYWORD, text="CAFE zurich")) == ["msg_1"]


def test_vector_search_returns_the_exact_nearest_neighbour(backend: Backend, tenant: str) -> None:
    rng = np.random.default_rng(7)
    stored = rng.normal(size=(40, DIM)).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    records = [message(tenant, f"msg_{i:02d}", f"text {i}") for i in range(40)]
    backend.upsert(tenant, M, records, Vectors(MODEL, stored))
    for _ in range(5):
        q = rng.normal(size=DIM).astype(np.float32)
        expected = np.argsort(-(stored @ (q / np.linalg.norm(q))))[:5]
        hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(q), limit=5)
        assert ids(hits) == [f"msg_{i:02d}" for i in expected]
        assert_best_first(hits)
        assert hits[0].score == pytest.approx(
            float(stored[expected[0]] @ q / np.linalg.norm(q)), abs=1e-4
        )


def test_vector_search_only_compares_its_model(backend: Backend, tenant: str) -> None:
    backend.upsert(
        tenant,
        M,
        [message(tenant, "msg_1", "one"), message(tenant, "msg_2", "two")],
        vectors(unit(1), unit(1, 0.01), model="other-model"),
    )
    backend.upsert(tenant, M, [message(tenant, "msg_3", "three")], vectors(unit(0, 1)))
    for where in (ALL, Where(eq={"profile_id": "prf_ann"})):
        hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1)), where=where)
        assert ids(hits) == ["msg_3"]
        other = backend.search(
            tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1), "other-model"), where=where
        )
        assert ids(other) == ["msg_1", "msg_2"]
        unknown = backend.search(
            tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1), "unknown-model"), where=where
        )
        assert unknown == []
    hybrid = backend.search(
        tenant, M, mode=SearchMode.HYBRID, text="nothing matches", vector=query(unit(1)), alpha=1.0
    )
    assert ids(hybrid) == ["msg_3"]


def test_vector_search_with_nothing_stored_is_empty(backend: Backend, tenant: str) -> None:
    assert backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1))) == []
    backend.upsert(tenant, M, [message(tenant, "msg_1", "no vector here")])
    assert backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1))) == []


def test_hybrid_returns_items_found_by_either_side(backend: Backend, tenant: str) -> None:
    keyword_only = message(tenant, "msg_kw", "Where is my quokka plushie?")  # stored without vector
    vector_only = message(tenant, "msg_vec", "Completely unrelated words")
    backend.upsert(tenant, M, [keyword_only])
    backend.upsert(tenant, M, [vector_only], vectors(unit(1)))
    hits = backend.search(
        tenant, M, mode=SearchMode.HYBRID, text="quokka plushie", vector=query(unit(1))
    )
    assert set(ids(hits)) == {"msg_kw", "msg_vec"}
    assert_best_first(hits)
    leaning = backend.search(
        tenant, M, mode=SearchMode.HYBRID, text="quokka", vector=query(unit(1)), alpha=0.9
    )
    assert ids(leaning)[0] == "msg_vec"
    leaning = backend.search(
        tenant, M, mode=SearchMode.HYBRID, text="quokka", vector=query(unit(1)), alpha=0.1
    )
    assert ids(leaning)[0] == "msg_kw"
    assert (
        len(
            backend.search(
                tenant, M, mode=SearchMode.HYBRID, text="quokka", vector=query(unit(1)), limit=1
            )
        )
        == 1
    )


def test_search_limit(backend: Backend, tenant: str) -> None:
    records = [message(tenant, f"msg_{i}", f"refund request number {i}") for i in range(12)]
    backend.upsert(tenant, M, records, Vectors(MODEL, np.tile(unit(1), (12, 1))))
    for mode in SearchMode:
        hits = backend.search(
            tenant, M, mode=mode, text="refund request", vector=query(unit(1)), limit=5
        )
        assert len(hits) == 5
        assert (
            backend.search(tenant, M, mode=mode, text="refund", vector=query(unit(1)), limit=0)
            == []
        )


BAD_SEARCHES: dict[str, Callable[[Backend, str], object]] = {
    "not_searchable": lambda b, t: b.search(
        t, Collection.PROFILES, mode=SearchMode.KEYWORD, text="ann"
    ),
    "keyword_without_text": lambda b, t: b.search(t, M, mode=SearchMode.KEYWORD),
    "vector_without_vector": lambda b, t: b.search(t, M, mode=SearchMode.VECTOR),
    "hybrid_without_vector": lambda b, t: b.search(t, M, mode=SearchMode.HYBRID, text="x"),
    "two_query_rows": lambda b, t: b.search(
        t, M, mode=SearchMode.VECTOR, vector=vectors(unit(1), unit(0, 1))
    ),
    "zero_query": lambda b, t: b.search(
        t, M, mode=SearchMode.VECTOR, vector=Vectors(MODEL, np.zeros((1, DIM), np.float32))
    ),
    "alpha": lambda b, t: b.search(
        t, M, mode=SearchMode.HYBRID, text="x", vector=query(unit(1)), alpha=1.5
    ),
    "negative_limit": lambda b, t: b.search(t, M, mode=SearchMode.KEYWORD, text="x", limit=-1),
}


@pytest.mark.parametrize("case", list(BAD_SEARCHES))
def test_invalid_searches_are_rejected(backend: Backend, tenant: str, case: str) -> None:
    backend.upsert(tenant, M, [message(tenant, "msg_1", "x")], vectors(unit(1)))
    with pytest.raises(ValidationError):
        BAD_SEARCHES[case](backend, tenant)


# -- deletion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        Where(any_of={"id": ["msg_gone"]}),
        Where(eq={"conversation_id": "conv_gone"}),
        Where(eq={"profile_id": "prf_gone"}),
        Where(lt={"ts": T0 + timedelta(minutes=1)}),
    ],
    ids=["by_id", "by_conversation", "by_profile", "by_time"],
)
def test_deleted_messages_never_come_back(backend: Backend, tenant: str, where: Where) -> None:
    gone = message(
        tenant,
        "msg_gone",
        "secret pelican password",
        profile_id="prf_gone",
        conversation_id="conv_gone",
        minutes=0,
    )
    kept = [
        message(tenant, "msg_keep1", "pelican sightings at the harbour", minutes=5),
        message(tenant, "msg_keep2", "password reset request", minutes=6),
    ]
    backend.upsert(tenant, M, [gone, *kept], vectors(unit(1), unit(1, 1), unit(1, 0, 1)))
    assert backend.delete(tenant, M, where) == 1

    assert backend.get(tenant, M, ["msg_gone"]) == []
    assert "msg_gone" not in ids(backend.find(tenant, M))
    assert backend.count(tenant, M) == 2
    assert backend.count(tenant, M, Where(eq={"profile_id": "prf_gone"})) == 0
    q = query(unit(1))
    for hits in (
        backend.search(tenant, M, mode=SearchMode.KEYWORD, text="secret pelican password"),
        backend.search(tenant, M, mode=SearchMode.VECTOR, vector=q),
        backend.search(
            tenant, M, mode=SearchMode.VECTOR, vector=q, where=Where(eq={"profile_id": "prf_gone"})
        ),
        backend.search(tenant, M, mode=SearchMode.HYBRID, text="secret pelican", vector=q),
    ):
        assert "msg_gone" not in ids(hits)
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text="secret") == []
    assert set(ids(backend.search(tenant, M, mode=SearchMode.VECTOR, vector=q))) == {
        "msg_keep1",
        "msg_keep2",
    }


# -- batches and concurrency --------------------------------------------------------------


def test_batch_commits_together(backend: Backend, tenant: str) -> None:
    with backend.batch():
        backend.upsert(tenant, Collection.PROFILES, [profile(tenant, "prf_ann")])
        backend.upsert(tenant, M, [message(tenant, "msg_1", "hello there")], vectors(unit(1)))
        with backend.batch():  # nested: joins the outer batch
            backend.upsert(tenant, Collection.TRAITS, [trait(tenant, "prf_ann", "tier", "gold")])
        assert backend.count(tenant, M) == 1  # the batch sees its own writes
    assert backend.count(tenant, Collection.PROFILES) == 1
    assert backend.count(tenant, Collection.TRAITS) == 1
    assert ids(backend.search(tenant, M, mode=SearchMode.KEYWORD, text="hello")) == ["msg_1"]


def test_exception_in_batch_rolls_everything_back(atomic_backend: Backend, tenant: str) -> None:
    backend = atomic_backend
    backend.upsert(tenant, M, [message(tenant, "msg_0", "before the batch")], vectors(unit(0, 1)))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), backend.batch():
        backend.upsert(tenant, Collection.PROFILES, [profile(tenant, "prf_ann")])
        backend.upsert(tenant, M, [message(tenant, "msg_1", "inside the batch")], vectors(unit(1)))
        backend.upsert(tenant, M, [message(tenant, "msg_0", "overwritten inside")])
        backend.delete(tenant, M, Where(any_of={"id": ["msg_0"]}))
        with backend.batch():
            backend.upsert(tenant, Collection.TRAITS, [trait(tenant, "prf_ann", "tier", "gold")])
        raise Boom

    assert backend.count(tenant, Collection.PROFILES) == 0
    assert backend.count(tenant, Collection.TRAITS) == 0
    assert ids(backend.find(tenant, M)) == ["msg_0"]
    assert backend.get(tenant, M, ["msg_0"]) == [message(tenant, "msg_0", "before the batch")]
    assert backend.search(tenant, M, mode=SearchMode.KEYWORD, text="inside") == []
    assert ids(backend.search(tenant, M, mode=SearchMode.KEYWORD, text="before")) == ["msg_0"]
    assert ids(backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1)))) == [
        "msg_0"
    ]
    backend.upsert(tenant, M, [message(tenant, "msg_2", "after the batch")])  # still writable
    assert backend.count(tenant, M) == 2


def test_concurrent_writers_and_a_searcher(backend: Backend, tenant: str) -> None:
    writers, per_writer, chunk = 4, 200, 20
    errors: list[BaseException] = []
    done = threading.Event()
    start = threading.Barrier(writers + 1)

    def write(w: int) -> None:
        try:
            start.wait(timeout=30)
            for first in range(0, per_writer, chunk):
                batch = [
                    message(
                        tenant,
                        f"msg_{w}_{i:03d}",
                        f"writer {w} refund number {i}",
                        profile_id=f"prf_{w}",
                        conversation_id=f"conv_{w}",
                        seq=i,
                    )
                    for i in range(first, first + chunk)
                ]
                rng = np.random.default_rng(w * 1000 + first)
                vecs = rng.normal(size=(chunk, DIM)).astype(np.float32)
                backend.upsert(tenant, M, batch, Vectors(MODEL, vecs))
        except BaseException as exc:  # reported below
            errors.append(exc)

    def search() -> None:
        try:
            start.wait(timeout=30)
            while not done.is_set():
                for hits in (
                    backend.search(tenant, M, mode=SearchMode.KEYWORD, text="refund", limit=5),
                    backend.search(tenant, M, mode=SearchMode.VECTOR, vector=query(unit(1))),
                    backend.search(
                        tenant,
                        M,
                        mode=SearchMode.VECTOR,
                        vector=query(unit(1)),
                        where=Where(eq={"profile_id": "prf_1"}),
                    ),
                ):
                    _only(tenant, hits)
                backend.count(tenant, M)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    searcher = threading.Thread(target=search)
    for thread in [*threads, searcher]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    searcher.join(timeout=60)
    assert not errors, errors
    assert backend.count(tenant, M) == writers * per_writer
    for w in range(writers):
        assert backend.count(tenant, M, Where(eq={"profile_id": f"prf_{w}"})) == per_writer
    hits = backend.search(tenant, M, mode=SearchMode.KEYWORD, text="writer 3 refund", limit=800)
    assert len(hits) == writers * per_writer
