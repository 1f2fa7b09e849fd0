"""docs/api.md is the generated reference of the code as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_api_reference_is_current() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "api_docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr + "\nrun: python scripts/api_docs.py"
