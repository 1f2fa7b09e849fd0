"""Conversation Memory as an MCP server: customer memory as tools for any LLM agent.

* :mod:`memory_core.tools` - what each tool does, as typed functions over
  :class:`memory_core.Memory` (no MCP import; the LangChain adapter reuses them);
* :mod:`mcp_server.server` - :func:`create_server`, the MCP layer over them
  (tools, resources, prompts; stdio and streamable HTTP);
* :mod:`mcp_server.auth` - bearer tokens bound to tenants, for HTTP;
* :mod:`mcp_server.cli` - ``convmem serve``, ``convmem bench-mcp``, ``convmem mcp-token``;
* :mod:`mcp_server.bench` - per-tool latency over stdio and HTTP beside the Python API.

Importing this package imports nothing else: the names below load on first
access, and only ``create_server`` needs the ``mcp`` SDK (an optional extra).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_server.auth import TokenTable
    from mcp_server.server import create_server
    from memory_core.tools import TOOLS, ToolSpec

__all__ = ["TOOLS", "TokenTable", "ToolSpec", "create_server"]

_WHERE = {
    "TOOLS": "memory_core.tools",
    "ToolSpec": "memory_core.tools",
    "TokenTable": "mcp_server.auth",
    "create_server": "mcp_server.server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `convmem` loads its plugin without the engine or the SDK.
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'mcp_server' has no attribute {name!r}")
