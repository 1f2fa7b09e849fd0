"""Conversation Memory as an MCP server: customer memory as tools for any LLM agent.

* :mod:`memory_core.tools` - what each tool does, as typed functions over
  :class:`memory_core.Memory` (no MCP import; the LangChain adapter reuses them);
* :mod:`convmem_mcp.server` - :func:`create_server`, the MCP layer over them
  (tools, resources, prompts; stdio and streamable HTTP);
* :mod:`convmem_mcp.auth` - bearer tokens bound to tenants, for HTTP;
* :mod:`convmem_mcp.cli` - ``convmem serve``, ``convmem bench-mcp``, ``convmem mcp-token``;
* :mod:`convmem_mcp.bench` - per-tool latency over stdio and HTTP beside the Python API;
* :mod:`convmem_mcp.tokens` - what the tool list and a recall result cost in tokens,
  beside the tools before issue 14.

Importing this package imports nothing else: the names below load on first
access, and only ``create_server`` needs the ``mcp`` SDK (an optional extra).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory_core.tools import TOOLS, ToolSpec

    from .auth import TokenTable
    from .server import create_server

__all__ = ["TOOLS", "TokenTable", "ToolSpec", "create_server"]

_WHERE = {
    "TOOLS": "memory_core.tools",
    "ToolSpec": "memory_core.tools",
    "TokenTable": ".auth",
    "create_server": ".server",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `convmem` loads its plugin without the engine or the SDK.
    if name in _WHERE:
        return getattr(import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
