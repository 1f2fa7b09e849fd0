"""Authentication and authorization of every REST route, and tenant isolation.

The matrix walks every route of the app (method and path, as the app lists
them, so a route added later is covered): without a credential it is 401 with
a Bearer challenge, with a role below the route's 403, with the route's role
or above neither. The adversarial tests give tenant globex's admin key every
id of tenant acme's records: nothing of acme is read, changed or deleted."""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from convmem_api.app import route_roles
from convmem_api.auth import Unauthenticated, authenticate
from convmem_mcp.auth import TokenTable
from memory_core.governance import role_allows
from memory_core.memory import Memory
from memory_core.models import AccessRole
from tests.api.conftest import PHONE, STATIC_TOKEN, Keys, bearer, first_conversation

ROUTES = sorted(route_roles())
ROLES = ("read", "write", "admin")


def _path(template: str) -> str:
    """A route's path with every parameter filled (an id that does not exist)."""
    return re.sub(r"\{[^}]+\}", "x_missing", template)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, path, json=body, headers=headers)


def test_the_matrix_covers_every_rest_route(client: TestClient) -> None:
    served = {
        (method, route["path"])
        for route in (
            {"path": p, "methods": ops}
            for p, ops in client.get("/openapi.json").json()["paths"].items()
        )
        for method in (m.upper() for m in route["methods"])
    }
    assert served == set(ROUTES)
    assert len(ROUTES) >= 50


def test_every_route_needs_a_credential_and_its_role(client: TestClient, keys: Keys) -> None:
    wrong = (
        {},
        bearer("not-a-key"),
        bearer("cmk.acme.key_0000000000000000.x" + "y" * 40),
        {"Authorization": f"Basic {keys.admin}"},
    )
    for method, path in ROUTES:
        needed = route_roles()[(method, path)]
        url = _path(path)
        where = f"{method} {path}"
        for headers in wrong:
            refused = _call(client, method, url, headers)
            assert refused.status_code == 401, (where, headers, refused.text)
            assert refused.headers["www-authenticate"].startswith("Bearer"), where
            assert refused.headers["content-type"] == "application/problem+json", where
        for role in ROLES:
            answered = _call(client, method, url, bearer(keys.of(role)))
            if role_allows(role, needed):
                assert answered.status_code not in (401, 403), (where, role, answered.text)
            else:
                assert answered.status_code == 403, (where, role, answered.text)
                assert needed in answered.json()["detail"], where
        static = _call(client, method, url, bearer(STATIC_TOKEN))  # a static token is admin
        assert static.status_code not in (401, 403), (where, static.text)


def test_authenticate_names_the_tenant_role_and_actor(memory: Memory, keys: Keys) -> None:
    caller = authenticate(memory, TokenTable.from_mapping({STATIC_TOKEN: "acme"}), keys.write)
    assert (caller.tenant, caller.role, caller.name) == ("acme", AccessRole.WRITE, "agent-desk")
    assert caller.actor.startswith("key:key_")
    static = authenticate(memory, TokenTable.from_mapping({STATIC_TOKEN: "acme"}), STATIC_TOKEN)
    assert (static.tenant, static.role) == ("acme", AccessRole.ADMIN)
    assert STATIC_TOKEN not in static.actor
    for bad in (None, "", "nope", keys.write + "x"):
        with pytest.raises(Unauthenticated):
            authenticate(memory, None, bad)


def test_a_revoked_key_is_refused_on_its_next_request(
    client: TestClient, keys: Keys, memory: Memory
) -> None:
    assert client.get("/v1/profiles", headers=bearer(keys.read)).status_code == 200
    key_id = keys.read.split(".")[2]
    memory.tenant("acme").governance.keys.revoke(key_id)
    assert client.get("/v1/profiles", headers=bearer(keys.read)).status_code == 401


# -- tenant isolation -------------------------------------------------------------------


def _seed_acme(client: TestClient, keys: Keys) -> dict[str, str]:
    """Records of every kind in tenant acme; their ids."""
    w, a = bearer(keys.write), bearer(keys.admin)
    made = client.post("/v1/conversations", json=first_conversation(ended=True), headers=w).json()
    profile_id, conversation_id = made["profile"]["id"], made["conversation"]["id"]
    observation = client.post(
        f"/v1/profiles/{profile_id}/observations", json={"text": "Owns a red bike"}, headers=w
    ).json()
    client.put(f"/v1/profiles/{profile_id}/traits/language", json={"value": "fr"}, headers=w)
    kb = client.post("/v1/knowledge/bases", json={"name": "acme-help"}, headers=a).json()
    source = client.post(
        "/v1/knowledge/sources",
        json={"knowledge_base": kb["id"], "title": "Secret", "text": "Acme's refund secret is 42."},
        headers=a,
    ).json()
    job = client.post(
        "/v1/imports",
        json={"conversations": [{"channel": "chat", "customer": ["email:x@acme.test"]}]},
        headers=w,
    ).json()
    key_id = keys.read.split(".")[2]
    return {
        "profile": profile_id,
        "conversation": conversation_id,
        "observation": observation["id"],
        "kb": kb["id"],
        "source": source["id"],
        "job": job["id"],
        "key": key_id,
    }


