"""``convmem demo --console``: serve the demo's store over HTTP (REST API, MCP and
the console) and say how to open the console and sign in.

Importing this module imports FastAPI and uvicorn (the ``api`` extra):
``memory_core.cli.demo`` imports it only for ``--console`` and turns an
ImportError into a ConfigError that names the extra."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Callable

import uvicorn

from convmem_api.app import create_app
from memory_core.memory import Memory

__all__ = ["DEMO_CUSTOMER", "KEY_NAME", "serve_demo"]

DEMO_CUSTOMER = "phone:+16175550142"
KEY_NAME = "demo-console"


def serve_demo(
    memory: Memory,
    say: Callable[[str], None],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> None:
    """Issue an admin key of the demo's tenant, then serve ``memory`` until
    interrupted, printing (with ``say``) the console's URL and the key once the
    server answers. ``port=0`` picks a free port."""
    issued = memory.governance.keys.add("admin", KEY_NAME)
    app = create_app(memory.settings, memory=memory, host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    base = f"http://{shown}:{sock.getsockname()[1]}"

    def ready() -> None:
        say(f"Console for human agents: {base}/console/")
        say(f"Sign in with this admin API key (tenant {memory.name!r}):")
        say(issued.secret)
        mcp = f", MCP: {base}/mcp" if importlib.util.find_spec("mcp") is not None else ""
        say(f"then look up {DEMO_CUSTOMER}. REST API: {base}/v1{mcp}. Ctrl-C stops.")

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        _Server(config, ready).run(sockets=[sock])
    finally:
        sock.close()


class _Server:
    """uvicorn's server, calling ``ready`` once it accepts requests."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if not self.should_exit:
                    ready()

        self._server = Server(config)

    def run(self, sockets: list[socket.socket]) -> None:
        self._server.run(sockets=sockets)
