"""API keys on the MCP streamable HTTP transport (a real ``convmem serve --http``):
scoped to one tenant, roles enforced per tool, revocation, the audit actor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

from convmem_mcp.bench import HttpServerProcess, http_client  # noqa: E402
from memory_core.memory import Memory  # noqa: E402
from tests.mcp_server.conftest import (  # noqa: E402
    PHONE,
    child_env,
    error_text,
    first_exchange,
    ok,
)

pytestmark = pytest.mark.slow

STATIC = "static-token-tenant-a-0123456789"


@pytest.fixture(scope="module")
def keys(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HttpServerProcess, dict[str, str]]]:
    root = tmp_path_factory.mktemp("mcp-keys")
    db = root / "keys.db"
    with Memory.open(db, embedder="hash") as memory:
        a_keys = memory.tenants.add("tenant-a").governance.keys
        b_keys = memory.tenants.add("tenant-b").governance.keys
        issued = {
            "a_read": a_keys.add("read", "dashboard").secret,
            "a_write": a_keys.add("write", "ingest").secret,
            "a_admin": a_keys.add("admin", "ops").secret,
            "b_admin": b_keys.add("admin", "ops").secret,
        }
        revoked = a_keys.add("admin", "old")
        a_keys.revoke(revoked.key_id)
        issued["revoked"] = revoked.secret
    environ = child_env(XDG_DATA_HOME=str(root / "data"))
    with HttpServerProcess(db, {STATIC: "tenant-a"}, environ=environ) as server:
        yield server, issued


async def test_roles_are_enforced_per_tool(keys: tuple[HttpServerProcess, dict[str, str]]) -> None:
    server, issued = keys
    with anyio.fail_after(60):
        async with http_client(server.url, issued["a_write"]) as writer:
            saved = ok(await writer.call_tool("remember", first_exchange(conversation_id="k-1")))
            ok(await writer.call_tool("recall", {"customer": PHONE}))
            denied = error_text(await writer.call_tool("forget", {"customer": saved["profile_id"]}))
            assert "role 'write'; this needs 'admin'" in denied
        async with http_client(server.url, issued["a_read"]) as reader:
            got = ok(await reader.call_tool("recall", {"customer": PHONE, "query": "charged"}))
            assert got["items"]
            ok(await reader.call_tool("get_profile", {"customer": PHONE}))
            refused = error_text(await reader.call_tool("remember", first_exchange()))
            assert "role 'read'; this needs 'write'" in refused
            refused = error_text(
                await reader.call_tool(
                    "update_profile", {"customer": PHONE, "set_traits": {"tier": "gold"}}
                )
            )
            assert "needs 'write'" in refused
        async with http_client(server.url, issued["a_admin"]) as admin:
            forgot = ok(await admin.call_tool("forget", {"conversation_id": "k-1"}))
            assert forgot
    with Memory.open(server.db, embedder="hash") as memory:
        audit = memory.tenant("tenant-a").governance.audit
        actors = {e.actor for e in audit.list(action="ingest")}
        assert len(actors) == 1 and actors.pop().startswith("key:key_")
        assert audit.list(action="delete_conversation")[0].actor.startswith("key:")


async def test_a_key_of_one_tenant_never_touches_another(
    keys: tuple[HttpServerProcess, dict[str, str]],
) -> None:
    server, issued = keys
    with anyio.fail_after(60):
        async with http_client(server.url, issued["a_admin"]) as a:
            saved = ok(await a.call_tool("remember", first_exchange(conversation_id="k-2")))
        async with http_client(server.url, issued["b_admin"]) as b:
            assert "no profile" in error_text(await b.call_tool("recall", {"customer": PHONE}))
            refused = await b.call_tool("forget", {"customer": saved["profile_id"]})
            assert "does not exist" in error_text(refused)
        async with http_client(server.url, STATIC) as static:  # static tokens still work (admin)
            ok(await static.call_tool("get_profile", {"customer": saved["profile_id"]}))


@pytest.mark.parametrize("which", ["revoked", "forged", "garbage"])
async def test_revoked_and_forged_keys_cannot_connect(
    keys: tuple[HttpServerProcess, dict[str, str]], which: str
) -> None:
    server, issued = keys
    token = {
        "revoked": issued["revoked"],
        "forged": issued["a_admin"].replace("cmk.tenant-a.", "cmk.tenant-b.", 1),
        "garbage": "cmk.tenant-a.key_0123456789abcdef." + "A" * 43,
    }[which]
    with anyio.fail_after(30), pytest.raises(BaseExceptionGroup):
        async with http_client(server.url, token) as client:
            await client.list_tools()


def test_the_token_is_never_written_to_the_store(
    keys: tuple[HttpServerProcess, dict[str, str]],
) -> None:
    server, issued = keys
    root = Path(server.db).parent
    raw = b"".join(  # the database, its WAL and the vector matrix files beside it
        p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0].startswith("keys.db")
    )
    for token in issued.values():
        assert token.rsplit(".", 1)[1].encode() not in raw
