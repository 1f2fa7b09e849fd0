"""``convmem demo``, the quick start's main job: real local model, throwaway store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory_core.cli.app import app


@pytest.mark.slow
def test_demo_resolves_one_customer_across_channels_and_recalls() -> None:
    result = CliRunner().invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # rich wraps lines
    assert "live profiles: 1" in out
    assert "phone:+16175550142" in out and "email:dana.whitfield@example.com" in out
    context = out[out.index("<customer_memory") : out.index("</customer_memory")]
    assert "text me instead of calling" in context  # the contact preference is recalled
    assert "plan: Premium" in context
    store = re.search(r"store: (\S+) \(throwaway\)", out)
    assert store is not None and not Path(store.group(1)).exists()  # nothing left behind
