"""``convmem demo`` points at the console, and ``convmem demo --console`` serves
it: a real subprocess, its printed URL and key, a real HTTP client signing in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from convmem_mcp.bench import convmem_command
from memory_core.cli.app import app


def test_the_demo_ends_by_saying_how_to_open_the_console() -> None:
    result = CliRunner().invoke(app, ["demo", "--embedder", "hash"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "convmem demo --console (needs the 'api' extra: pip install '.[api]')" in out


@pytest.mark.slow
def test_demo_console_serves_the_demo_customer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="100", TMPDIR=str(tmp_path))
    process = subprocess.Popen(
        [*convmem_command(), "demo", "--console", "--embedder", "hash"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        url = key = None
        for line in process.stdout:
            seen.append(line)
            found = re.search(r"Console for human agents: (http://127\.0\.0\.1:\d+/console/)", line)
            if found:
                url = found.group(1)
            if line.startswith("cmk."):
                key = line.strip()
                break
        assert url is not None and key is not None, "".join(seen)
        store = re.search(r"store: (\S+)\s+\(kept", "".join(seen))
        assert store is not None and Path(store.group(1)).is_file(), "".join(seen)
        with httpx.Client(base_url=url.removesuffix("/console/"), timeout=30) as client:
            signed = client.post("/console/signin", data={"key": key})
            assert signed.status_code == 303
            found_customer = client.get(
                "/console/", params={"identifier": "phone:+16175550142"}, follow_redirects=True
            )
            assert found_customer.status_code == 200
            page = found_customer.text
            assert "dana.whitfield@example.com" in page and "Premium" in page
            assert "Prefers SMS over phone calls" in page  # extracted observations
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
