"""What the tools cost in tokens (convmem_mcp.tokens, printed by ``convmem bench-mcp``):
under half of the previous tools for an agent's key, and for a recall result."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio

from convmem_mcp.bench import convmem_command, run_token_figures
from convmem_mcp.tokens import PREVIOUS, measure_tokens
from memory_core.memory import Memory
from tests.mcp_server.conftest import child_env


def test_an_agents_tool_list_and_a_recall_cost_under_half(memory: Memory) -> None:
    figures = anyio.run(measure_tokens, memory)
    assert figures.tools == {"read": 4, "write": 7, "admin": 12}
    for role in ("read", "write"):
        assert figures.listed[role].tokens < PREVIOUS.listed[role].tokens / 2, role
        assert figures.listed[role].chars < PREVIOUS.listed[role].chars / 2, role
    assert figures.listed["admin"].tokens < PREVIOUS.listed["admin"].tokens  # 12 tools, not 6
    assert figures.wire.tokens < PREVIOUS.wire.tokens
    assert figures.recall.tokens < PREVIOUS.recall.tokens / 2
    assert figures.ratios["recall"] == round(figures.recall.tokens / PREVIOUS.recall.tokens, 2)


def test_bench_mcp_prints_the_token_costs_beside_the_previous_ones(tmp_path: Path) -> None:
    assert run_token_figures(workdir=tmp_path).recall.tokens > 0
    assert list(tmp_path.iterdir()) == []  # the throwaway store is gone
    done = subprocess.run(
        [*convmem_command(), "bench-mcp", "--tokens-only"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=child_env(XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="200"),
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "MCP token cost" in out
    assert "14,558 / 5,832" in out and "12,082 / 4,027" in out  # before issue 14
    assert "tools/list, write key (6 -> 7 tools)" in out
    assert "typical recall result (text)" in out
