"""Fixtures for the framework adapters: a customer with history, another customer
beside them (nothing of theirs may ever show up), and an embedder that records
which thread the engine ran on."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.memory import Memory

CUSTOMER = "phone:+16175550142"
OTHER = "email:someone.else@example.com"

PAST_SMS = {
    "channel": "sms",
    "customer": [CUSTOMER],
    "subject": "Damaged delivery",
    "messages": [
        {
            "role": "customer",
            "text": "Order 4471 arrived with a cracked screen.",
            "ts": "2026-05-02T14:00:00Z",
        },
        {
            "role": "ai_agent",
            "text": "Sorry! A replacement is on its way.",
            "ts": "2026-05-02T14:01:00Z",
        },
        {
            "role": "customer",
            "text": "Please text me updates, I can't take calls at work.",
            "ts": "2026-05-02T14:02:00Z",
        },
    ],
}
OTHER_CHAT = {
    "channel": "chat",
    "customer": [OTHER],
    "messages": [
        {
            "role": "customer",
            "text": "My cracked screen order 9001 needs a refund, text me.",
            "ts": "2026-05-03T10:00:00Z",
        },
    ],
}


@pytest.fixture
def seeded(memory: Memory) -> Memory:
    """The customer's past SMS conversation, and another customer's chat."""
    memory.ingest(PAST_SMS)
    memory.ingest(OTHER_CHAT)
    return memory


class ThreadRecordingEmbedder:
    """The hash embedder, noting the thread of every call (the engine embeds
    new texts and queries, so this shows where the engine ran)."""

    def __init__(self) -> None:
        self.inner = HashEmbedder()
        self.model_id = self.inner.model_id
        self.dimension = self.inner.dimension
        self.threads: list[int] = []

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.threads.append(threading.get_ident())
        return self.inner.embed_batch(texts)


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[tuple[Memory, ThreadRecordingEmbedder]]:
    embedder = ThreadRecordingEmbedder()
    mem = Memory(
        SQLiteBackend(tmp_path / "recording.db"),
        embedder,
        settings=load_settings(data_dir=tmp_path),
    )
    mem.ingest(PAST_SMS)
    embedder.threads.clear()
    yield mem, embedder
    mem.close()
