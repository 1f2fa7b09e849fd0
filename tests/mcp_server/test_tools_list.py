"""The MCP tools/list is pinned: every tool's name, title, description, input and
output schemas and annotations, exactly as a client receives them (over stdio,
where every tool is listed).

``tools_list.json`` is the shape of issue 14 (one vocabulary, compact schemas,
the observation and knowledge-base tools; the changes for tool users are in
docs/tools.md). A difference is a change for every MCP client, so it must be
deliberate: update the snapshot with
``UPDATE_TOOLS_LIST=1 pytest tests/mcp_server/test_tools_list.py`` (not a
``CONVMEM_*`` name: the tests clear those), review its diff, and say what
changed in docs/tools.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server import MCPServer

from convmem_mcp.server import AppState

SNAPSHOT = Path(__file__).with_name("tools_list.json")


async def _tools_list(server: MCPServer[AppState]) -> list[dict[str, Any]]:
    async with Client(server, raise_exceptions=True) as client:
        listed = (await client.list_tools()).tools
    # The wire form (camelCase keys, no null fields), through JSON like a client gets it.
    return json.loads(
        json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed])
    )


async def test_tools_list_matches_the_snapshot(server: MCPServer[AppState]) -> None:
    listed = await _tools_list(server)
    if os.environ.get("UPDATE_TOOLS_LIST") == "1":
        SNAPSHOT.write_text(json.dumps(listed, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(SNAPSHOT.read_text())
    assert [t["name"] for t in listed] == [t["name"] for t in pinned]
    for got, want in zip(listed, pinned, strict=True):
        assert got == want, f"tool {want['name']!r} differs from {SNAPSHOT.name}"
