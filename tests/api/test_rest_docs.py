"""The curl examples of docs/rest.md run, as written, against a live server
(``convmem serve --http`` on 127.0.0.1 and a free port, a real SQLite store),
in order: each block marked ``<!-- curl-test -->`` must exit 0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from convmem_mcp.bench import HttpServerProcess
from tests.api.conftest import MCP_INITIALIZE
from tests.mcp_server.conftest import child_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rest.md"
README = ROOT / "README.md"
TOKEN = "rest-docs-token-0123456789abcdef"
_BLOCK = re.compile(r"<!-- curl-test -->\s*\n```bash\n(?P<code>.*?)```", re.S)


def blocks(doc: Path = DOC) -> list[str]:
    return [m.group("code") for m in _BLOCK.finditer(doc.read_text(encoding="utf-8"))]


def run(code: str, base_url: str, cwd: Path) -> str:
    """Run one example with bash; its stdout (it must exit 0)."""
    env = {**os.environ, "CONVMEM_URL": base_url, "TOKEN": TOKEN}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("rest-docs")
    environ = child_env(XDG_DATA_HOME=str(root / "data"))
    with HttpServerProcess(root / "docs.db", {TOKEN: "acme"}, environ=environ) as server:
        yield server.url.removesuffix("/mcp")


def test_the_doc_has_curl_examples_of_each_kind() -> None:
    found = blocks()
    assert len(found) >= 6
    text = "\n".join(found)
    for wanted in ("/recall", "/messages", "/v1/imports", "/knowledge/search", "audit/export"):
        assert wanted in text


def test_the_curl_examples_run_against_a_live_server(base_url: str, tmp_path: Path) -> None:
    assert shutil.which("curl"), "curl is needed"
    outputs = [run(code, base_url, tmp_path) for code in blocks()]
    stored, recalled, traits, knowledge, job, errors, _ = outputs
    assert '"id":"call-0001"' in stored and '"skipped":1' in stored  # the retry was skipped
    assert "<customer_memory" in recalled
    assert '"source":"crm"' in traits
    assert '"cite_as"' in knowledge
    assert '"kind":"import"' in job
    assert "application/problem+json" in errors and "HTTP/1.1 401" in errors
    assert "www-authenticate: bearer" in errors.lower()
    assert (tmp_path / "audit.jsonl").read_text().strip()


def test_the_readme_curl_example_runs_against_a_live_server(base_url: str, tmp_path: Path) -> None:
    (code,) = blocks(README)
    out = run(code, base_url, tmp_path)
    assert "My parcel to Boston is late again." in out and "<customer_memory" in out


def test_one_port_serves_the_rest_api_the_console_and_mcp(base_url: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx2.get(f"{base_url}/v1/jobs", headers=auth, timeout=30).status_code == 200
    assert httpx2.get(f"{base_url}/v1/jobs", timeout=30).status_code == 401
    assert httpx2.get(f"{base_url}/console/", timeout=30).status_code != 404
    answered = httpx2.post(
        f"{base_url}/mcp",
        json=MCP_INITIALIZE,
        headers=auth | {"Accept": "application/json, text/event-stream"},
        timeout=30,
    )
    assert answered.status_code == 200
