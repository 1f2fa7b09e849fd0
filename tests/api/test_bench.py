"""``convmem bench-api`` measures recall over HTTP and in process in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from convmem_api.bench import run_api_bench

pytestmark = pytest.mark.slow


def test_the_bench_times_recall_in_process_and_over_http(tmp_path: Path) -> None:
    result = run_api_bench(calls=3, warmup=1, messages=20, workdir=tmp_path)
    assert result.calls == 3 and result.seeded_messages == 20
    for latency in (result.engine, result.tool, result.http):
        assert 0 < latency.p50_ms <= latency.p95_ms <= latency.p99_ms
    assert result.http_ratio > 0
