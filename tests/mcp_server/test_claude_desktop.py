"""examples/claude_desktop.md works as written: its Claude Desktop config starts
``convmem serve`` with its ``env`` block (paths replaced), and its HTTP client
script runs against a real ``convmem serve --http`` on a free loopback port with
an API key."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from convmem_mcp.bench import HttpServerProcess, convmem_command
from memory_core.memory import Memory
from tests.conftest import REPO
from tests.mcp_server.conftest import child_env

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "claude_desktop.md"


def _blocks(language: str) -> list[str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_desktop_config_starts_the_server_with_its_env(tmp_path: Path) -> None:
    config: dict[str, Any] = json.loads(_blocks("json")[0])
    server = config["mcpServers"]["convmem"]
    assert {"CONVMEM_LLM_MODEL", "OPENAI_API_KEY"} <= set(server["env"])
    args = [str(tmp_path / "support.db") if a.endswith("support.db") else a for a in server["args"]]
    assert args[:3] == ["serve", "--tenant", "acme"]
    command, *prefix = convmem_command()  # the config's absolute path, in this environment
    params = StdioServerParameters(
        command=command,
        args=[*prefix, *args, "--embedder", "hash"],
        env={**child_env(XDG_DATA_HOME=str(tmp_path)), **server["env"]},
        cwd=tmp_path,
    )

    async def listed() -> set[str]:
        with anyio.fail_after(60):
            async with Client(params) as client:
                return {t.name for t in (await client.list_tools()).tools}

    assert "recall" in anyio.run(listed)
    assert (tmp_path / "support.db").is_file()
    bridge = json.loads(_blocks("json")[1])["mcpServers"]["convmem-http"]
    assert "${CONVMEM_AUTH}" in " ".join(bridge["args"]) and "CONVMEM_AUTH" in bridge["env"]


def test_the_http_script_runs_against_a_real_server(tmp_path: Path) -> None:
    [script] = _blocks("python")
    assert "asyncio.run(main())" in script
    db = tmp_path / "http.db"
    with Memory.open(db, embedder="hash") as memory:
        key = memory.tenants.add("acme").governance.keys.add("write", "support-agent").secret
    environ = child_env(XDG_DATA_HOME=str(tmp_path / "data"))
    with HttpServerProcess(db, {}, environ=environ) as server:
        (tmp_path / "client.py").write_text(script, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, str(tmp_path / "client.py")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**environ, "CONVMEM_MCP_URL": server.url, "CONVMEM_MCP_TOKEN": key},
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(
        "tools: recall, search_knowledge, remember, get_profile, update_profile, "
        "list_observations, correct_observation\n"
    )  # a write key: no forget, no knowledge-base management
    assert "stored in cnv_" in out
    assert "recalled DATA about the customer" in out
    assert "I was charged twice for Premium in May." in out
    assert "message sms msg_" in out
    with Memory.open(db, embedder="hash") as memory:
        assert memory.tenant("acme").profiles.find("phone:+16175550142") is not None
