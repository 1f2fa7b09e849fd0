"""Updates: only what changed is re-indexed, versions swap atomically for
concurrent searches, failures keep the published version."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from memory_core.backends.base import Collection, Vectors, Where
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import ConflictError, EmbedderMismatchError
from memory_core.knowledge import DocumentIn, SourceStatus
from memory_core.knowledge.indexer import Indexer
from memory_core.memory import Memory
from memory_core.models import Chunk, Source
from tests.knowledge.conftest import CountingEmbedder, open_memory

WAIT = 30.0  # seconds any handshake may take before the test fails


def _docs(version: str, n: int, *, changed: Sequence[int] = ()) -> list[DocumentIn]:
    return [
        DocumentIn(
            uri=f"page-{i}",
            title=f"Page {i}",
            text=f"Policy page {i} says: {version if i in changed else 'stable'} rules apply.",
        )
        for i in range(n)
    ]


def test_refresh_reembeds_only_changed_pages_and_drops_vanished_ones(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    doc = tmp_path / "handbook.md"
    doc.write_text("# Handbook\n\nVacation is 25 days.\n\n## Sick leave\n\nTell your manager.\n")
    with open_memory(db) as memory:
        memory.knowledge.bases.add("hr")
        files = memory.knowledge.sources.add("hr", doc)
        docs = memory.knowledge.sources.add("hr", documents=_docs("v1", 5), title="Policies")
    assert docs.chunk_count == 5

    counting = CountingEmbedder(HashEmbedder())
    with open_memory(db, counting) as memory:  # a fresh process: no embedding cache
        same = memory.knowledge.sources.refresh(files.id)
        assert same.version == 1 and counting.texts == [], "unchanged: nothing re-embedded"
        new_docs = _docs("v2", 4, changed=[2])  # page-2 changed, page-4 vanished
        refreshed = memory.knowledge.sources.refresh(docs.id, documents=new_docs)
        assert refreshed.version == 2 and refreshed.status is SourceStatus.READY
        assert len(counting.texts) == 1 and "v2 rules apply" in counting.texts[0]
        assert refreshed.chunk_count == 4 and refreshed.page_count == 4
        assert refreshed.generations == (1, 2)
        chunks = memory.backend.find("default", Collection.CHUNKS, Where(eq={"source_id": docs.id}))
        assert sorted(c.page_uri for c in chunks if isinstance(c, Chunk)) == [
            "page-0",
            "page-1",
            "page-2",
            "page-3",
        ]
        hits = memory.knowledge.search("policy page rules", limit=20)
        assert not any(h.citation.uri == "page-4" for h in hits)
        assert any("v2 rules apply" in h.text for h in hits)
        assert not any("stable rules apply" in h.text and h.citation.uri == "page-2" for h in hits)

        doc.write_text(
            "# Handbook\n\nVacation is 30 days.\n\n## Sick leave\n\nTell your manager.\n"
        )
        counting.texts.clear()
        updated = memory.knowledge.sources.add("hr", doc)  # re-adding refreshes
        assert updated.id == files.id and updated.version == 2
        assert counting.texts and all("Handbook" in t for t in counting.texts)
        hits = memory.knowledge.search("vacation days", kb="hr", sources=[files.id], limit=5)
        assert "30 days" in hits[0].text and all("25 days" not in h.text for h in hits)


class GatedEmbedder:
    """Holds every embedding call of a refresh until the searching thread has
    run more searches, so searches provably happen while chunks are staged."""

    def __init__(self, searches: threading.Semaphore) -> None:
        self.inner = HashEmbedder()
        self.model_id = self.inner.model_id
        self.dimension = self.inner.dimension
        self.searches = searches
        self.armed = threading.Event()

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if self.armed.is_set() and len(texts) > 1:  # a staging batch, not a query
            for _ in range(3):
                assert self.searches.acquire(timeout=WAIT), "the search thread stalled"
        return self.inner.embed_batch(texts)


def test_a_search_during_an_update_sees_the_old_or_the_new_version_never_a_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("memory_core.knowledge.indexer._STAGE_BATCH", 40)  # several stagings
    searches = threading.Semaphore(0)
    embedder = GatedEmbedder(searches)
    memory = open_memory(tmp_path / "k.db", embedder)
    n = 150
    changed = range(0, n, 2)  # half the pages change, the other half stay
    memory.knowledge.bases.add("kb")
    source = memory.knowledge.sources.add(
        "kb", documents=_docs("old", n, changed=changed), title="P"
    )
    old = {f"page-{i}": "old" if i in changed else "stable" for i in range(n)}
    new = {f"page-{i}": "new" if i in changed else "stable" for i in range(n)}

    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            hits = memory.knowledge.search("policy page rules apply", limit=1000)
            state = {h.citation.uri: h.text.split(": ")[1].split()[0] for h in hits}
            if state == old:
                seen.append("old")
            elif state == new:
                seen.append("new")
            else:
                problems.append(
                    f"{len(state)} pages, a mix or a gap: {sorted(set(state.values()))}"
                )
            searches.release()

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        embedder.armed.set()
        refreshed = memory.knowledge.sources.refresh(
            source.id, documents=_docs("new", n, changed=changed)
        )
        embedder.armed.clear()
        final = memory.knowledge.search("policy page rules apply", limit=1000)
    finally:
        stop.set()
        thread.join(timeout=WAIT)
        memory.close()
    assert not thread.is_alive()
    assert problems == []
    assert refreshed.version == 2
    assert seen.count("old") >= 3 * 2, "searches ran while the new version was being staged"
    assert len(final) == n and all("old rules" not in h.text for h in final)
    assert seen == sorted(seen, key=lambda s: s == "new"), "never back to old once new was seen"


def test_a_failed_refresh_keeps_the_published_version(memory: Memory, tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text("# Guide\n\nThe warranty lasts two years.\n")
    memory.knowledge.bases.add("kb")
    source = memory.knowledge.sources.add("kb", doc)
    doc.unlink()
    failed = memory.knowledge.sources.refresh(source.id)
    assert failed.status is SourceStatus.FAILED and "cannot read" in (failed.error or "")
    assert failed.version == 1
    hits = memory.knowledge.search("warranty two years")
    assert hits and hits[0].citation.source_id == source.id
    doc.write_text("# Guide\n\nThe warranty lasts three years.\n")
    healed = memory.knowledge.sources.refresh(source.id)
    assert healed.status is SourceStatus.READY and healed.error is None and healed.version == 2


def test_one_source_is_indexed_by_one_writer_at_a_time(memory: Memory) -> None:
    memory.knowledge.bases.add("kb")
    source = memory.knowledge.sources.add("kb", content="Opening hours are 9 to 5.", uri="hours")
    indexer = Indexer(memory.backend, memory.embedder, "default", memory.knowledge.chunking)
    indexer.claim(source.id)  # another writer, mid-way
    with pytest.raises(ConflictError, match="being indexed"):
        memory.knowledge.sources.refresh(source.id, content="Opening hours are 8 to 6.")
    assert memory.knowledge.search("opening hours")[0].text == "Opening hours are 9 to 5."


def test_leftovers_of_a_crashed_update_stay_invisible_and_are_cleaned(memory: Memory) -> None:
    memory.knowledge.bases.add("kb")
    source = memory.knowledge.sources.add(
        "kb", content="Parking is free after 6 pm.", uri="parking"
    )
    indexer = Indexer(memory.backend, memory.embedder, "default", memory.knowledge.chunking)
    claimed = indexer.claim(source.id)
    with memory.backend.batch():  # a writer staged version 2, then died
        stale = claimed.model_copy(update={"pending_version": 2, "heartbeat_at": None})
        memory.backend.upsert("default", Collection.SOURCES, [stale])
        indexer.touch_kb(source.kb_id)
    ghost = Chunk(
        id="chk_ghost",
        tenant="default",
        kb_id=source.kb_id,
        source_id=source.id,
        since=2,
        gen=f"{source.id}:2",
        page_uri="parking",
        page_hash="x",
        text="Parking costs 20 dollars.",
    )
    vectors = memory.embedder.embed_batch([ghost.text])
    memory.backend.upsert(
        "default", Collection.CHUNKS, [ghost], Vectors(memory.embedder.model_id, vectors)
    )
    texts = [h.text for h in memory.knowledge.search("parking", limit=10)]
    assert texts == ["Parking is free after 6 pm."]
    healed = memory.knowledge.sources.refresh(source.id, content="Parking is free after 7 pm.")
    assert healed.status is SourceStatus.READY and healed.version == 2
    assert memory.backend.get("default", Collection.CHUNKS, ["chk_ghost"]) == []
    assert [h.text for h in memory.knowledge.search("parking")] == ["Parking is free after 7 pm."]
    assert isinstance(memory.knowledge.sources.get(source.id), Source)


class RacingBackend(SQLiteBackend):
    """Runs ``race`` once, right before the first chunk search: between the
    moment a knowledge search read the sources and the moment it reads chunks."""

    race: Callable[[], object] | None = None

    def search(self, tenant: str, collection: Collection, **kwargs: Any) -> Any:
        race, self.race = self.race, None
        if race is not None and collection is Collection.CHUNKS:
            race()
        return super().search(tenant, collection, **kwargs)


def test_a_search_racing_a_publish_retries_instead_of_returning_a_gap(tmp_path: Path) -> None:
    backend = RacingBackend(tmp_path / "k.db")
    memory = Memory(backend, HashEmbedder(), settings=load_settings(data_dir=tmp_path))
    memory.knowledge.bases.add("kb")
    source = memory.knowledge.sources.add(
        "kb", documents=_docs("old", 6, changed=[1, 3]), title="P"
    )
    backend.race = lambda: memory.knowledge.sources.refresh(
        source.id, documents=_docs("new", 6, changed=[1, 3])
    )
    hits = memory.knowledge.search("policy page rules apply", limit=100)
    assert backend.race is None, "the publish ran in the middle of the search"
    assert sorted(h.citation.uri for h in hits) == [f"page-{i}" for i in range(6)]
    assert {h.text.split(": ")[1].split()[0] for h in hits} == {"new", "stable"}
    memory.close()


def test_a_new_embedding_model_reindexes_everything_on_refresh(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    with open_memory(db) as memory:
        memory.knowledge.bases.add("kb")
        source = memory.knowledge.sources.add("kb", documents=_docs("v1", 3), title="P")
    counting = CountingEmbedder(HashEmbedder(64))  # another model id
    with open_memory(db, counting) as memory:
        with pytest.raises(EmbedderMismatchError):  # old vectors only: refused, not empty
            memory.knowledge.search("policy page", mode="vector")
        counting.texts.clear()
        refreshed = memory.knowledge.sources.refresh(source.id, documents=_docs("v1", 3))
        assert refreshed.version == 2 and len(counting.texts) == 3
        assert len(memory.knowledge.search("policy page", mode="vector")) == 3
