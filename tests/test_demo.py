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
    # the customer's own wifi complaints rank above the agent's replies to them
    wifi = context.index("my wifi is still dropping every evening")
    assert wifi < context.index("Could you give me the phone number")
    assert context.index("router keeps dropping wifi") < context.index("Address updated.")
    store = re.search(r"store: (\S+) \(throwaway\)", out)
    assert store is not None and not Path(store.group(1)).exists()  # nothing left behind


def test_demo_shows_what_was_extracted_and_never_cuts_identifiers() -> None:
    runner = CliRunner(env={"COLUMNS": "80"})  # a default terminal
    result = runner.invoke(app, ["demo", "--embedder", "hash"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "…" not in result.output  # nothing ellipsised (identifiers, ids, texts)
    out = " ".join(result.output.split())
    assert "Observations (what the customer told us)" in out
    assert "Prefers SMS over phone calls" in out  # the headline feature, from the voice call
    assert "Conversation summaries" in out and "resolved" in out
