"""What the Weaviate backend guarantees beyond the contract: its schema check,
filter translation, byte-exact string order, keyset paging, per-model vectors,
batch error reporting, connection settings, and the server script.

Live tests run against the session's server (see tests/contract/conftest.py)
and are marked ``weaviate``; the translation tests need no server.
"""

from __future__ import annotations

import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.contract.conftest import WEAVIATE_REQUIRED  # noqa: E402

if not WEAVIATE_REQUIRED:  # in CI a missing client is an import error, not a skip
    pytest.importorskip("weaviate", reason="weaviate-client is not installed (extra: weaviate)")

import weaviate  # noqa: E402
from weaviate.classes.config import Configure, DataType, Property  # noqa: E402
from weaviate.collections.classes.batch import BatchObjectReturn, ErrorObject  # noqa: E402
from weaviate.collections.data import _DataCollection  # noqa: E402

from memory_core.backends import weaviate_query  # noqa: E402
from memory_core.backends.base import (  # noqa: E402
    ALL,
    COLLECTIONS,
    Backend,
    Collection,
    SearchMode,
    Vectors,
    Where,
)
from memory_core.backends.sqlite import SQLiteBackend  # noqa: E402
from memory_core.backends.weaviate import WeaviateBackend  # noqa: E402
from memory_core.backends.weaviate_connect import parse_weaviate_url  # noqa: E402
from memory_core.backends.weaviate_schema import (  # noqa: E402
    SCHEMA_VERSION,
    Layout,
    layouts,
    ord_key,
    valid_tenant,
    vector_name,
)
from memory_core.backends.weaviate_text import analyze, query_terms  # noqa: E402
from memory_core.config import load_settings  # noqa: E402
from memory_core.errors import (  # noqa: E402
    ConfigError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
    ValidationError,
)
from memory_core.memory import open_backend  # noqa: E402
from memory_core.models import Channel, Message, Profile, Role  # noqa: E402
from tests.contract.conftest import SHARED_WEAVIATE, weaviate_server  # noqa: E402

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
M = Collection.MESSAGES
P = Collection.PROFILES
live = pytest.mark.weaviate


@pytest.fixture(scope="session")
def weaviate_url(request: pytest.FixtureRequest) -> str:
    request.addfinalizer(SHARED_WEAVIATE.stop)
    return SHARED_WEAVIATE.start()


@pytest.fixture
def client(weaviate_url: str) -> Iterator[weaviate.WeaviateClient]:
    """A raw client, to arrange server state the backend would never write."""
    target = parse_weaviate_url(weaviate_url)
    raw = weaviate.connect_to_custom(
        target.host, target.port, False, target.grpc_host, target.grpc_port, False,
        skip_init_checks=True,
    )  # fmt: skip
    yield raw
    raw.close()


@pytest.fixture
def prefix(client: weaviate.WeaviateClient) -> Iterator[str]:
    """A collection prefix of this test alone; its collections are deleted afterwards."""
    name = f"T{uuid.uuid4().hex[:10]}"
    yield name
    for collection in list(client.collections.list_all()):
        if collection.startswith(name):
            client.collections.delete(collection)


@pytest.fixture(scope="module")
def shared_prefix(weaviate_url: str) -> Iterator[str]:
    """Collections shared by this module's tests (each uses tenants of its own):
    creating a set of collections costs a few seconds, opening it milliseconds."""
    name = f"T{uuid.uuid4().hex[:10]}"
    WeaviateBackend.from_url(weaviate_url, prefix=name).close()
    yield name
    target = parse_weaviate_url(weaviate_url)
    with weaviate.connect_to_custom(
        target.host, target.port, False, target.grpc_host, target.grpc_port, False,
        skip_init_checks=True,
    ) as raw:  # fmt: skip
        raw.collections.delete([c for c in raw.collections.list_all() if c.startswith(name)])


@pytest.fixture
def backend(weaviate_url: str, shared_prefix: str) -> Iterator[WeaviateBackend]:
    with WeaviateBackend.from_url(weaviate_url, prefix=shared_prefix) as opened:
        yield opened


@pytest.fixture
def tenant(backend: WeaviateBackend) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    backend.ensure_tenant(name)
    return name


