"""Conversation Memory over HTTP: the REST API (``/v1``), the console for human
agents (``/console``) and the MCP endpoint (``/mcp``), served by one FastAPI
application on one port with one set of credentials.

Build it with :func:`convmem_api.app.create_app`; ``convmem serve --http``
serves it. Bearer authentication lives in :mod:`convmem_api.auth` (shared by the
REST API and the console). FastAPI is imported only by the modules that need it
(the ``api`` extra), never by this package's ``__init__``.
"""

from __future__ import annotations

__all__: list[str] = []
