"""The Segment connector end to end: Segment Spec payloads (shaped like Segment's
documentation) through the signed webhook (a real uvicorn server, or httpx's ASGI
transport) or the JSONL importer, into a real SQLite store, then out through
``memory.recall``; the outbound push against Segment's batch API faked with respx."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from typer.testing import CliRunner

from memory_core.backends.base import Collection
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.cli.app import app as cli_app
from memory_core.config import load_settings
from memory_core.connectors import ConnectorStore
from memory_core.connectors.segment import (
    BATCH_URL,
    handle_events,
    import_file,
    push_profiles,
    segment_webhook_app,
    sign,
    verify_signature,
)
from memory_core.embedding import HashEmbedder
from memory_core.memory import Memory
from tests.connectors.webhook_server import serve

SECRET = "whsec-segment-7f3a"
USER = "custom:segment_user=97980cfea0067"

IDENTIFY: dict[str, Any] = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {"ip": "8.8.8.8", "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5)"},
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2026-11-23T22:28:55.387Z",
    "sentAt": "2026-11-23T22:28:55.111Z",
    "timestamp": "2026-11-23T22:28:55.111Z",
    "traits": {
        "name": "Peter Gibbons",
        "email": "Peter@Initech.com",
        "phone": "+1 617 555 0142",
        "plan": "premium",
        "logins": 5,
        "firstName": "Peter",
        "address": {"street": "6th St", "city": "San Francisco", "state": "CA"},
    },
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}

TRACK: dict[str, Any] = {
    "anonymousId": "507f191e810c19729de860ea",
    "context": {"ip": "8.8.8.8", "library": {"name": "analytics.js", "version": "2.11.1"}},
    "event": "Order Completed",
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {
        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
        "order_id": "50314b8e9bcf000000000000",
        "affiliation": "Google Store",
        "total": 27.5,
        "revenue": 25.0,
        "shipping": 3,
        "currency": "USD",
        "coupon": "hasbros",
        "products": [{"product_id": "507f1f77bcf86cd799439011", "sku": "45790-32"}],
    },
    "receivedAt": "2026-11-24T10:00:00.000Z",
    "sentAt": "2026-11-24T10:00:00.000Z",
    "timestamp": "2026-11-24T09:59:59.000Z",
    "type": "track",
    "userId": "97980cfea0067",
}

ALIAS = {
    "type": "alias",
    "messageId": "alias-1b0c",
    "previousId": "39239-239239-239239-23923",
    "userId": "97980cfea0067",
    "timestamp": "2026-11-24T11:00:00.000Z",
}

GROUP = {
    "type": "group",
    "messageId": "group-4d7e",
    "groupId": "0e8c78ea9d97a7b8185e8632",
    "userId": "97980cfea0067",
    "traits": {"name": "Initech", "industry": "Technology", "employees": 329, "plan": "enterprise"},
    "timestamp": "2026-11-24T12:00:00.000Z",
}


def identify(message_id: str, timestamp: str, **traits: Any) -> dict[str, Any]:
    event = copy.deepcopy(IDENTIFY)
    event["messageId"] = message_id
    event["timestamp"] = timestamp
    event["traits"] = {"email": "peter@initech.com", **traits}
    return event


def traits_of(memory: Memory, ref: str) -> dict[str, Any]:
    return {t.key: t.value for t in memory.traits.list(ref) if t.source == "segment"}


def store_counts(memory: Memory) -> dict[str, int]:
    tenant = memory.name
    memory.profiles.list()  # the default tenant exists from the first use
    return {
        c.value: memory.backend.count(tenant, c) for c in Collection if c is not Collection.AUDIT
    }


# -- the mapping -----------------------------------------------------------------------


def test_identify_and_track_become_identifiers_traits_and_a_behaviour_observation(
    memory: Memory,
) -> None:
    report = handle_events(memory, [IDENTIFY, TRACK, ALIAS, GROUP])
    # counted per event: created when it created a record, updated when it only changed some
    assert report.ok and report.created == 3 and report.updated == 1, report.to_dict()

    profile = memory.profiles.get(USER)
    assert memory.profiles.get("email:peter@initech.com").id == profile.id
    assert memory.profiles.get("phone:+16175550142").id == profile.id
    assert memory.profiles.get("custom:segment_anon=507f191e810c19729de860ea").id == profile.id
    assert memory.profiles.get("custom:segment_anon=39239-239239-239239-23923").id == profile.id
    traits = traits_of(memory, USER)
    assert traits["plan"] == "premium" and traits["first_name"] == "Peter"
    assert traits["logins"] == 5 and traits["address_city"] == "San Francisco"
    assert (
        traits["group_id"] == "0e8c78ea9d97a7b8185e8632"
        and traits["group_industry"] == "Technology"
    )
    assert "email" not in traits and "phone" not in traits  # identifiers, not traits

    [obs] = memory.observations.list(USER)
    assert obs.kind.value == "behaviour" and obs.source == "segment"
    assert (
        obs.text
        == (  # scalar properties; opaque ids (checkout_id) other than the order's left out
            "Order Completed on 2026-11-24: order_id=50314b8e9bcf000000000000, "
            "affiliation=Google Store, total=27.5, revenue=25, shipping=3, currency=USD"
        )
    )

    result = memory.recall("email:peter@initech.com")  # what matters now
    assert 'source="segment">Order Completed on 2026-11-24' in result.context
    assert 'source="segment">plan: premium' in result.context


def test_writes_are_audited_with_the_connector_as_actor(memory: Memory) -> None:
    handle_events(memory, [IDENTIFY, TRACK])
    events = memory.governance.audit.list(actor="connector:segment")
    actions = {e.action for e in events}
    assert {"create_profile", "set_trait", "remember_observation", "connector_run"} <= actions
    [run] = [e for e in events if e.action == "connector_run"]
    assert run.details["created"] == 2 and run.details["failed"] == 0
    assert not memory.governance.audit.list(actor="api")


def test_a_replayed_event_changes_nothing(memory: Memory) -> None:
    handle_events(memory, [IDENTIFY, TRACK])
    before = store_counts(memory)
    traits = memory.traits.list(USER)
    again = handle_events(memory, [IDENTIFY, TRACK])
    assert again.skipped == 2 and again.created == again.updated == 0
    assert store_counts(memory) == before
    assert memory.traits.list(USER) == traits


def test_an_older_identify_does_not_overwrite_a_newer_trait(memory: Memory) -> None:
    newer = identify("m-new", "2026-11-25T10:00:00Z", plan="basic", city="Denver")
    older = identify("m-old", "2026-11-20T10:00:00Z", plan="premium", city="Boston", tier="gold")
    report = handle_events(memory, [newer, older])
    assert report.ok
    traits = traits_of(memory, "email:peter@initech.com")
    assert traits["plan"] == "basic" and traits["city"] == "Denver"
    assert traits["tier"] == "gold"  # a key the newer event did not set is still applied
    stale = [c.reason for c in report.changes if c.outcome.value == "skipped"]
    assert any("trait plan: a newer value" in r for r in stale)
    # a still newer event does win
    handle_events(memory, [identify("m-newest", "2026-11-26T10:00:00Z", plan="premium")])
    assert traits_of(memory, "email:peter@initech.com")["plan"] == "premium"


def test_policy_screening_applies_to_imported_traits(memory: Memory) -> None:
    memory.governance.policy.set(
        {"remember": {"deny_trait_keys": ["date_of_birth"]}, "redaction": {"enabled": True}}
    )
    event = identify(
        "m-pol", "2026-11-25T10:00:00Z", date_of_birth="1980-02-01", note="card 4111 1111 1111 1111"
    )
    report = handle_events(memory, [event])
    assert report.ok
    traits = traits_of(memory, "email:peter@initech.com")
    assert "date_of_birth" not in traits
    assert "4111" not in traits["note"] and "REDACTED" in traits["note"]
    assert any("denied by policy" in c.reason for c in report.changes)


def test_an_invalid_event_fails_alone_with_its_reason(memory: Memory) -> None:
    bad = {"type": "track", "messageId": "m-bad", "event": "Order Completed"}  # no user
    report = handle_events(memory, [bad, IDENTIFY, {"type": "flush", "messageId": "m-x"}])
    assert report.failed == 2 and report.created == 1
    reasons = {f.ref: f.reason for f in report.failures}
    assert "neither userId nor anonymousId" in reasons["track:m-bad"]
    assert "unknown Segment event type 'flush'" in reasons["flush:m-x"]


def test_echoes_of_our_own_push_are_skipped(memory: Memory) -> None:
    echo = identify("m-echo", "2026-11-25T10:00:00Z", plan="gold")
    echo["context"] = {"library": {"name": "conversation-memory"}}
    report = handle_events(memory, [echo])
    assert report.skipped == 1 and not memory.profiles.list()


# -- the webhook -----------------------------------------------------------------------


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-signature": sign(body, secret)}


def test_the_signature_is_the_hex_hmac_sha1_of_the_raw_body() -> None:
    body = b'{"type":"identify"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert sign(body, SECRET) == expected and len(expected) == 40
    assert verify_signature(body, expected.upper(), SECRET)
    assert not verify_signature(body + b" ", expected, SECRET)
    assert not verify_signature(body, None, SECRET)
    assert not verify_signature(body, base64.b64encode(bytes.fromhex(expected)).decode(), SECRET)


def test_webhook_over_a_real_server_stores_and_recall_shows_the_source(memory: Memory) -> None:
    body = json.dumps({"batch": [IDENTIFY, TRACK]}).encode()
    with serve(segment_webhook_app(memory, SECRET)) as url:
        response = httpx.post(url + "/", content=body, headers=signed(body))
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 2 and response.json()["failed"] == 0
        replay = httpx.post(url + "/", content=body, headers=signed(body))
        assert replay.json()["skipped"] == 2
    result = memory.recall(USER)
    assert 'source="segment">Order Completed' in result.context


async def test_bad_or_missing_signatures_are_refused_and_nothing_is_stored(
    memory: Memory,
) -> None:
    body = json.dumps(IDENTIFY).encode()
    transport = httpx.ASGITransport(app=segment_webhook_app(memory, SECRET))
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        wrong = await client.post("/", content=body, headers=signed(body, "not-the-secret"))
        missing = await client.post("/", content=body, headers={"content-type": "application/json"})
        tampered = await client.post(
            "/", content=body.replace(b"premium", b"platinum"), headers=signed(body)
        )
        get = await client.get("/")
    assert wrong.status_code == missing.status_code == tampered.status_code == 401
    assert get.status_code == 405
    assert not memory.profiles.list()
    assert memory.backend.count(memory.name, Collection.CONNECTOR_STATE) == 0


async def test_a_webhook_writes_only_its_own_tenant(memory: Memory) -> None:
    acme = memory.tenants.add("acme")
    body = json.dumps([IDENTIFY, TRACK]).encode()
    for target in (acme, memory):  # the same events, each tenant's own webhook
        transport = httpx.ASGITransport(app=segment_webhook_app(target, SECRET))
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
            response = await client.post("/", content=body, headers=signed(body))
        assert response.json()["created"] == 2  # seen-ids are per tenant too
    other = memory.tenants.add("other")
    assert other.profiles.find(USER) is None
    transport = httpx.ASGITransport(app=segment_webhook_app(other, SECRET))
    late = identify("m-other", "2026-11-30T10:00:00Z", plan="basic")
    body = json.dumps(late).encode()
    async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
        await client.post("/", content=body, headers=signed(body))
    assert traits_of(acme, USER)["plan"] == traits_of(memory, USER)["plan"] == "premium"
    assert traits_of(other, "email:peter@initech.com")["plan"] == "basic"
    assert acme.profiles.get(USER).id != memory.profiles.get(USER).id


def test_a_bad_secret_is_a_config_error(memory: Memory) -> None:
    from memory_core.errors import ConfigError

    with pytest.raises(ConfigError):
        segment_webhook_app(memory, "")


# -- the file importer ---------------------------------------------------------------------


def events_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "events.jsonl"
    lines = []
    for i in range(count):
        event = copy.deepcopy(TRACK)
        event["messageId"] = f"ajs-{i:04d}"
        event["userId"] = f"user-{i % 4}"
        event["properties"] = {"order_id": f"order-{i:04d}", "total": 10 + i}
        lines.append(json.dumps(event))
    lines.insert(2, "")  # blank lines are ignored
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dry_run_lists_the_changes_and_writes_nothing(memory: Memory, tmp_path: Path) -> None:
    path = events_file(tmp_path, 6)
    before = store_counts(memory)
    audit_before = len(memory.governance.audit.list())
    report = import_file(memory, path, dry_run=True)
    assert report.dry_run and report.created == 6 and report.ok
    assert any("behaviour observation" in c.reason for c in report.changes)
    assert store_counts(memory) == before
    assert len(memory.governance.audit.list()) == audit_before
    assert ConnectorStore(memory, "segment").cursor("import:events.jsonl") is None


def test_a_killed_import_resumes_from_the_stored_cursor(tmp_path: Path) -> None:
    path = events_file(tmp_path, 10)
    db = tmp_path / "store.db"

    def open_store() -> Memory:
        settings = load_settings(data_dir=tmp_path)
        return Memory(SQLiteBackend(db), HashEmbedder(), settings=settings)

    def interrupt(done: int, total: int | None) -> None:
        if done == 5:
            raise KeyboardInterrupt  # Ctrl-C (or a kill) after line 5

    first = open_store()
    with pytest.raises(KeyboardInterrupt):
        import_file(first, path, progress=interrupt)
    first.close()

    memory = open_store()  # a new process on the same file
    assert ConnectorStore(memory, "segment").cursor("import:events.jsonl") == "5"
    stored = memory.backend.count(memory.name, Collection.OBSERVATIONS)
    assert stored == 4  # lines 1, 2, 4, 5 (line 3 is blank)
    interrupted = memory.governance.audit.list(action="connector_run")
    assert interrupted[-1].details["status"] == "interrupted"

    report = import_file(memory, path)
    assert report.created + report.updated == 6 and report.skipped == 0 and report.ok
    assert report.cursor == "11"
    assert memory.backend.count(memory.name, Collection.OBSERVATIONS) == 10
    assert import_file(memory, path).total == 0  # nothing left to read
    replay = import_file(memory, path, restart=True)
    assert replay.skipped == 10 and replay.created == replay.updated == 0
    memory.close()


def test_a_line_that_is_not_json_fails_alone(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(IDENTIFY) + "\n{not json\n" + json.dumps(TRACK) + "\n")
    report = import_file(memory, path)
    assert report.created == 2 and report.failed == 1
    assert report.failures[0].ref == "line 2" and "invalid JSON" in report.failures[0].reason


def test_cli_segment_import_dry_run_then_real_run(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(IDENTIFY) + "\n" + json.dumps(TRACK) + "\n")
    db = tmp_path / "cli.db"
    runner = CliRunner()
    args = ["connect", "segment-import", str(path), "--db", str(db), "--embedder", "hash"]
    dry = runner.invoke(cli_app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] and planned["created"] == 2 and planned["failed"] == 0
    real = runner.invoke(cli_app, [*args, "--no-progress"])
    assert real.exit_code == 0, real.output
    assert "segment: 2 created, 0 updated, 0 skipped, 0 failed" in real.stdout
    settings = load_settings(backend=f"sqlite:///{db}", embedder="hash")
    with Memory.open(settings=settings) as memory:
        assert traits_of(memory, USER)["plan"] == "premium"


# -- the push ---------------------------------------------------------------------------------


def test_push_sends_identify_calls_with_traits_and_observations(memory: Memory) -> None:
    handle_events(memory, [IDENTIFY, TRACK])
    memory.traits.set(USER, "tier", "gold", source="crm")
    memory.observations.add(USER, "Prefers SMS over calls", "preference")
    memory.profiles.add(["phone:+442079460000"])  # no Segment id: not pushed
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(BATCH_URL).mock(return_value=httpx.Response(200, json={"success": True}))
        report = push_profiles(memory, "wk_test_123")
        assert report.updated == 1 and report.skipped == 1 and report.ok, report.to_dict()
        request = route.calls.last.request
        expected = "Basic " + base64.b64encode(b"wk_test_123:").decode()
        assert request.headers["authorization"] == expected
        [call] = json.loads(request.content)["batch"]
        assert call["type"] == "identify" and call["userId"] == "97980cfea0067"
        assert call["anonymousId"] == "507f191e810c19729de860ea"
        assert call["traits"]["tier"] == "gold"
        assert "plan" not in call["traits"]  # Segment's own values are not echoed back
        texts = [o["text"] for o in call["traits"]["convmem_observations"]]
        assert texts == ["Prefers SMS over calls"]  # the Segment-sourced one is not echoed
        assert call["context"]["library"]["name"] == "conversation-memory"
        assert call["messageId"] and call["timestamp"]

        again = push_profiles(memory, "wk_test_123")
        assert again.updated == 0 and again.skipped == 2  # unchanged since the last push
        assert route.call_count == 1
    handle_events(memory, [json.loads(json.dumps({**call, "messageId": "echo-1"}))])
    assert "convmem_observations" not in traits_of(memory, USER)  # the echo is skipped


def test_push_retries_then_reports_failures_and_keeps_no_state(memory: Memory) -> None:
    handle_events(memory, [IDENTIFY])
    memory.traits.set(USER, "tier", "gold", source="crm")
    with respx.mock() as mock:
        route = mock.post(BATCH_URL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "0"}),
                httpx.Response(400, json={"success": False, "message": "bad request"}),
            ]
        )
        report = push_profiles(memory, "wk_test_123")
        assert route.call_count == 2
    assert report.failed == 1 and "Segment answered 400" in report.failures[0].reason
    assert ConnectorStore(memory, "segment").list("pushed") == []


def test_push_dry_run_sends_nothing(memory: Memory) -> None:
    handle_events(memory, [IDENTIFY])
    memory.traits.set(USER, "tier", "gold", source="crm")
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(BATCH_URL)
        report = push_profiles(memory, "", dry_run=True)
        assert route.call_count == 0
    assert report.updated == 1 and report.changes[0].reason == "identify: tier"


def test_cli_segment_push_and_failed_runs_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cli.db"
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(IDENTIFY) + "\nnot json\n")
    runner = CliRunner()
    store = ["--db", str(db), "--embedder", "hash"]
    failed = runner.invoke(cli_app, ["connect", "segment-import", str(path), *store, "--json"])
    assert failed.exit_code == 1 and json.loads(failed.stdout)["failed"] == 1
    settings = load_settings(backend=f"sqlite:///{db}", embedder="hash")
    with Memory.open(settings=settings) as memory:
        memory.traits.set(USER, "tier", "gold", source="crm")

    monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
    no_key = runner.invoke(cli_app, ["connect", "segment-push", *store])
    assert no_key.exit_code != 0 and "SEGMENT_WRITE_KEY" in str(no_key.exception)
    monkeypatch.setenv("SEGMENT_WRITE_KEY", "wk_env_456")
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(BATCH_URL).mock(return_value=httpx.Response(200, json={"success": True}))
        pushed = runner.invoke(cli_app, ["connect", "segment-push", *store, "--json"])
        auth = route.calls.last.request.headers["authorization"]
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["updated"] == 1
    assert auth == "Basic " + base64.b64encode(b"wk_env_456:").decode()