def message(
    mid: str, text: str = "hello", *, tenant: str = "acme", minutes: float = 0, seq: int = 0
) -> Message:
    return Message(
        id=mid,
        tenant=tenant,
        conversation_id="conv_1",
        profile_id="prf_ann",
        channel=Channel.CHAT,
        role=Role.CUSTOMER,
        text=text,
        ts=T0 + timedelta(minutes=minutes),
        seq=seq,
    )


def rows(n: int, dim: int, seed: int = 1) -> np.ndarray[Any, np.dtype[np.float32]]:
    out = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# -- translation (no server) ---------------------------------------------------------------


def test_backend_urls_parse_with_their_defaults() -> None:
    plain = parse_weaviate_url("weaviate://db.internal")
    assert (plain.host, plain.port, plain.secure, plain.grpc_port) == (
        "db.internal",
        8080,
        False,
        50051,
    )
    tls = parse_weaviate_url("weaviates://abc.c0.europe-west3.gcp.weaviate.cloud")
    assert (tls.port, tls.secure, tls.grpc_port, tls.is_cloud) == (443, True, 443, True)
    custom = parse_weaviate_url("weaviate://10.0.0.5:9000?grpc_port=9001&prefix=Acme")
    assert (custom.port, custom.grpc_port, custom.prefix) == (9000, 9001, "Acme")
    assert parse_weaviate_url("weaviate://h", grpc_port=7000).grpc_port == 7000
    assert parse_weaviate_url("weaviate+https://h:8443").secure
    for bad in (
        "http://h:8080",
        "weaviate://",
        "weaviate://user:secret@h",
        "weaviate://h/v1",
        "weaviate://h?grpc=1",
        "weaviate://h?grpc_port=x",
        "weaviate://h:notaport",
    ):
        with pytest.raises(ConfigError):
            parse_weaviate_url(bad)


@given(st.text(min_size=1, max_size=300))
def test_vector_names_are_valid_weaviate_names(model_id: str) -> None:
    name = vector_name(model_id)
    assert len(name) <= 231 and name[0].isalpha() and name.isascii()
    assert name.replace("_", "").isalnum()
    assert vector_name(model_id) == name


def test_vector_names_of_similar_models_differ() -> None:
    assert vector_name("BAAI/bge-small") != vector_name("BAAI_bge-small")
    assert vector_name("hash:64").startswith("m_hash_64_")


@given(st.text(max_size=20), st.text(max_size=20))
def test_ord_keys_order_and_compare_like_utf8_bytes(a: str, b: str) -> None:
    # Weaviate sorts text case-insensitively; lower-case hex makes that irrelevant.
    ka, kb = ord_key(a), ord_key(b)
    assert ka == ka.lower()
    assert (ka < kb) == (a.encode() < b.encode())
    assert (ka == kb) == (a == b)


def test_tenant_names_follow_weaviate_rules() -> None:
    assert valid_tenant("acme_01-eu") and valid_tenant("x" * 64)
    for bad in ("", "a b", "x" * 65, "é", "a/b", None):
        assert not valid_tenant(bad)


def _messages_layout() -> Layout:
    return layouts()[M]


def test_where_translation_edge_cases() -> None:
    layout = _messages_layout()
    assert layout.compile(ALL).filter is None
    assert layout.compile(Where(any_of={"role": []})).empty
    assert layout.compile(Where(eq={"seq": 1.5})).empty  # no integer equals 1.5
    assert not layout.compile(Where(any_of={"profile_id": [None]})).empty  # null matches
    seq = layout.field("seq")
    assert seq.operand(1.5, bound="gte") == 2 and seq.operand(1.5, bound="lt") == 2
    assert seq.operand(True) == 1
    assert layout.field("channel").operand(Channel.SMS) == ord_key("sms")
    assert layout.field("conversation_id").operand(5) == ord_key("5")  # as SQLite's TEXT affinity
    assert layout.field("id").key == "rid_ord"
    epoch = T0.timestamp()
    assert layout.field("ts").operand(epoch) == T0  # epoch seconds, as on SQLite
    naive = datetime(2024, 5, 1, 9, 0)
    assert layout.field("ts").operand(naive) == T0


@pytest.mark.parametrize(
    "where",
    [
        Where(eq={"text": "hi"}),
        Where(any_of={"role": "customer"}),
        Where(gte={"ts": None}),
        Where(eq={"ts": "yesterday"}),
        Where(lt={"seq": "two"}),
        Where(eq={"ts": True}),
    ],
    ids=[
        "unknown_field",
        "any_of_string",
        "none_bound",
        "time_as_text",
        "int_as_text",
        "bool_time",
    ],
)
def test_bad_where_is_rejected(where: Where) -> None:
    with pytest.raises(ValidationError):
        _messages_layout().compile(where)


