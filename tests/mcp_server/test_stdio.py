"""``convmem serve`` as a real subprocess, driven over stdio by the SDK's client."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client

from convmem_mcp.bench import stdio_parameters
from memory_core.memory import Memory
from tests.mcp_server.conftest import PHONE, child_env, error_text, first_exchange, ok

pytestmark = pytest.mark.slow


async def test_remember_then_recall_over_stdio(tmp_path: Path) -> None:
    db = tmp_path / "stdio.db"
    params = stdio_parameters(db, tenant="acme", env=child_env(XDG_DATA_HOME=str(tmp_path)))
    with anyio.fail_after(60):
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"recall", "remember", "get_profile", "update_profile", "forget"} <= names
            saved = ok(await client.call_tool("remember", first_exchange()))
            got = ok(
                await client.call_tool(
                    "recall", {"customer": "phone:+1 617-555-0142", "query": "charged twice"}
                )
            )
            assert got["profile_id"] == saved["profile_id"]
            assert got["items"][0]["text"] == "I was charged twice for Premium this month."
            assert got["items"][0]["provenance"]["conversation_id"] == saved["conversation_id"]
            assert "I was charged twice" in got["context"]
            missing = error_text(await client.call_tool("get_profile", {"customer": "x@y.org"}))
            assert "no profile" in missing
    # The server wrote to the store it was given, in the tenant it was given.
    with Memory.open(db, embedder="hash") as memory:
        assert memory.tenant("acme").profiles.get(PHONE).id == saved["profile_id"]
        assert memory.profiles.find(PHONE) is None  # not in "default"
