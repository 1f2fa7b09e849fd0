"""``convmem bench-mcp`` at a toy size: every tool timed on the Python API, over
stdio and over HTTP (real subprocess servers), with consistent figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from convmem_mcp.bench import run_mcp_bench
from convmem_mcp.tokens import PREVIOUS

pytestmark = pytest.mark.slow


def test_every_tool_is_timed_on_each_transport(tmp_path: Path) -> None:
    result = run_mcp_bench(calls=4, warmup=1, messages=20, workdir=tmp_path)
    timed = {t.tool: t for t in result.tools}
    assert set(timed) == {"recall", "search_knowledge", "remember", "get_profile"}
    for timing in timed.values():
        for latency in (timing.direct, timing.stdio, timing.http):
            assert 0 < latency.p50_ms <= latency.p95_ms
        assert timing.stdio_ratio == round(timing.stdio.p50_ms / timing.direct.p50_ms, 2)
    assert result.seeded_messages == 20 and result.embedder == "hash"
    assert result.tokens.recall.tokens < PREVIOUS.recall.tokens / 2  # tokens measured too
    assert list(tmp_path.iterdir()) == []  # the throwaway store is gone