def test_every_collection_has_a_layout() -> None:
    for layout in layouts("Acme").values():
        assert layout.name.startswith("Acme")
        names = [p.name for p in layout.properties()]
        assert len(names) == len(set(names))
        assert "rid" in names and "body" in names
        searchable = [p.name for p in layout.properties() if p.indexSearchable]
        assert searchable == ([f"{layout.spec.text_field}_terms"] if layout.spec.text_field else [])
    assert len({layout.uuid("x") for layout in layouts().values()}) == len(Collection)
    with pytest.raises(ValidationError):
        layouts("lowercase")


def test_messages_get_their_own_bm25_length_normalisation() -> None:
    # Short turns are over-penalised by full length normalisation; knowledge is not.
    for collection, layout in layouts("Acme", (1.2, 0.75), 0.3).items():
        expected = (1.2, 0.3) if collection is Collection.MESSAGES else (1.2, 0.75)
        assert layout.bm25 == expected, collection
        config = layout.inverted_index()
        assert (config.bm25.k1, config.bm25.b) == expected


# -- the server script ----------------------------------------------------------------------


def test_server_script_reports_a_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(weaviate_server.ServerError, match="not an executable.*weaviate.sh"):
        weaviate_server.start_server(tmp_path / "no-such-binary", parent=tmp_path)


def test_server_script_quotes_the_log_when_the_server_dies(tmp_path: Path) -> None:
    fake = tmp_path / "weaviate-server"
    fake.write_text("#!/bin/sh\necho 'boom: cannot open data path' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(weaviate_server.ServerError, match="boom: cannot open data path"):
        weaviate_server.start_server(fake, parent=tmp_path, timeout=20)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("convmem-weaviate-")]


@live
def test_server_script_starts_and_stops_a_server(weaviate_url: str, tmp_path: Path) -> None:
    if weaviate_server.find_binary() is None:
        pytest.skip("no weaviate-server binary (the session uses CONVMEM_TEST_WEAVIATE_URL)")
    server = weaviate_server.start_server(parent=tmp_path)
    try:
        assert server.is_ready() and server.started_in > 0
        process, workdir = server.process, server.workdir
        assert process is not None and workdir.is_dir()
        with WeaviateBackend.from_url(server.url, prefix="Probe") as backend:
            backend.ensure_tenant("probe")
            assert backend.list_tenants() == ["probe"]
    finally:
        server.stop()
    assert process.poll() is not None  # SIGTERM ended it
    assert not workdir.exists()
    assert not server.is_ready()


# -- schema ---------------------------------------------------------------------------------


@live
def test_schema_creation_is_idempotent_and_safe_to_race(weaviate_url: str, prefix: str) -> None:
    errors: list[BaseException] = []

    def open_close() -> None:
        try:
            WeaviateBackend.from_url(weaviate_url, prefix=prefix).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    with WeaviateBackend.from_url(weaviate_url, prefix=prefix) as again:
        again.ensure_tenant("acme")
        assert again.count("acme", M) == 0


@live
def test_a_collection_added_by_a_release_gets_the_existing_tenants(
    weaviate_url: str, client: weaviate.WeaviateClient, prefix: str
) -> None:
    with WeaviateBackend.from_url(weaviate_url, prefix=prefix) as old:
        old.ensure_tenant("acme")
    client.collections.delete(f"{prefix}ConnectorState")  # a store from before it existed
    with WeaviateBackend.from_url(weaviate_url, prefix=prefix) as upgraded:
        assert upgraded.count("acme", Collection.CONNECTOR_STATE) == 0
        assert upgraded.list_tenants() == ["acme"]


@live
def test_a_collection_not_made_by_us_is_a_schema_mismatch(
    weaviate_url: str, client: weaviate.WeaviateClient, prefix: str
) -> None:
    client.collections.create(
        f"{prefix}Profiles", properties=[Property(name="x", data_type=DataType.TEXT)]
    )
    with pytest.raises(SchemaMismatchError, match="not created by conversation-memory"):
        WeaviateBackend.from_url(weaviate_url, prefix=prefix)


