"""The REST resources against the real app and a real SQLite store: profiles,
conversations and messages, traits, observations, summaries, recall, knowledge
and governance, with the errors as problem+json."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from memory_core.memory import Memory
from tests.api.conftest import (
    MCP_INITIALIZE,
    PHONE,
    Keys,
    bearer,
    first_conversation,
    make_client,
)

PROBLEM = "application/problem+json"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _conversation(client: TestClient, keys: Keys, **extra: Any) -> dict[str, Any]:
    body = first_conversation(**extra)
    return _ok(client.post("/v1/conversations", json=body, headers=bearer(keys.write)), 201)


def test_a_conversation_is_created_appended_idempotently_ended_and_read(
    client: TestClient, keys: Keys
) -> None:
    h = bearer(keys.write)
    created = client.post("/v1/conversations", json=first_conversation(), headers=h)
    assert created.status_code == 201
    conversation = created.json()["conversation"]
    assert created.headers["location"] == f"/v1/conversations/{conversation['id']}"
    assert conversation["status"] == "open"
    assert conversation["tenant"] == "acme"  # the key's tenant, never the body's

    url = f"/v1/conversations/{conversation['id']}/messages"
    more = {"messages": [{"role": "customer", "text": "Is it done?", "id": "m-3"}]}
    first = _ok(client.post(url, json=more, headers=h))
    again = _ok(client.post(url, json=more, headers=h))  # a retry of the same append
    assert [m["id"] for m in first["added"]] == ["m-3"] and first["skipped"] == 0
    assert again["added"] == [] and again["skipped"] == 1
    listed = _ok(client.get(url, headers=h))
    assert [m["id"] for m in listed["items"]] == ["m-1", "m-2", "m-3"]

    ended = _ok(client.post(f"/v1/conversations/{conversation['id']}/end", headers=h))
    assert ended["status"] == "ended"
    got = _ok(client.get(f"/v1/conversations/{conversation['id']}", headers=h))
    assert got["status"] == "ended"
    summary = _ok(client.get(f"/v1/conversations/{conversation['id']}/summary", headers=h))
    assert summary["conversation_id"] == conversation["id"]  # extraction ran on end

    late = client.post(
        url, json=more | {"messages": [{"role": "customer", "text": "x"}]}, headers=h
    )
    assert late.status_code == 409
    assert late.headers["content-type"] == PROBLEM
    assert late.json()["status"] == 409


def test_profiles_are_looked_up_by_identifier_paged_linked_merged_exported_and_deleted(
    client: TestClient, keys: Keys
) -> None:
    made = _conversation(client, keys)
    profile_id = made["profile"]["id"]
    h, admin = bearer(keys.read), bearer(keys.admin)

    found = _ok(client.get("/v1/profiles", params={"identifier": PHONE}, headers=h))
    assert [p["id"] for p in found["items"]] == [profile_id]
    nobody = _ok(client.get("/v1/profiles", params={"identifier": "phone:+16175550199"}, headers=h))
    assert nobody == {"items": [], "next_cursor": None}

    for n in range(4):
        body = {"identifiers": [f"email:c{n}@example.com"], "display_name": f"C {n}"}
        _ok(client.post("/v1/profiles", json=body, headers=bearer(keys.write)), 201)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _ok(client.get("/v1/profiles", params=params, headers=h))
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 5
    bad = client.get("/v1/profiles", params={"cursor": "not-a-cursor"}, headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM

    view = _ok(client.get(f"/v1/profiles/{PHONE}", headers=h))
    assert view["profile_id"] == profile_id and PHONE in view["identifiers"]
    linked = _ok(
        client.post(
            f"/v1/profiles/{profile_id}/identifiers",
            json={"identifier": "email:dana@example.com"},
            headers=bearer(keys.write),
        )
    )
    assert linked["id"] == profile_id
    merged = _ok(
        client.post(
            f"/v1/profiles/{profile_id}/merge",
            json={"other": "email:c0@example.com"},
            headers=bearer(keys.write),
        )
    )
    assert merged["id"] == profile_id  # the older profile survives
    view = _ok(client.get(f"/v1/profiles/{profile_id}", headers=h))
    assert "email:c0@example.com" in view["identifiers"]

    exported = _ok(client.get(f"/v1/profiles/{profile_id}/export", headers=admin))
    assert exported["profile"]["id"] == profile_id
    receipt = _ok(client.delete(f"/v1/profiles/{profile_id}", headers=admin))
    assert receipt["target"] == f"profile:{profile_id}" and receipt["deleted"]
    gone = client.get(f"/v1/profiles/{profile_id}", headers=h)
    assert gone.status_code == 404 and gone.json()["kind"] == "profile"


def test_traits_keep_each_sources_value_and_show_conflicts(client: TestClient, keys: Keys) -> None:
    _conversation(client, keys)
    w = bearer(keys.write)
    url = f"/v1/profiles/{PHONE}/traits"
    _ok(client.put(f"{url}/preferred_channel", json={"value": "email", "source": "crm"}, headers=w))
    _ok(client.put(f"{url}/preferred_channel", json={"value": "sms", "source": "agent"}, headers=w))
    views = {v["key"]: v for v in _ok(client.get(url, headers=w))}
    effective = views["preferred_channel"]
    assert (effective["value"], effective["source"]) == ("email", "crm")  # system of record wins
    assert {c["source"] for c in effective["conflicts"]} >= {"agent"}
    conflicted = _ok(client.get(url, params={"conflicted": True}, headers=w))
    assert [v["key"] for v in conflicted] == ["preferred_channel"]
    records = _ok(client.get(f"{url}/records", headers=w))
    assert {(r["key"], r["source"]) for r in records} >= {
        ("preferred_channel", "crm"),
        ("preferred_channel", "agent"),
    }
    cleared = _ok(client.delete(f"{url}/preferred_channel", params={"source": "crm"}, headers=w))
    assert cleared["deleted"]
    now = {v["key"]: v for v in _ok(client.get(url, headers=w))}
    assert now["preferred_channel"]["source"] != "crm"
    bad = client.put(f"{url}/Not-A-Key", json={"value": 1}, headers=w)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_observations_have_history_explanations_and_retraction(
    client: TestClient, keys: Keys
) -> None:
    _conversation(client, keys)
    w = bearer(keys.write)
    added = client.post(
        f"/v1/profiles/{PHONE}/observations",
        json={"text": "Prefers morning calls", "kind": "preference"},
        headers=w,
    )
    assert added.status_code == 201
    observation = added.json()
    assert added.headers["location"] == f"/v1/observations/{observation['id']}"
    corrected = _ok(
        client.post(
            f"/v1/observations/{observation['id']}/correct",
            json={"text": "Prefers evening calls", "reason": "customer said so"},
            headers=w,
        )
    )
    new_id = corrected["observation"]["id"]
    assert corrected["retracted"]["status"] == "deleted"
    history = _ok(client.get(f"/v1/observations/{new_id}/history", headers=w))
    assert len(history) >= 1
    explained = _ok(client.get(f"/v1/observations/{new_id}/explain", headers=w))
    assert explained["observation"]["id"] == new_id
    retracted = _ok(
        client.post(f"/v1/observations/{new_id}/retract", json={"reason": "wrong"}, headers=w)
    )
    assert retracted["status"] == "deleted"
    active = _ok(client.get(f"/v1/profiles/{PHONE}/observations", headers=w))
    assert new_id not in {o["id"] for o in active}
    every = _ok(
        client.get(
            f"/v1/profiles/{PHONE}/observations", params={"include_superseded": True}, headers=w
        )
    )
    assert new_id in {o["id"] for o in every}
    receipt = _ok(client.delete(f"/v1/observations/{new_id}", headers=bearer(keys.admin)))
    assert receipt["deleted"]
    assert client.get(f"/v1/observations/{new_id}", headers=w).status_code == 404


def test_recall_takes_every_option_and_returns_context_and_ranked_items(
    client: TestClient, keys: Keys
) -> None:
    made = _conversation(client, keys)
    r = bearer(keys.read)
    url = f"/v1/profiles/{PHONE}/recall"
    out = _ok(client.post(url, json={"query": "charged twice for Premium"}, headers=r))
    assert out["profile_id"] == made["profile"]["id"]
    assert "<customer_memory" in out["context"]
    assert any(i["type"] == "message" for i in out["items"])
    assert all(0.0 <= i["score"] <= 1.0 for i in out["items"])
    only_traits = _ok(
        client.post(
            url,
            json={
                "query": "refund",
                "conversation_id": made["conversation"]["id"],
                "max_messages": 0,
                "max_observations": 0,
                "max_summaries": 0,
                "token_budget": 800,
                "advanced": {
                    "channels": ["sms"],
                    "roles": ["customer"],
                    "since": "2020-01-01T00:00:00Z",
                    "until": "2100-01-01T00:00:00Z",
                    "as_of": "2100-01-01T00:00:00Z",
                    "min_score": 0.0,
                    "mode": "keyword",
                },
            },
            headers=r,
        )
    )
    assert all(i["type"] == "trait" for i in only_traits["items"])
    wrong = client.post(
        url,
        json={"advanced": {"since": "2030-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}},
        headers=r,
    )
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM
    unknown = client.post("/v1/profiles/phone:+16175550100/recall", json={}, headers=r)
    assert unknown.status_code == 404 and unknown.json()["kind"] == "profile"


def test_knowledge_text_sources_are_searched_with_citations_and_recalled(
    client: TestClient, keys: Keys
) -> None:
    _conversation(client, keys)
    a = bearer(keys.admin)
    base = _ok(client.post("/v1/knowledge/bases", json={"name": "help"}, headers=a), 201)
    added = client.post(
        "/v1/knowledge/sources",
        json={
            "knowledge_base": "help",
            "title": "Refunds",
            "text": "# Refunds\n\nDuplicate charges are refunded within 5 business days.",
        },
        headers=a,
    )
    assert added.status_code == 201, added.text
    source = added.json()
    assert source["status"] == "ready"
    found = _ok(
        client.post("/v1/knowledge/search", json={"query": "duplicate charge refund"}, headers=a)
    )
    assert found["passages"] and found["passages"][0]["citation"]["source_id"] == source["id"]
    assert "Refunds" in found["passages"][0]["cite_as"]
    recalled = _ok(
        client.post(
            f"/v1/profiles/{PHONE}/recall",
            json={"query": "how long do refunds take", "include_knowledge": True},
            headers=a,
        )
    )
    assert any(i["type"] == "knowledge" and i["citation"] for i in recalled["items"])
    view = _ok(client.get(f"/v1/knowledge/bases/{base['id']}", headers=a))
    assert [s["id"] for s in view["sources"]] == [source["id"]]
    assert _ok(client.get(f"/v1/knowledge/sources/{source['id']}", headers=a))["id"] == source["id"]
    duplicate = client.post("/v1/knowledge/bases", json={"name": "help"}, headers=a)
    assert duplicate.status_code == 409 and duplicate.headers["content-type"] == PROBLEM
    removed = _ok(client.delete(f"/v1/knowledge/sources/{source['id']}", headers=a))
    assert removed["deleted"]
    _ok(client.delete(f"/v1/knowledge/bases/{base['id']}", headers=a))
    assert _ok(client.get("/v1/knowledge/bases", headers=a)) == []


def test_conversations_are_listed_by_profile_and_deleted_with_a_receipt(
    client: TestClient, keys: Keys
) -> None:
    first = _conversation(client, keys)
    second = _conversation(client, keys, channel="chat", messages=[])
    listed = _ok(client.get(f"/v1/profiles/{PHONE}/conversations", headers=bearer(keys.read)))
    ids = [c["id"] for c in listed["items"]]
    assert set(ids) == {first["conversation"]["id"], second["conversation"]["id"]}
    summaries = _ok(client.get(f"/v1/profiles/{PHONE}/summaries", headers=bearer(keys.read)))
    assert isinstance(summaries, list)
    cid = first["conversation"]["id"]
    receipt = _ok(client.delete(f"/v1/conversations/{cid}", headers=bearer(keys.admin)))
    assert receipt["target"] == f"conversation:{cid}"
    assert client.get(f"/v1/conversations/{cid}", headers=bearer(keys.read)).status_code == 404


def test_governance_policy_audit_retention_and_keys(
    client: TestClient, keys: Keys, memory: Memory
) -> None:
    a = bearer(keys.admin)
    policy = _ok(client.get("/v1/policy", headers=a))
    policy["remember"]["deny_trait_keys"] = ["religion"]
    stored = _ok(client.put("/v1/policy", json=policy, headers=a))
    assert stored["remember"]["deny_trait_keys"] == ["religion"]
    _conversation(client, keys)
    denied = client.put(
        f"/v1/profiles/{PHONE}/traits/religion", json={"value": "x"}, headers=bearer(keys.write)
    )
    assert denied.status_code == 403 and denied.headers["content-type"] == PROBLEM
    assert _ok(client.delete("/v1/policy", headers=a))["remember"]["deny_trait_keys"] == []
    # periods are RFC 3339 durations (pydantic alone would write P1Y35D for 400 days)
    policy["retention"] = {"messages": "P400DT1H", "observations": "P365D", "summaries": None}
    periods = _ok(client.put("/v1/policy", json=policy, headers=a))["retention"]
    assert periods == {"messages": "P400DT1H", "observations": "P365D", "summaries": None}
    assert _ok(client.get("/v1/policy", headers=a))["retention"] == periods

    issued = client.post("/v1/keys", json={"role": "read", "name": "widget"}, headers=a)
    assert issued.status_code == 201
    token, key = issued.json()["token"], issued.json()["key"]
    assert "salt" not in key and "secret_hash" not in key
    assert _ok(client.get("/v1/profiles", headers=bearer(token)))["items"]
    listed = _ok(client.get("/v1/keys", headers=a))
    assert key["id"] in {k["id"] for k in listed}
    assert all("secret_hash" not in k and "salt" not in k for k in listed)
    assert _ok(client.delete(f"/v1/keys/{key['id']}", headers=a))["revoked_at"]
    assert client.get("/v1/profiles", headers=bearer(token)).status_code == 401

    events = _ok(client.get("/v1/audit", params={"action": "create_api_key"}, headers=a))
    assert events and {e["action"] for e in events} == {"create_api_key"}
    by_actor = _ok(client.get("/v1/audit", params={"actor": "key:" + key["id"]}, headers=a))
    assert all(e["actor"] == "key:" + key["id"] for e in by_actor)
    writer_id = keys.write.split(".")[2]
    mine = _ok(client.get("/v1/audit", params={"actor": f"key:{writer_id}"}, headers=a))
    assert mine, "the REST writes are audited under the key that made them"
    exported = client.get("/v1/audit/export", headers=a)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert len(lines) >= len(events) and all(line["tenant"] == "acme" for line in lines)
    receipt = _ok(client.post("/v1/retention/run", headers=a))
    assert receipt["tenant"] == "acme"


def test_errors_are_problem_details(client: TestClient, keys: Keys) -> None:
    r = bearer(keys.read)
    missing = client.get("/v1/conversations/cnv_missing", headers=r)
    body = missing.json()
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert body["type"].endswith("/not-found") and body["kind"] == "conversation"
    assert body["instance"] == "/v1/conversations/cnv_missing" and body["detail"]
    invalid = client.get("/v1/profiles", params={"limit": 0}, headers=r)
    assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM
    assert invalid.json()["errors"][0]["loc"] == ["query", "limit"]
    not_json = client.post(
        "/v1/knowledge/search",
        content=b"{not json",
        headers=r | {"content-type": "application/json"},
    )
    assert not_json.status_code == 422 and not_json.headers["content-type"] == PROBLEM
    unknown_route = client.get("/v1/nothing-here", headers=r)
    assert unknown_route.status_code == 404 and unknown_route.headers["content-type"] == PROBLEM
    not_utf8 = client.post(
        "/v1/knowledge/search",
        content=b'{"query": "\xff\xfe"}',
        headers=r | {"content-type": "application/json"},
    )
    assert not_utf8.status_code == 422 and not_utf8.headers["content-type"] == PROBLEM
    bad_identifier = client.get("/v1/profiles", params={"identifier": "phone:abc"}, headers=r)
    assert bad_identifier.status_code == 422


def test_request_bodies_over_the_limit_get_413(memory: Memory, keys: Keys) -> None:
    with make_client(memory, max_body_bytes=2048) as client:
        big = {"query": "x" * 4096}
        response = client.post("/v1/knowledge/search", json=big, headers=bearer(keys.read))
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM

        def chunks() -> Any:  # no Content-Length: counted as it streams
            for _ in range(8):
                yield b" " * 1024

        streamed = client.post(
            "/v1/knowledge/search",
            content=chunks(),
            headers=bearer(keys.read) | {"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        small = client.post("/v1/knowledge/search", json={"query": "x"}, headers=bearer(keys.read))
        assert small.status_code != 413


def test_cors_is_off_by_default_and_allows_only_listed_origins(
    client: TestClient, memory: Memory, keys: Keys
) -> None:
    preflight = {
        "Origin": "https://crm.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    off = client.options("/v1/profiles", headers=preflight)
    assert "access-control-allow-origin" not in off.headers
    with make_client(memory, cors_origins=["https://crm.example.com"]) as allowed:
        ok = allowed.options("/v1/profiles", headers=preflight)
        assert ok.headers["access-control-allow-origin"] == "https://crm.example.com"
        other = allowed.options(
            "/v1/profiles", headers=preflight | {"Origin": "https://evil.example.com"}
        )
        assert "access-control-allow-origin" not in other.headers


def test_the_mcp_endpoint_is_served_by_the_same_app_with_the_same_credentials(
    client: TestClient, keys: Keys
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    assert client.post("/mcp", json=MCP_INITIALIZE, headers=headers).status_code == 401
    for token in (keys.read, keys.static):
        answered = client.post("/mcp", json=MCP_INITIALIZE, headers=headers | bearer(token))
        assert answered.status_code == 200, answered.text


def test_the_console_is_mounted_on_the_same_app(client: TestClient) -> None:
    from convmem_api import console

    assert hasattr(console, "create_console")
    root = client.get("/console", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    page = client.get("/console/", follow_redirects=False)
    assert page.status_code != 404
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/elsewhere").headers["content-type"] == PROBLEM
    assert client.get("/docs").status_code == 404  # FastAPI's page would load a CDN


def test_the_retention_schedule_runs_with_the_server_with_or_without_mcp(
    memory: Memory, keys: Keys
) -> None:
    import threading

    def scheduled() -> int:
        return sum(t.name == "convmem-retention" and t.is_alive() for t in threading.enumerate())

    before = scheduled()
    for with_mcp in (True, False):
        with make_client(memory, mcp=with_mcp):
            assert scheduled() == before + 1, with_mcp
        assert scheduled() == before
