"""Fixtures for the framework adapters: a customer with history, another customer
beside them (nothing of theirs may ever show up), knowledge bases in two
tenants, and an embedder that records which thread the engine ran on."""

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
from memory_core.knowledge import DocumentIn
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


HELP_CENTER = [
    DocumentIn(
        uri="help/returns",
        title="Returns and refunds",
        format="markdown",
        text=(
            "# Returns and refunds\n\n## Damaged items\n\nA damaged item is replaced free of "
            "charge; keep the packaging for the courier.\n\n## Refunds\n\nRefunds reach your "
            "card within 5 business days of the return scan."
        ),
    ),
    DocumentIn(
        uri="help/delivery",
        title="Delivery",
        format="markdown",
        text=(
            "# Delivery\n\n## Delivery address\n\nYou can change the delivery address until "
            "the parcel ships, in your account or by text message.\n\n## Tracking\n\nTracking "
            "links are sent by SMS and email on the day a parcel ships."
        ),
    ),
]
STAFF_NOTE = "Escalate warranty claims on cracked screens to the tier 2 team."
#: Another tenant's knowledge: it must never show up in the default tenant.
BRAND_B = "brand-b"
BRAND_B_POLICY = "Brand B refunds take 30 days and are paid as store credit only."


def add_knowledge(memory: Memory) -> Memory:
    """A help center (tag "policy") and staff notes in the default tenant, and
    brand B's own help center in its tenant."""
    memory.knowledge.bases.add("help")
    memory.knowledge.sources.add(
        "help", documents=HELP_CENTER, title="Help center", tags=["policy"]
    )
    memory.knowledge.bases.add("staff")
    memory.knowledge.sources.add(
        "staff", content=STAFF_NOTE, title="Escalations", tags=["internal"]
    )
    brand_b = memory.tenants.add(BRAND_B)
    brand_b.knowledge.bases.add("help")
    brand_b.knowledge.sources.add(
        "help", content=BRAND_B_POLICY, title="Brand B refunds", tags=["policy"]
    )
    return memory


@pytest.fixture
def knowledge(seeded: Memory) -> Memory:
    """``seeded``, plus the knowledge of :func:`add_knowledge`."""
    return add_knowledge(seeded)


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
        settings=load_settings(data_dir=tmp_path, recall_min_score=0.0),  # hash embedder
    )
    mem.ingest(PAST_SMS)
    add_knowledge(mem)
    embedder.threads.clear()
    yield mem, embedder
    mem.close()