@live
def test_a_newer_schema_version_asks_for_an_upgrade(
    weaviate_url: str, client: weaviate.WeaviateClient, prefix: str
) -> None:
    WeaviateBackend.from_url(weaviate_url, prefix=prefix).close()
    newer = f"conversation-memory schema v{SCHEMA_VERSION + 1}: written by a future release"
    client.collections.use(f"{prefix}Messages").config.update(description=newer)
    with pytest.raises(SchemaMismatchError, match="Upgrade conversation-memory"):
        WeaviateBackend.from_url(weaviate_url, prefix=prefix)


@live
def test_changed_properties_are_a_schema_mismatch(
    weaviate_url: str, client: weaviate.WeaviateClient, prefix: str
) -> None:
    layout = layouts(prefix)[M]
    props = [
        Property(name="seq", data_type=DataType.TEXT) if p.name == "seq" else p
        for p in layout.properties()
        if p.name != "vector_model"
    ]
    client.collections.create(
        layout.name,
        description=layout.description,
        multi_tenancy_config=Configure.multi_tenancy(enabled=True),
        properties=props,
    )
    with pytest.raises(
        SchemaMismatchError, match=r"seq is text, expected int.*vector_model is missing"
    ):
        WeaviateBackend.from_url(weaviate_url, prefix=prefix)


# -- tenants --------------------------------------------------------------------------------


@live
def test_tenant_names_weaviate_cannot_hold(backend: WeaviateBackend) -> None:
    with pytest.raises(ValidationError, match="1-64 letters"):
        backend.ensure_tenant("a b")
    with pytest.raises(NotFoundError, match="ensure_tenant"):
        backend.count("a b", M)
    assert backend.drop_tenant("a b") == {c.value: 0 for c in Collection}


@live
def test_a_half_created_tenant_is_not_listed_until_ensured(
    backend: WeaviateBackend, client: weaviate.WeaviateClient, shared_prefix: str
) -> None:
    from weaviate.classes.tenants import Tenant

    half = f"half_{uuid.uuid4().hex[:8]}"
    client.collections.use(f"{shared_prefix}Messages").tenants.create([Tenant(name=half)])
    assert half not in backend.list_tenants()  # as if ensure_tenant had crashed midway
    backend.ensure_tenant(half)
    assert half in backend.list_tenants()
    assert backend.count(half, P) == 0


# -- strings, order and paging ----------------------------------------------------------------

IDS = ["B", "a", "A1", "_z", "é", "a ", "ab", "Zed", "a\t", "ä", "10", "9"]


def _profiles(tenant: str) -> list[Profile]:
    return [
        Profile(
            id=pid,
            tenant=tenant,
            created_at=T0 + timedelta(seconds=i % 4, microseconds=7 * i),
            updated_at=T0,
            merged_into=None if i % 3 == 0 else IDS[(i * 5) % len(IDS)],
        )
        for i, pid in enumerate(IDS)
    ] + [  # others, so that a filter can select the ones above
        Profile(
            id=f"zz{i:02d}",
            tenant=tenant,
            created_at=T0 + timedelta(seconds=i % 5),
            updated_at=T0,
            merged_into="noise",
        )
        for i in range(40)
    ]


MINE = Where(any_of={"merged_into": [None, *IDS]})  # the 12 profiles of IDS


@pytest.fixture
def twins(
    backend: WeaviateBackend, tenant: str, tmp_path: Path
) -> Iterator[tuple[Backend, Backend, str]]:
    """The same profiles on Weaviate and on SQLite, in ``tenant``."""
    sqlite = SQLiteBackend(tmp_path / "twin.db")
    sqlite.ensure_tenant(tenant)
    for store in (backend, sqlite):
        store.upsert(tenant, P, _profiles(tenant))
    yield backend, sqlite, tenant
    sqlite.close()


ORDERS = [("id", False), ("id", True), ("merged_into", False), ("merged_into", True)]
ORDERS += [("created_at", False), ("created_at", True)]


