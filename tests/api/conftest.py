"""Fixtures for the REST API: the real app over a real SQLite store (the test's
``memory``, hash embedder), with API keys of every role in tenant ``acme``, an
admin key in tenant ``globex`` and a static token of ``acme``, driven with
httpx through Starlette's TestClient (which runs the app's lifespan, the MCP
session manager included)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from convmem_api.app import create_app
from convmem_mcp.auth import TokenTable
from memory_core.memory import Memory

PHONE = "phone:+16175550142"
STATIC_TOKEN = "acme-static-token-0123456789abcdef"
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
"""An MCP initialize request (JSON-RPC), to check /mcp answers."""


@dataclass(frozen=True)
class Keys:
    """Bearer tokens: acme's per role, globex's admin, acme's static token."""

    read: str
    write: str
    admin: str
    other_admin: str
    static: str = STATIC_TOKEN

    def of(self, role: str) -> str:
        return str(getattr(self, role))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keys(memory: Memory) -> Keys:
    acme = memory.tenants.add("acme").governance.keys
    globex = memory.tenants.add("globex").governance.keys
    return Keys(
        read=acme.add("read", "dashboard").secret,
        write=acme.add("write", "agent-desk").secret,
        admin=acme.add("admin", "ops").secret,
        other_admin=globex.add("admin", "globex-ops").secret,
    )


def make_client(memory: Memory, **options: Any) -> TestClient:
    app = create_app(
        memory=memory, tokens=TokenTable.from_mapping({STATIC_TOKEN: "acme"}), **options
    )
    return TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=True)


@pytest.fixture
def client(memory: Memory, keys: Keys) -> Iterator[TestClient]:
    with make_client(memory) as c:
        yield c


def first_conversation(**extra: Any) -> dict[str, Any]:
    """A POST /v1/conversations body: an SMS exchange, kept open."""
    return {
        "channel": "sms",
        "customer": [PHONE],
        "messages": [
            {
                "role": "customer",
                "text": "I was charged twice for Premium. I prefer SMS.",
                "id": "m-1",
            },
            {"role": "human_agent", "text": "Refunded the duplicate charge.", "id": "m-2"},
        ],
        "ended": False,
        **extra,
    }
