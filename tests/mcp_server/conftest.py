"""Fixtures for the MCP server: an in-process server on the test's Memory, a
clean environment for subprocesses, and result helpers.

Tests connect with ``async with Client(server) as client:`` in their own body:
an async-generator fixture would enter the SDK's task group in one task and
leave it in another (pytest-asyncio runs fixture set-up and tear-down apart).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from mcp.server import MCPServer
from mcp.types import CallToolResult

from convmem_mcp.server import AppState, create_server
from memory_core.memory import Memory

PHONE = "phone:+16175550142"


@pytest.fixture
def server(memory: Memory) -> MCPServer[AppState]:
    """The MCP server over the test's Memory (tenant ``default``)."""
    return create_server(memory=memory)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CONVMEM_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_")}
    return {**env, **extra}


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured output of a successful tool call."""
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The message of a failed tool call (a tool error, never a normal result)."""
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    return " ".join(getattr(block, "text", "") for block in result.content)


def first_exchange(**extra: Any) -> dict[str, Any]:
    """remember arguments: an SMS from the customer and the agent's answer."""
    return {
        "channel": "sms",
        "customer": PHONE,
        "messages": [
            {"role": "customer", "text": "I was charged twice for Premium this month."},
            {"role": "human_agent", "text": "Refunded the duplicate charge, sorry about that."},
        ],
        **extra,
    }