@live
@pytest.mark.parametrize("where", [MINE, ALL], ids=["keyset_pages", "cursor_scan"])
@pytest.mark.parametrize(("order_by", "descending"), ORDERS)
def test_order_and_paging_match_sqlite_byte_for_byte(
    twins: tuple[Backend, Backend, str],
    monkeypatch: pytest.MonkeyPatch,
    order_by: str,
    descending: bool,
    where: Where,
) -> None:
    # Pages of 3: 12 of 52 matches are read in keyset pages, all 52 through the cursor.
    monkeypatch.setattr(weaviate_query, "PAGE", 3)
    wv, sq, tenant = twins

    def ids(store: Backend, **kw: Any) -> list[str]:
        found = store.find(tenant, P, where, order_by=order_by, descending=descending, **kw)
        return [r.id for r in found]

    expected = ids(sq)
    assert len(expected) == (len(IDS) if where is MINE else len(IDS) + 40)
    assert ids(wv) == expected
    for limit, offset in ((2, 0), (4, 3), (5, 9), (None, 7), (3, 20), (30, 5)):
        assert ids(wv, limit=limit, offset=offset) == ids(sq, limit=limit, offset=offset)
    if order_by == "id" and where is MINE:
        assert expected == sorted(IDS, key=lambda s: s.encode(), reverse=descending)


@live
def test_text_filters_compare_exact_strings(twins: tuple[Backend, Backend, str]) -> None:
    wv, sq, tenant = twins
    for where in (
        Where(eq={"id": "a"}),  # not "a " nor "a\t" (field tokenization would trim those)
        Where(eq={"id": "A1"}),  # case matters
        Where(any_of={"id": ["a ", "ä", "nope"]}),
        Where(gte={"id": "B"}, lt={"id": "a"}),  # byte order: "Zed", "_z" lie between
        Where(any_of={"merged_into": [None, "ab"]}),
        Where(gte={"created_at": T0 + timedelta(seconds=1, microseconds=7)}),
    ):
        found = {r.id for r in wv.find(tenant, P, where)}
        assert found == {r.id for r in sq.find(tenant, P, where)}, where
        assert wv.count(tenant, P, where) == len(found)


# -- keyword analysis ---------------------------------------------------------------------------


def test_text_is_analysed_like_the_embedded_index() -> None:
    assert analyze(["Snorkelling in Zürich, CAFÉS!", "", "x_y 3.14"]) == [
        "snorkel in zurich cafe",
        "",
        "x y 3 14",
    ]
    assert query_terms("What did Caroline paint in the café?") == ["carolin", "paint", "cafe"]
    assert query_terms("the") == ["the"]  # only stopwords: kept, as on SQLite
    assert query_terms("?! --") == []


KEYWORD_TEXTS = {
    "m1": "I am planning a snorkel trip to Zanzibar next month",
    "m2": "She painted a sunset over the lake",
    "m3": "Meet me at the Café in Zürich",
    "m4": "Refunds take five days; the refund was issued",
    "m5": "Thanks for waiting, the order is on its way",
    "m6": "Don't call me before noon",
}


@live
@pytest.mark.parametrize(
    "query",
    ["snorkelling in Zanzibar?", "paintings", "CAFE zurich", "refund", "the", "don't", "noon!"],
)
def test_keyword_search_finds_what_the_embedded_backend_finds(
    backend: WeaviateBackend, tenant: str, tmp_path: Path, query: str
) -> None:
    sqlite = SQLiteBackend(tmp_path / "twin.db")
    sqlite.ensure_tenant(tenant)
    records = [message(k, v, tenant=tenant) for k, v in KEYWORD_TEXTS.items()]
    found = []
    for store in (backend, sqlite):
        store.upsert(tenant, M, records)
        hits = store.search(tenant, M, mode=SearchMode.KEYWORD, text=query)
        found.append([h.record.id for h in hits])
        assert all(h.score > 0 for h in hits)
    sqlite.close()
    assert set(found[0]) == set(found[1]) and found[0]
    assert found[0][0] == found[1][0]


# -- vectors --------------------------------------------------------------------------------


@live
def test_models_of_different_dimensions_live_side_by_side(
    backend: WeaviateBackend, tenant: str
) -> None:
    small, large = rows(3, 8, seed=1), rows(2, 16, seed=2)
    backend.upsert(
        tenant, M, [message(f"s{i}", tenant=tenant) for i in range(3)], Vectors("small", small)
    )
    backend.upsert(
        tenant, M, [message(f"l{i}", tenant=tenant) for i in range(2)], Vectors("large", large)
    )
    hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=Vectors("small", small[1:2]))
    assert [h.record.id for h in hits][0] == "s1" and {h.record.id for h in hits} == {
        "s0",
        "s1",
        "s2",
    }
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    hits = backend.search(tenant, M, mode=SearchMode.VECTOR, vector=Vectors("large", large[0:1]))
    assert [h.record.id for h in hits] == ["l0", "l1"]
    dims: dict[str, set[int]] = {}
    counts: dict[str, int] = {}
    for page, vecs in backend.export(tenant, M):
        assert vecs is not None and vecs.array.shape[0] == len(page)
        dims.setdefault(vecs.model_id, set()).add(vecs.array.shape[1])
        counts[vecs.model_id] = counts.get(vecs.model_id, 0) + len(page)
    assert dims == {"small": {8}, "large": {16}} and counts == {"small": 3, "large": 2}


