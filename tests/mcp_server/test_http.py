"""``convmem serve --http`` as a real subprocess on 127.0.0.1: bearer-token auth,
tenant isolation by token, and a bounded burst of concurrent clients."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import MCPError

from convmem_mcp.bench import HttpServerProcess, convmem_command, http_client
from memory_core.memory import Memory
from tests.mcp_server.conftest import PHONE, child_env, error_text, first_exchange, ok

pytestmark = pytest.mark.slow

TOKEN_A = "tenant-a-token-0123456789abcdef"
TOKEN_A2 = "tenant-a-second-token-0123456789"
TOKEN_B = "tenant-b-token-0123456789abcdef"
JSONRPC_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServerProcess]:
    root = tmp_path_factory.mktemp("http")
    with HttpServerProcess(
        root / "http.db",
        {TOKEN_A: "tenant-a", TOKEN_A2: "tenant-a", TOKEN_B: "tenant-b"},
        environ=child_env(XDG_DATA_HOME=str(root / "data")),
    ) as running:
        yield running


def _initialize(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789abcdef",
        f"Basic {TOKEN_A}",
        f"Bearer {TOKEN_A}x",
        "Bearer",
    ],
)
def test_requests_without_a_valid_token_get_401(
    server: HttpServerProcess, authorization: str | None
) -> None:
    headers = dict(JSONRPC_HEADERS)
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx2.post(server.url, json=_initialize(), headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert "mcp-session-id" not in response.headers


def test_a_valid_token_is_accepted(server: HttpServerProcess) -> None:
    headers = {**JSONRPC_HEADERS, "Authorization": f"Bearer {TOKEN_A}"}
    response = httpx2.post(server.url, json=_initialize(), headers=headers, timeout=10)
    assert response.status_code == 200
    assert "mcp-session-id" in response.headers


def test_a_session_cannot_be_used_with_another_token(server: HttpServerProcess) -> None:
    opened = httpx2.post(
        server.url,
        json=_initialize(),
        headers={**JSONRPC_HEADERS, "Authorization": f"Bearer {TOKEN_A}"},
        timeout=10,
    )
    session = opened.headers["mcp-session-id"]
    hijack = httpx2.post(
        server.url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        headers={
            **JSONRPC_HEADERS,
            "Authorization": f"Bearer {TOKEN_B}",
            "mcp-session-id": session,
            "mcp-protocol-version": "2025-11-25",
        },
        timeout=10,
    )
    assert hijack.status_code == 404


async def test_the_sdk_client_with_a_wrong_token_cannot_connect(server: HttpServerProcess) -> None:
    with anyio.fail_after(30), pytest.raises(BaseExceptionGroup) as failure:
        async with http_client(server.url, "wrong-token-0123456789abcdef") as client:
            await client.list_tools()
    assert failure.group_contains(MCPError, depth=None)


# -- tenants -------------------------------------------------------------------------


async def test_a_token_for_one_tenant_never_touches_another(server: HttpServerProcess) -> None:
    with anyio.fail_after(60):
        async with http_client(server.url, TOKEN_A) as a:
            saved = ok(await a.call_tool("remember", first_exchange(conversation_id="iso-a")))
            profile_id, conversation_id = saved["profile_id"], saved["conversation_id"]
            before = ok(await a.call_tool("get_profile", {"customer": profile_id}))["counts"]

        async with http_client(server.url, TOKEN_B) as b:
            # Same phone number, other tenant: nothing is known there.
            assert "no profile" in error_text(await b.call_tool("recall", {"customer": PHONE}))
            by_id = error_text(await b.call_tool("get_profile", {"customer": profile_id}))
            assert "does not exist in tenant 'tenant-b'" in by_id
            for argument, ident in (("customer", profile_id), ("conversation_id", conversation_id)):
                refused = await b.call_tool("forget", {argument: ident})
                assert "does not exist" in error_text(refused)
            appended = await b.call_tool(
                "remember",
                {
                    "conversation_id": conversation_id,
                    "messages": [{"role": "customer", "text": "x"}],
                },
            )
            assert f"no conversation {conversation_id!r}" in error_text(appended)
            # Tenant B's own customer with the same phone is a different profile.
            own = ok(await b.call_tool("remember", first_exchange()))
            assert own["profile_id"] != profile_id

        async with http_client(server.url, TOKEN_A2) as a2:  # another token of tenant A
            after = ok(await a2.call_tool("get_profile", {"customer": profile_id}))
            assert after["counts"] == before
            recalled = ok(await a2.call_tool("recall", {"customer": PHONE, "query": "charged"}))
            assert {i["provenance"]["conversation_id"] for i in recalled["items"]} == {"iso-a"}


async def test_resources_are_scoped_by_token_too(server: HttpServerProcess) -> None:
    with anyio.fail_after(60):
        async with http_client(server.url, TOKEN_A) as a:
            saved = ok(await a.call_tool("remember", first_exchange(channel="email")))
            text = (await a.read_resource(f"convmem://profiles/{saved['profile_id']}")).contents
            assert saved["profile_id"] in getattr(text[0], "text", "")
        async with http_client(server.url, TOKEN_B) as b:
            with pytest.raises(MCPError, match="does not exist"):
                await b.read_resource(f"convmem://profiles/{saved['profile_id']}")


async def test_a_burst_of_concurrent_clients_is_answered_correctly(
    server: HttpServerProcess,
) -> None:
    clients, calls_each = 5, 4
    results: dict[tuple[int, int], dict[str, Any]] = {}

    async def one_client(n: int) -> None:
        # Clients 2k (tenant A) and 2k+1 (tenant B) talk about the same phone number
        # at the same time: each must only ever see its own tenant's messages.
        token = TOKEN_A if n % 2 == 0 else TOKEN_B
        phone = f"phone:+1617555{n // 2:04d}"
        async with http_client(server.url, token) as client:
            for i in range(calls_each):
                saved = ok(
                    await client.call_tool(
                        "remember",
                        {
                            "channel": "chat",
                            "customer": phone,
                            "conversation_id": f"burst-{n}",
                            "messages": [{"role": "customer", "text": f"client {n} call {i}"}],
                        },
                    )
                )
                got = ok(await client.call_tool("recall", {"customer": phone, "max_messages": 50}))
                results[(n, i)] = {"saved": saved, "got": got}

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for n in range(clients):
                tg.start_soon(one_client, n)

    assert len(results) == clients * calls_each
    for (n, i), r in results.items():
        texts = {item["text"] for item in r["got"]["items"]}
        assert texts == {f"client {n} call {k}" for k in range(i + 1)}
        assert r["got"]["profile_id"] == r["saved"]["profile_id"]


# -- start-up -------------------------------------------------------------------------


def _serve_http(db: Path) -> subprocess.CompletedProcess[str]:
    """``convmem serve --http`` on ``db`` with no token configured, expected to exit."""
    return subprocess.run(
        [*convmem_command(), "serve", "--http", "--port", "0", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=db.parent,
        env=child_env(XDG_DATA_HOME=str(db.parent)),
    )


def test_http_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    done = _serve_http(tmp_path / "x.db")
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert "refusing to serve HTTP without authentication" in said
    assert "convmem keys create" in said and "convmem mcp-token" in said
    assert not (tmp_path / "x.db").exists()


def test_http_with_only_revoked_api_keys_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "revoked.db"
    with Memory.open(db, embedder="hash") as memory:
        keys = memory.tenants.add("acme").governance.keys
        old = keys.add("admin", "old")
        keys.revoke(old.key_id)
    done = _serve_http(db)
    assert done.returncode == 2
    assert "no API key is stored and no bearer token" in " ".join(done.stderr.split())


async def test_http_starts_with_api_keys_alone(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    with Memory.open(db, embedder="hash") as memory:
        acme_keys = memory.tenants.add("acme").governance.keys
        globex_keys = memory.tenants.add("globex").governance.keys
        writer = acme_keys.add("write", "agent").secret
        acme_keys.add("read", "dashboard")
        other = globex_keys.add("admin", "ops").secret
    environ = child_env(XDG_DATA_HOME=str(tmp_path / "data"))
    with HttpServerProcess(db, {}, environ=environ) as server:  # no token table at all
        assert any(
            "accepts API keys for acme (2), globex (1)" in line for line in server.stderr_lines
        )
        unauthenticated = httpx2.post(server.url, json=_initialize(), headers=JSONRPC_HEADERS)
        assert unauthenticated.status_code == 401
        with anyio.fail_after(60):
            async with http_client(server.url, writer) as acme:
                saved = ok(await acme.call_tool("remember", first_exchange()))
                got = ok(await acme.call_tool("recall", {"customer": PHONE, "query": "charged"}))
                assert got["profile_id"] == saved["profile_id"]
                denied = error_text(await acme.call_tool("forget", {"customer": PHONE}))
                assert "role 'write'; this needs 'admin'" in denied
            async with http_client(server.url, other) as globex:
                assert "no profile" in error_text(
                    await globex.call_tool("recall", {"customer": PHONE})
                )
        # Keys are looked up per request: revoked while the server runs, refused at once.
        with Memory.open(db, embedder="hash") as memory:
            acme_keys = memory.tenant("acme").governance.keys
            [key] = [k for k in acme_keys.list() if k.name == "agent"]
            acme_keys.revoke(key.id)
        headers = {**JSONRPC_HEADERS, "Authorization": f"Bearer {writer}"}
        revoked = httpx2.post(server.url, json=_initialize(), headers=headers, timeout=10)
        assert revoked.status_code == 401


def test_http_refuses_a_tenant_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [*convmem_command(), "serve", "--http", "--tenant", "acme"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=child_env(CONVMEM_MCP_TOKENS=f'{{"{TOKEN_A}": "acme"}}'),
    )
    assert done.returncode == 2
    assert "each bearer token names its tenant" in " ".join(done.stderr.split())
