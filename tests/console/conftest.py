"""Fixtures of the console tests: the demo store on a real SQLite file, API keys
of each role, a second tenant with its own customer, and the console served by
a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from convmem_api.console import create_console
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.cli.demo import _run as run_demo
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.memory import Memory

PHONE = "phone:+16175550142"
OTHER_PHONE = "phone:+442079460000"
OTHER_SECRET = "Zebra-7731 loyalty vault"  # appears only in tenant "other"


@dataclass
class Keys:
    read: str
    write: str
    admin: str
    other_admin: str
    write_id: str
    admin_id: str


@dataclass
class Demo:
    memory: Memory
    keys: Keys
    profile_id: str
    other_profile_id: str


def seed(memory: Memory) -> Demo:
    """The demo's customer (``convmem demo``, extracted), keys of each role, and a
    tenant ``other`` with a customer of its own."""
    run_demo(Console(file=io.StringIO()), memory)
    memory.observations.extract_all()
    profile = memory.profiles.get(PHONE)
    gov = memory.governance.keys
    write = gov.add("write", "agent-walt")
    admin = gov.add("admin", "supervisor-ada")
    other = memory.tenants.add("other")
    other_profile = other.profiles.add([OTHER_PHONE], display_name="Olive Other")
    conv = other.conversations.add("chat", [OTHER_PHONE], subject="Other tenant chat")
    other.conversations.add_message(conv.id, "customer", f"My {OTHER_SECRET} number is 55.")
    other.conversations.end(conv.id)
    other.observations.add(other_profile.id, f"Keeps a {OTHER_SECRET}")
    other.knowledge.sources.add(
        other.knowledge.bases.add("other-kb").id,
        content=f"Refunds at Other Corp go through the {OTHER_SECRET}.",
        source_type="text",
        title="Other refunds",
    )
    return Demo(
        memory=memory,
        keys=Keys(
            read=gov.add("read", "viewer-rita").secret,
            write=write.secret,
            admin=admin.secret,
            other_admin=other.governance.keys.add("admin", "other-admin").secret,
            write_id=write.key_id,
            admin_id=admin.key_id,
        ),
        profile_id=profile.id,
        other_profile_id=other_profile.id,
    )


def open_store(path: Path) -> Memory:
    return Memory(
        SQLiteBackend(path / "memory.db"), HashEmbedder(), settings=load_settings(data_dir=path)
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    memory = open_store(tmp_path)
    yield seed(memory)
    memory.close()


def mounted(memory: Memory, poll_interval: float = 0.2) -> Starlette:
    """The console mounted at /console, as the server mounts it."""
    return Starlette(
        routes=[Mount("/console", create_console(memory, poll_interval=poll_interval))]
    )


CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


class Server:
    """A real uvicorn serving ``app`` on 127.0.0.1 (a free port), in a thread."""

    def __init__(self, app: ASGIApp) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        started = threading.Event()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            started.wait(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
