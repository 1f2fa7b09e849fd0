"""``convmem bench`` end to end at toy sizes: it runs, and what it reports is
consistent with what it was asked to measure. No wall-clock limits: timings on
a shared machine are only ever compared with each other, in the benchmark."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memory_core.cli.app import app

runner = CliRunner()


def _ordered(latency: dict[str, float]) -> bool:
    return 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]


@pytest.mark.slow
def test_bench_json_reports_messages_and_knowledge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVMEM_EMBEDDER", "hash")
    args = ["bench", "--sizes", "400", "--profiles", "20", "--queries", "12"]
    result = runner.invoke(app, [*args, "--knowledge", "300", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)  # one JSON document, not one per part

    [report] = data["messages"]
    assert report["backend"] == "sqlite" and report["embedder"].startswith("hash")
    assert report["ingest_msgs_per_s"] > 0 and report["embedder_alone_msgs_per_s"] > 0
    assert report["bulk_ingest_msgs_per_s"] > 0
    [size] = report["sizes"]
    assert size["messages"] == 400 and size["profiles"] == 20
    for key in ("recall", "floor", "recall_seen", "floor_seen", "tenant_vector_search"):
        assert _ordered(size[key]), (key, size[key])
    for key in ("recall_cpu", "keyword_cpu", "vector_cpu", "numpy_cpu"):  # CPU time may read 0
        assert 0 <= size[key]["p50_ms"] <= size[key]["p95_ms"] <= size[key]["p99_ms"], key
    ratio = size["recall"]["p50_ms"] / size["floor"]["p50_ms"]
    assert size["recall_ratio"] == pytest.approx(ratio, rel=0.05)
    seen = size["recall_seen"]["p50_ms"] / size["floor_seen"]["p50_ms"]
    assert size["recall_seen_ratio"] == pytest.approx(seen, rel=0.05)
    assert size["store_mb"] > 0  # the embedded store's files on disk after this size

    knowledge = data["knowledge"]
    assert knowledge["index_chunks_per_s"] > 0
    [chunks] = knowledge["sizes"]
    assert chunks["chunks"] >= 300 and chunks["sources"] >= 1  # a document may make two
    for key in ("search_end_to_end", "hybrid", "hybrid_one_kb", "vector", "numpy_baseline"):
        assert _ordered(chunks[key]), (key, chunks[key])
    assert _ordered(chunks["keyword"]) and _ordered(chunks["bm25s_baseline"])  # bench extra
    assert _ordered(chunks["keyword_ranking"])
    ranking = chunks["keyword_ranking"]["p50_ms"] / chunks["bm25s_baseline"]["p50_ms"]
    assert chunks["keyword_ranking_ratio"] == pytest.approx(ranking, rel=0.05)


@pytest.mark.slow
def test_bench_tables_only_knowledge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVMEM_EMBEDDER", "hash")
    args = ["bench", "--sizes", "", "--knowledge", "200", "--queries", "5"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "knowledge bench" in result.output and "Knowledge indexing" in result.output
    assert "Recall latency" not in result.output


@pytest.mark.parametrize("sizes", ["10k", "-5"])
def test_bench_rejects_bad_counts(sizes: str) -> None:
    result = runner.invoke(app, ["bench", "--sizes", sizes])
    assert result.exit_code == 2
    assert "--sizes" in result.output
