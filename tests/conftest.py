"""Shared fixtures: every test runs with a clean environment and its own data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.memory import Memory

REPO = Path(__file__).resolve().parents[1]
EVAL_DATA = REPO.parent / "shared" / "eval"


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No CONVMEM_* variable leaks in; the data dir and cwd are per-test."""
    for key in list(os.environ):
        if key.startswith("CONVMEM_"):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.chdir(home)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    """A Memory on a real SQLite file with the deterministic hash embedder (whose
    cosines have no calibrated scale: no default relevance floor, docs/recall.md)."""
    mem = Memory(
        SQLiteBackend(tmp_path / "memory.db"),
        HashEmbedder(),
        settings=load_settings(data_dir=tmp_path, recall_min_score=0.0),
    )
    yield mem
    mem.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests against a live Weaviate (a server process) are ``slow`` too, so the inner
    loop ``python -m pytest -m "not slow"`` leaves them out."""
    for item in items:
        if item.get_closest_marker("weaviate") is not None:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per reason a test was skipped, with a count (the live-server tests
    skip together when their server is missing), instead of a line per test."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.section("skipped tests, by reason (README: Running the tests)")
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{count:5d}  {reason}")
