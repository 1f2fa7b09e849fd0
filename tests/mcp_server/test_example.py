"""examples/mcp_client.py runs as documented and shows the round trip and a cited
knowledge search."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.mcp_server.conftest import child_env

pytestmark = pytest.mark.slow


def test_mcp_client_example_remembers_then_recalls(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "mcp_client.py")],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env=child_env(XDG_DATA_HOME=str(tmp_path / "data")),
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "tools: recall, search_knowledge, remember, get_profile, update_profile, "
        "list_observations, correct_observation, forget, list_knowledge_sources, "
        "add_knowledge_source, refresh_knowledge_source, remove_knowledge_source" in out
    )
    assert "remembered 3 messages in cnv_" in out
    assert "[sms] I was charged twice for Premium in May." in out
    assert '<customer_memory profile="prf_' in out
    assert "knowledge: A product that arrives damaged can be returned within 60 days" in out
    assert (
        "source: Returns policy › Returns › Damaged items (https://help.example.com/returns" in out
    )
    assert not (tmp_path / "data").exists()  # the example wrote only to its temp dir