def test_another_tenants_key_sees_nothing_of_acme(client: TestClient, keys: Keys) -> None:
    ids = _seed_acme(client, keys)
    g = bearer(keys.other_admin)
    reads = [
        f"/v1/profiles/{ids['profile']}",
        f"/v1/profiles/{PHONE}",
        f"/v1/profiles/{ids['profile']}/export",
        f"/v1/profiles/{ids['profile']}/traits",
        f"/v1/profiles/{ids['profile']}/observations",
        f"/v1/profiles/{ids['profile']}/conversations",
        f"/v1/profiles/{ids['profile']}/summaries",
        f"/v1/conversations/{ids['conversation']}",
        f"/v1/conversations/{ids['conversation']}/messages",
        f"/v1/conversations/{ids['conversation']}/summary",
        f"/v1/observations/{ids['observation']}",
        f"/v1/observations/{ids['observation']}/history",
        f"/v1/observations/{ids['observation']}/explain",
        f"/v1/knowledge/bases/{ids['kb']}",
        "/v1/knowledge/bases/acme-help",
        f"/v1/knowledge/sources/{ids['source']}",
        f"/v1/jobs/{ids['job']}",
        f"/v1/keys/{ids['key']}",
    ]
    for url in reads:
        response = client.get(url, headers=g)
        assert response.status_code == 404, (url, response.text)
    assert client.get("/v1/profiles", headers=g).json()["items"] == []
    assert client.get("/v1/profiles", params={"identifier": PHONE}, headers=g).json()["items"] == []
    assert client.get("/v1/knowledge/bases", headers=g).json() == []
    assert client.get("/v1/jobs", headers=g).json() == []
    assert ids["key"] not in {k["id"] for k in client.get("/v1/keys", headers=g).json()}
    audit = client.get("/v1/audit", headers=g).json()
    assert all(e["tenant"] == "globex" for e in audit)
    assert "acme" not in client.get("/v1/audit/export", headers=g).text.replace("globex", "")
    recalled = client.post(f"/v1/profiles/{ids['profile']}/recall", json={}, headers=g)
    assert recalled.status_code == 404
    searched = client.post("/v1/knowledge/search", json={"query": "refund secret"}, headers=g)
    assert "42" not in searched.text


def test_another_tenants_key_changes_and_deletes_nothing_of_acme(
    client: TestClient, keys: Keys
) -> None:
    ids = _seed_acme(client, keys)
    g = bearer(keys.other_admin)
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("DELETE", f"/v1/profiles/{ids['profile']}", None),
        ("DELETE", f"/v1/conversations/{ids['conversation']}", None),
        ("DELETE", f"/v1/observations/{ids['observation']}", None),
        ("DELETE", f"/v1/knowledge/sources/{ids['source']}", None),
        ("DELETE", f"/v1/knowledge/bases/{ids['kb']}", None),
        ("DELETE", f"/v1/keys/{ids['key']}", None),
        ("DELETE", f"/v1/profiles/{ids['profile']}/traits/language", None),
        ("PUT", f"/v1/profiles/{ids['profile']}/traits/language", {"value": "de"}),
        ("POST", f"/v1/profiles/{ids['profile']}/identifiers", {"identifier": "email:e@x.test"}),
        ("POST", f"/v1/profiles/{ids['profile']}/observations", {"text": "Planted"}),
        ("POST", f"/v1/observations/{ids['observation']}/retract", {}),
        (
            "POST",
            f"/v1/conversations/{ids['conversation']}/messages",
            {"messages": [{"role": "customer", "text": "planted"}]},
        ),
        ("POST", f"/v1/conversations/{ids['conversation']}/end", None),
        ("POST", f"/v1/knowledge/sources/{ids['source']}/refresh", {"text": "planted"}),
        ("POST", f"/v1/knowledge/bases/{ids['kb']}/reindex", None),
    ]
    for method, url, body in writes:
        response = client.request(method, url, json=body, headers=g)
        assert response.status_code == 404, (method, url, response.text)
    # a body naming acme's profile gets globex's tenant (a new profile there), never acme's
    planted = client.post(
        "/v1/conversations",
        json={"channel": "sms", "profile_id": ids["profile"], "messages": []},
        headers=g,
    )
    assert planted.status_code == 404
    a = bearer(keys.admin)
    assert (
        client.get(f"/v1/profiles/{ids['profile']}", headers=a).json()["traits"][0]["value"] == "fr"
    )
    assert (
        client.get(f"/v1/observations/{ids['observation']}", headers=a).json()["status"] == "active"
    )
    assert client.get(f"/v1/knowledge/sources/{ids['source']}", headers=a).status_code == 200
    messages = client.get(f"/v1/conversations/{ids['conversation']}/messages", headers=a).json()
    assert all("planted" not in m["text"] for m in messages["items"])
    assert client.get("/v1/profiles", headers=bearer(keys.read)).status_code == 200