@live
def test_other_dimensions_for_a_model_are_rejected_and_write_nothing(
    backend: WeaviateBackend, tenant: str
) -> None:
    backend.upsert(tenant, M, [message("m0", tenant=tenant)], Vectors("model", rows(1, 8)))
    with pytest.raises(ValidationError, match="different model_id"):
        backend.upsert(
            tenant,
            M,
            [message("m1", tenant=tenant), message("m2", tenant=tenant)],
            Vectors("model", rows(2, 16)),
        )
    assert [r.id for r in backend.find(tenant, M)] == ["m0"]
    with pytest.raises(ValidationError):
        backend.search(tenant, M, mode=SearchMode.VECTOR, vector=Vectors("model", rows(1, 16)))


@live
def test_export_returns_what_was_stored(backend: WeaviateBackend, tenant: str) -> None:
    records = [message(f"m{i:02d}", f"text {i}", tenant=tenant, seq=i) for i in range(7)]
    vecs = rows(5, 8)
    backend.upsert(tenant, M, records[:5], Vectors("model", vecs))
    backend.upsert(tenant, M, records[5:])  # no vectors
    pages = list(backend.export(tenant, M, batch_size=3))
    assert all(0 < len(page) <= 3 for page, _ in pages)
    exported = {r.id: r for page, _ in pages for r in page}
    assert sorted(exported.values(), key=lambda r: r.id) == records
    assert sum(len(page) for page, _ in pages) == 7  # once each
    stored = {r.id: v.array[i] for page, v in pages if v is not None for i, r in enumerate(page)}
    assert set(stored) == {f"m{i:02d}" for i in range(5)}
    for i in range(5):
        assert np.allclose(stored[f"m{i:02d}"], vecs[i], atol=1e-6)
    assert {v.model_id for _, v in pages if v is not None} == {"model"}
    with pytest.raises(NotFoundError):
        list(backend.export("nobody", M))


# -- write errors -------------------------------------------------------------------------------


