from __future__ import annotations

from pathlib import Path

from memory_core import AsyncMemory, Memory, RecallOptions
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder


async def test_async_facade_round_trip(tmp_path: Path) -> None:
    sync = Memory(SQLiteBackend(tmp_path / "m.db"), HashEmbedder(), settings=load_settings())
    async with AsyncMemory(sync) as memory:
        conv = await memory.conversations.add("whatsapp", ["whatsapp:+44 20 7946 0018"])
        await memory.conversations.add_message(
            conv.id, "customer", "Please send invoices to my work email."
        )
        await memory.conversations.end(conv.id)
        profile = await memory.profiles.get("whatsapp:+442079460018")
        result = await memory.recall(profile.id, "invoice email", options=RecallOptions())
        assert [i.text for i in result.items] == ["Please send invoices to my work email."]
        receipt = await memory.profiles.delete(profile.id)
        assert receipt.deleted["messages"] == 1
