"""Bulk ingest (``convmem ingest``): conversations embedded in shared batches while
the batch before is written, with the same result as ingesting them one by one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memory_core import Memory
from memory_core.backends.base import Collection
from memory_core.embedding.fake import HashEmbedder
from memory_core.errors import ConflictError
from memory_core.models import Channel, ConversationIn, MessageIn, Role


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting its calls (to see the batching)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return super().embed_batch(texts)


def conversations(n: int, prefix: str = "") -> list[ConversationIn]:
    return [
        ConversationIn(
            id=f"{prefix}c{i}",
            channel="chat",
            customer=[f"phone:+1617555{i % 7:04d}"],
            messages=[
                MessageIn(
                    id=f"{prefix}m{i}-{j}",
                    role=Role.CUSTOMER if j % 2 == 0 else Role.HUMAN_AGENT,
                    text=f"turn {j} of {i}",
                )
                for j in range(3)
            ],
        )
        for i in range(n)
    ]


def stored(memory: Memory) -> dict[str, tuple[str, str, np.ndarray]]:
    conn = memory.backend._holder().conn  # type: ignore[attr-defined]
    rows = conn.execute("SELECT id, profile_id, body, vector FROM messages").fetchall()
    profiles = {p: i for i, p in enumerate(sorted({r[1] for r in rows}))}
    return {
        r[0]: (str(profiles[r[1]]), r[2].split('"profile_id"')[0], np.frombuffer(r[3], "<f4"))
        for r in rows
    }


def test_bulk_ingest_equals_one_by_one_with_fewer_model_calls(tmp_path: Path) -> None:
    given = conversations(200)
    one = CountingEmbedder()
    bulk = CountingEmbedder()
    with (
        Memory.open(tmp_path / "one.db", embedder=one) as a,
        Memory.open(tmp_path / "bulk.db", embedder=bulk) as b,
    ):
        for conv in given:
            a.ingest(conv)
        results = b.conversations._ingest_many(given)
        assert len(results) == 200 and all(not isinstance(r, Exception) for r in results)
        assert sum(len(r.messages) for r in results) == 600  # type: ignore[union-attr]
        left, right = stored(a), stored(b)
        assert left.keys() == right.keys()
        for key in left:
            assert np.array_equal(left[key][2], right[key][2])  # the same texts embedded
        assert b.backend.count("default", Collection.PROFILES) == a.backend.count(
            "default", Collection.PROFILES
        )
    assert len(one.calls) >= 200  # one call per conversation
    assert len(bulk.calls) <= 4 and max(bulk.calls) >= 256  # shared batches


def test_bulk_ingest_reports_each_error_and_stops_when_asked(tmp_path: Path) -> None:
    given = conversations(6)
    with Memory.open(tmp_path / "m.db", embedder="hash") as memory:
        memory.ingest(
            given[2].model_copy(update={"channel": Channel.SMS})
        )  # c2 exists on sms: conflict
        results = memory.conversations._ingest_many(given, stop_on_error=False)
        assert [type(r).__name__ for r in results].count("ConflictError") == 1
        assert isinstance(results[2], ConflictError) and len(results) == 6
        fresh = conversations(6, prefix="x")
        fresh[1] = given[2]  # the conflict again, second
        stopped = memory.conversations._ingest_many(fresh, stop_on_error=True)
        assert len(stopped) == 2 and isinstance(stopped[1], ConflictError)
        assert memory.backend.get("default", Collection.CONVERSATIONS, ["xc0"])
        assert not memory.backend.get("default", Collection.CONVERSATIONS, ["xc2"])
