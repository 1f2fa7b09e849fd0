"""The README's Python example runs as written (with the hash embedder, for speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README has a Python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0], encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CONVMEM_EMBEDDER": "hash"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "I was charged twice for Premium this month." in out.stdout
    assert "</customer_memory nonce=" in out.stdout