@live
def test_rejected_objects_are_named_and_the_rest_is_written(
    backend: WeaviateBackend, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weaviate reports per-object failures in a batch; the backend raises naming them."""
    real = _DataCollection.insert_many

    def server_rejects_the_second(self: Any, objects: list[Any]) -> BatchObjectReturn:
        # What a server that refuses one object answers: the others are written.
        kept = [o for i, o in enumerate(objects) if i != 1]
        result = real(self, kept)
        refused = ErrorObject(
            message="store is read-only: disk usage above 90%", object_=objects[1]
        )
        return BatchObjectReturn(errors={1: refused}, uuids={0: result.uuids[0]})

    monkeypatch.setattr(_DataCollection, "insert_many", server_rejects_the_second)
    with pytest.raises(
        StorageError, match=r"rejected 1 messages record.*'m1': store is read-only"
    ) as info:
        backend.upsert(
            tenant,
            M,
            [
                message("m0", tenant=tenant),
                message("m1", tenant=tenant),
                message("m2", tenant=tenant),
            ],
        )
    assert "2 record(s) of the call were written" in str(info.value)
    monkeypatch.undo()
    assert [r.id for r in backend.find(tenant, M)] == ["m0", "m2"]


@live
def test_a_read_only_shard_fails_the_call_as_a_storage_error(
    backend: WeaviateBackend, tenant: str, client: weaviate.WeaviateClient, shared_prefix: str
) -> None:
    """A real server-side refusal: every object of the call is refused, nothing
    is written, and the error is a StorageError quoting Weaviate."""
    messages = client.collections.use(f"{shared_prefix}Messages")
    backend.upsert(tenant, M, [message("m0", tenant=tenant)])
    messages.config.update_shards("READONLY", [tenant])
    deadline = time.monotonic() + 30
    probes = 0
    while True:  # the status reaches the shard a moment after the call returns
        try:
            backend.upsert(tenant, M, [message(f"probe{probes}", tenant=tenant)])
        except StorageError as exc:
            assert "read-only" in str(exc)
            break
        probes += 1
        assert time.monotonic() < deadline, "the shard never became read-only"
    with pytest.raises(StorageError, match="read-only") as info:
        backend.upsert(
            tenant,
            M,
            [message("m1", tenant=tenant), message("m2", tenant=tenant)],
            Vectors("model", rows(2, 8)),
        )
    assert not isinstance(info.value, (NotFoundError, ValidationError))
    messages.config.update_shards("READY", [tenant])
    stored = [r.id for r in backend.find(tenant, M) if not r.id.startswith("probe")]
    assert stored == ["m0"]


@live
def test_writes_to_a_tenant_dropped_meanwhile_are_not_found(
    backend: WeaviateBackend, tenant: str
) -> None:
    backend.drop_tenant(tenant)
    with pytest.raises(NotFoundError, match="ensure_tenant"):
        backend.upsert(tenant, M, [message("m0", tenant=tenant)], Vectors("model", rows(1, 8)))
    with pytest.raises(NotFoundError):
        backend.upsert(tenant, P, [Profile(id="p", tenant=tenant)])


@live
def test_closed_backend_refuses_calls(backend: WeaviateBackend, tenant: str) -> None:
    backend.close()
    with pytest.raises(StorageError, match="closed"):
        backend.list_tenants()


# -- the engine on Weaviate ----------------------------------------------------------------------


@live
def test_the_engine_runs_unchanged_and_deleting_a_customer_leaves_nothing(
    backend: WeaviateBackend, tenant: str, tmp_path: Path
) -> None:
    from memory_core.embedding import HashEmbedder
    from memory_core.memory import Memory

    memory = Memory(backend, HashEmbedder(), settings=load_settings(data_dir=tmp_path))
    for i, (who, text) in enumerate(
        [
            ("phone:+16175550142", "My router keeps dropping every evening"),
            ("email:ann@example.com", "Please refund the double charge on my invoice"),
            ("phone:+16175550199", "Unrelated customer asking about the router too"),
        ]
    ):
        memory.tenant(tenant).ingest(
            {
                "channel": "sms",
                "customer": [who],
                "messages": [{"role": "customer", "text": text, "ts": T0 + timedelta(hours=i)}],
            },
        )
    ann = memory.tenant(tenant).profiles.merge("phone:+16175550142", "email:ann@example.com")
    recalled = memory.tenant(tenant).recall(ann.id, "router problems")
    texts = " ".join(item.text for item in recalled.items)
    assert "router keeps dropping" in texts and "Unrelated customer" not in texts

    receipt = memory.tenant(tenant).profiles.delete(ann.id)
    assert receipt.total > 0
    for collection, spec in COLLECTIONS.items():
        if "profile_id" in spec.filter_fields:
            assert backend.count(tenant, collection, Where(eq={"profile_id": ann.id})) == 0
    assert backend.count(tenant, M) == 1  # the other customer's message only
    hits = backend.search(tenant, M, mode=SearchMode.KEYWORD, text="refund invoice router")
    assert [h.record.text for h in hits] == ["Unrelated customer asking about the router too"]


# -- configuration ------------------------------------------------------------------------------


@live
def test_open_backend_reads_a_weaviate_url(weaviate_url: str, shared_prefix: str) -> None:
    target = parse_weaviate_url(weaviate_url)
    url = f"weaviate://{target.host}:{target.port}?prefix={shared_prefix}"
    settings = load_settings(backend=url, weaviate_grpc_port=target.grpc_port)
    backend = open_backend(settings)
    try:
        assert isinstance(backend, WeaviateBackend) and backend.name == "weaviate"
        backend.ensure_tenant("via_settings")
        assert "via_settings" in backend.list_tenants()
    finally:
        backend.close()


def test_unreachable_server_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="Could not connect to Weaviate at http://127.0.0.1:9"):
        WeaviateBackend.from_url("weaviate://127.0.0.1:9?grpc_port=10")


def test_weaviate_cloud_needs_an_api_key() -> None:
    with pytest.raises(ConfigError, match="API key"):
        WeaviateBackend.from_url("weaviates://abc.weaviate.cloud")


def test_api_key_setting_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVMEM_WEAVIATE_API_KEY", "s3cret")
    settings = load_settings()
    assert settings.weaviate_api_key is not None
    assert settings.weaviate_api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert os.environ["CONVMEM_WEAVIATE_API_KEY"] == "s3cret"
