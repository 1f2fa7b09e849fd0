"""The examples run offline, as a user would run them, and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run_example(name: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_")}
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_langchain_support_agent_example() -> None:
    pytest.importorskip("langchain_core", reason="needs the langchain extra")
    out = _run_example("langchain_support_agent.py")

    memory_first_turn = out.split("memory for the first turn:")[1].split("help center")[0]
    assert "preferred_channel: sms" in memory_first_turn  # extracted from the past SMS
    help_first_turn = out.split("help center for the first turn:")[1].split("customer:")[0]
    assert (
        "- Replacements for damaged items ship within one business day, free of charge. "
        "[Acme Help Center › Shipping › Replacements (https://help.acme.example/shipping, "
        "chunk 1)]"
    ) in help_first_turn
    assert "agent:    It shipped this morning" in out
    assert "agent tools: recall, search_knowledge, remember" in out
    searched = out.split("tool search_knowledge(")[1].split("tool remember(")[0]
    assert "-> success" in searched
    assert "[Acme Help Center › Shipping › Changing the delivery address" in searched
    assert "add: Wants deliveries sent to the office at 200 Clarendon St" in out
    recalled = out.split("tool recall('delivery address') ->")[1].split("stored:")[0]
    assert "recalled DATA about the customer" in recalled
    assert '<item type="observation' in recalled and '<item type="message' in recalled
    assert "stored: 4 messages in conversation web-chat-20260611-0042" in out
    found = out.split("the retriever now finds what the customer said in this chat:")[1]
    first = found.strip().splitlines()[0]
    assert first.endswith("Please deliver it to my office at 200 Clarendon St from now on.")


def test_llamaindex_query_engine_example() -> None:
    pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")
    out = _run_example("llamaindex_query_engine.py")

    sources = out.split("sources:")[1].split("query:")[0]
    assert "trait" in sources and "tier: gold" in sources
    assert "preferred_channel: sms" in sources  # extracted from the past SMS
    both = out.split("sources:")[2].split("customer:")[0]
    kinds = [line.split()[1] for line in both.strip().splitlines()]
    assert {"trait", "message", "knowledge"} <= set(kinds)
    assert (
        "knowledge A duplicate charge is refunded to the original card; the refund takes up "
        "to five business days to appear on the statement. "
        "[Billing FAQ › Duplicate charges (https://acme.example/faq, chunk 1)]"
    ) in both
    assert "I've refunded the duplicate charge; allow five days. voice human_agent" in both
    assert "agent:    Will do - you'll get a text, not a call." in out
    given = out.split("what the model is given next turn")[1]
    assert "recalled DATA about the customer" in given
    assert "preferred_channel: sms" in given  # extracted from the past SMS
    assert "stored: 4 messages in conversation cnv_" in out
    assert "  customer  Great. Text me when it lands." in out
