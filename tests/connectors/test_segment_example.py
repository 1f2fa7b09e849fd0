"""``examples/crm_segment_import.py`` runs offline, as a user would run it, and shows
what it promises: the Segment import and push, then the Salesforce import and
write-back against the example's local stand-in for the Salesforce REST API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "crm_segment_import.py"


@pytest.mark.slow
def test_the_crm_segment_import_example_runs_offline() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONVMEM_", "SEGMENT_", "SALESFORCE_"))
    }
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert "dry run: segment (dry run):" in out
    assert "profiles after the dry run: 0" in out
    assert "import: segment: 4 created, 0 updated, 1 skipped, 0 failed" in out
    assert "re-run: segment: 0 created, 0 updated, 5 skipped, 0 failed" in out
    assert "plan: premium (the late, older identify was ignored)" in out
    assert 'source="segment">Order Completed on 2026-11-20: order_id=50314b8e' in out
    assert 'source="segment">plan: premium' in out
    assert "identify: preferred_channel" in out
    # Salesforce, from the example's local stand-in for the REST API
    assert "import: salesforce: 2 created, 0 updated, 0 skipped, 0 failed" in out
    assert "re-run: salesforce: 0 created, 0 updated, 0 skipped, 0 failed" in out
    context = out.split("recall with the CRM data:")[1]
    assert 'source="crm">company: Whitfield Dental' in context
    assert 'source="segment">plan: premium' in context  # the same profile as Segment's
    assert 'source="crm">Salesforce case 00001026: Charged twice' in context
    assert "write-back: salesforce: 1 created" in out
    assert "Task on 0035e00000Dana1AAA: Conversation summary (chat):" in out
