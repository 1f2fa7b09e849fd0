"""Governance of knowledge: deletion that leaves nothing in the database files,
audit events for every write, redaction before chunks are stored or embedded,
and tenants as hard partitions for all of it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from memory_core.backends.base import Collection, SearchMode, Where
from memory_core.embedding import HashEmbedder
from memory_core.embedding.base import CachedEmbedder
from memory_core.governance import acting_as
from memory_core.knowledge import CrawlOptions, DocumentIn, SourceStatus
from memory_core.memory import Memory
from memory_core.models import Chunk, DeletionReceipt, Source
from tests.governance.test_erasure import checkpoint, marker_word, scan
from tests.knowledge.conftest import CountingEmbedder, Site, open_memory

FILLER = (
    "Our support team answers every request within one business day. "
    "Customers can reach us by phone, chat or email, whichever they prefer."
)


def secret_document(marker: str) -> str:
    return (
        "# Escalations\n\n"
        f"The escalation codeword is {marker} and only supervisors may use it. {FILLER}\n\n"
        f"## Afterwards\n\nLog every use of {marker} in the ticket. {FILLER}\n"
    )


def chunks_of(memory: Memory, source_id: str, tenant: str = "default") -> list[Chunk]:
    found = memory.backend.find(tenant, Collection.CHUNKS, Where(eq={"source_id": source_id}))
    return [c for c in found if isinstance(c, Chunk)]


def db_of(memory: Memory) -> Path:
    return memory.backend.path  # type: ignore[attr-defined, no-any-return]


def assert_gone(memory: Memory, needles: list[str], tenant: str = "default") -> None:
    """Nothing of ``needles`` in the raw files (database, WAL, SHM) or the indexes."""
    db = db_of(memory)
    assert scan(db, needles) == {}
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    for needle in needles:
        assert (
            memory.backend.search(tenant, Collection.CHUNKS, mode=SearchMode.KEYWORD, text=needle)
            == []
        )


def seed(memory: Memory, marker: str, tenant: str = "default") -> Source:
    """A knowledge base ``help`` with an ordinary source, then one holding ``marker``."""
    knowledge = memory.tenant(tenant).knowledge
    knowledge.bases.add("help")
    knowledge.sources.add(
        "help",
        content=f"# Shipping\n\nWe ship to all 50 states within five days. {FILLER}\n",
        source_type="markdown",
        uri="kb://shipping",
    )
    secret = knowledge.sources.add(
        "help",
        content=secret_document(marker),
        source_type="markdown",
        uri="kb://escalations",
    )
    assert secret.status is SourceStatus.READY and secret.chunk_count >= 1
    return secret


# -- deletion leaves nothing -----------------------------------------------------------

DELETIONS: dict[str, Callable[[Memory, Source], DeletionReceipt]] = {
    "remove_source": lambda m, s: m.knowledge.sources.delete(s.id),
    "delete_knowledge_base": lambda m, s: m.knowledge.bases.delete("help"),
}


@pytest.mark.parametrize("how", sorted(DELETIONS))
def test_deleted_knowledge_text_does_not_survive_in_the_database_files(
    memory: Memory, how: str
) -> None:
    marker = marker_word()
    stem = marker[:-3]  # what the porter stemmer leaves in the full-text index
    secret = seed(memory, marker)
    texts = [c.text for c in chunks_of(memory, secret.id)]
    cache = memory.embedder
    assert isinstance(cache, CachedEmbedder)
    keys = [hashlib.sha256(t.encode()).digest() for t in texts]
    assert all(k in cache._cache for k in keys)
    assert memory.knowledge.search(marker, mode="keyword")
    searcher = memory._ctx.searcher
    assert any(key[0] == "default" for key in searcher._cache)  # the tenant's source list
    checkpoint(memory)
    assert scan(db_of(memory), [marker, stem]).get(db_of(memory).name) == [marker, stem]

    receipt = DELETIONS[how](memory, secret)

    assert receipt.deleted["chunks"] >= len(texts)
    assert_gone(memory, [marker, stem])
    assert not any(k in cache._cache for k in keys)  # cached vectors of the text went too
    assert not any(key[0] == "default" for key in searcher._cache)
    assert memory.knowledge.search(marker, mode="keyword") == []
    [event] = memory.governance.audit.list(action=how)
    assert event.target == receipt.target
    assert event.details["chunks"] == receipt.deleted["chunks"]
    assert marker not in json.dumps(
        [e.model_dump(mode="json") for e in memory.governance.audit.list()]
    )
    memory.close()
    assert scan(db_of(memory), [marker, stem]) == {}


@pytest.mark.parametrize("change", ["vanished", "changed"])
def test_a_refresh_that_drops_or_replaces_a_page_leaves_nothing_of_its_text(
    memory: Memory, change: str
) -> None:
    marker = marker_word()
    stem = marker[:-3]
    memory.knowledge.bases.add("help")
    kept = DocumentIn(uri="shipping", text=f"We ship to all 50 states within five days. {FILLER}")
    marked = DocumentIn(uri="escalations", text=secret_document(marker), format="markdown")
    source = memory.knowledge.sources.add("help", documents=[kept, marked], title="Handbook")
    old_texts = [c.text for c in chunks_of(memory, source.id) if c.page_uri == "escalations"]
    assert old_texts and all(marker in t for t in old_texts)
    checkpoint(memory)
    assert marker in str(scan(db_of(memory), [marker]))

    if change == "vanished":
        pages = [kept]
    else:
        pages = [kept, marked.model_copy(update={"text": "# Escalations\n\nAsk a supervisor."})]
    refreshed = memory.knowledge.sources.refresh(source.id, documents=pages)

    assert refreshed.status is SourceStatus.READY and refreshed.version == 2
    assert_gone(memory, [marker, stem])
    cache = memory.embedder
    assert isinstance(cache, CachedEmbedder)
    assert not any(hashlib.sha256(t.encode()).digest() in cache._cache for t in old_texts)
    # The page that stayed is still there, not re-embedded, and searchable.
    assert memory.knowledge.search("ship to all 50 states", limit=1)[0].citation.uri == "shipping"
    [event] = memory.governance.audit.list(action="refresh_source")
    assert event.details["removed"] == len(old_texts)


def test_a_recrawl_whose_page_disappeared_leaves_nothing_of_it(tmp_path: Path, site: Site) -> None:
    marker = marker_word()
    site.html("/", "Help", f"<p>Welcome to the help centre. {FILLER}</p>", ["/escalations"])
    site.html("/escalations", "Escalations", f"<p>The codeword is {marker}. {FILLER}</p>")
    with open_memory(tmp_path / "web.db") as memory:
        memory.knowledge.bases.add("web")
        source = memory.knowledge.sources.add("web", site.base, crawl=CrawlOptions(max_depth=1))
        assert any(marker in c.text for c in chunks_of(memory, source.id))
        del site.routes["/escalations"]  # now a 404
        refreshed = memory.knowledge.sources.refresh(source.id)
        assert refreshed.status is SourceStatus.READY
        assert {c.page_uri for c in chunks_of(memory, source.id)} == {site.base + "/"}
        assert_gone(memory, [marker, marker[:-3]])
    assert scan(tmp_path / "web.db", [marker, marker[:-3]]) == {}


def test_a_knowledge_deletion_in_one_tenant_never_touches_another(memory: Memory) -> None:
    shared, only_acme, only_globex = marker_word(), marker_word(), marker_word()
    for tenant, own in (("acme", only_acme), ("globex", only_globex)):
        handle = memory.tenants.add(tenant)
        handle.knowledge.bases.add("help")
        handle.knowledge.sources.add(
            "help",
            content=f"# Codes\n\nShared {shared}, own {own}. {FILLER}\n",
            source_type="markdown",
            uri="kb://codes",  # the same URI and knowledge base name in both tenants
        )
    acme, globex = memory.tenant("acme"), memory.tenant("globex")
    globex_before = globex.knowledge.search(shared, mode="keyword")
    assert len(globex_before) == 1

    acme.knowledge.bases.delete("help")

    assert acme.knowledge.search(shared, mode="keyword") == []
    assert globex.knowledge.search(shared, mode="keyword") == globex_before
    assert globex.knowledge.search(only_globex, mode="keyword")
    assert [kb.name for kb in globex.knowledge.bases.list()] == ["help"]
    assert len(globex.knowledge.sources.list()) == 1
    found = scan(db_of(memory), [shared, only_acme, only_globex])
    assert found == {db_of(memory).name: [shared, only_globex]}  # acme's own text is gone
    assert [e.action for e in acme.governance.audit.list()][-1] == "delete_knowledge_base"
    assert "delete_knowledge_base" not in [e.action for e in globex.governance.audit.list()]
    # Deleting the tenant drops its cached source lists too; the other's stay usable.
    memory.tenants.delete("acme")
    assert not any(key[0] == "acme" for key in memory._ctx.searcher._cache)
    assert globex.knowledge.search(shared, mode="keyword") == globex_before


# -- audit -----------------------------------------------------------------------------


def test_every_knowledge_write_is_audited_without_content(memory: Memory) -> None:
    marker = marker_word()
    with acting_as("admin:kim", reason="onboarding the help centre"):
        kb = memory.knowledge.bases.add("ops-handbook")
        source = memory.knowledge.sources.add(
            "ops-handbook", content=secret_document(marker), source_type="markdown", uri="kb://esc"
        )
        again = memory.knowledge.sources.add(  # the same URI again is a refresh
            "ops-handbook", content=secret_document(marker), source_type="markdown", uri="kb://esc"
        )
        changed = memory.knowledge.sources.refresh(
            source.id, content="# Escalations\n\nAsk a supervisor."
        )
        failed = memory.knowledge.sources.refresh(source.id, content="   ")  # nothing to index
        receipt = memory.knowledge.sources.delete(source.id)
        memory.knowledge.bases.delete("ops-handbook")
    assert again.id == source.id and failed.status is SourceStatus.FAILED

    events = memory.governance.audit.list()
    assert [(e.action, e.target) for e in events] == [
        ("create_knowledge_base", f"knowledge_base:{kb.id}"),
        ("add_source", f"source:{source.id}"),
        ("refresh_source", f"source:{source.id}"),
        ("refresh_source", f"source:{source.id}"),
        ("refresh_source", f"source:{source.id}"),
        ("remove_source", f"source:{source.id}"),
        ("delete_knowledge_base", f"knowledge_base:{kb.id}"),
    ]
    assert {(e.actor, e.reason) for e in events} == {("admin:kim", "onboarding the help centre")}
    added, unchanged, refreshed, refused = events[1:5]
    assert added.details == {
        "kb": kb.id,
        "type": "markdown",
        "status": "ready",
        "version": 1,
        "chunks": source.chunk_count,
        "pages": 1,
        "added": source.chunk_count,
        "removed": 0,
    }
    assert unchanged.details["added"] == 0 and unchanged.details["version"] == 1
    assert refreshed.details["version"] == 2 and refreshed.details["chunks"] == changed.chunk_count
    assert refreshed.details["removed"] == source.chunk_count
    assert refused.details["status"] == "failed"
    assert events[5].details == {"chunks": changed.chunk_count, "sources": 1}
    assert receipt.deleted == {"chunks": changed.chunk_count, "sources": 1}
    dumped = json.dumps([e.model_dump(mode="json") for e in events])
    for content in (marker, "Escalations", "supervisor", "kb://esc", "ops-handbook"):
        assert content not in dumped


# -- redaction ---------------------------------------------------------------------------

CARD = "4111 1111 1111 1111"
CARD_FORMS = [CARD, CARD.replace(" ", ""), "4111-1111-1111-1111"]


def test_a_card_number_in_a_document_never_reaches_chunks_indexes_or_vectors(
    memory: Memory,
) -> None:
    recorder = CountingEmbedder(HashEmbedder())
    memory.embedder.inner = recorder  # type: ignore[attr-defined]
    memory.knowledge.bases.add("billing")
    source = memory.knowledge.sources.add(
        "billing",
        documents=[
            DocumentIn(
                uri="refunds",
                title=f"Refunds to {CARD_FORMS[1]}",
                format="markdown",
                text=f"# Test card {CARD}\n\nRefunds go back to card {CARD_FORMS[2]}. {FILLER}\n\n"
                f"| card | status |\n| --- | --- |\n| {CARD} | refunded |\n",
            )
        ],
        title=f"Billing notes for {CARD}",
    )
    refreshed = memory.knowledge.sources.refresh(
        source.id,
        documents=[DocumentIn(uri="refunds", text=f"Refunds go back to card {CARD}. {FILLER}")],
    )
    assert refreshed.status is SourceStatus.READY and refreshed.version == 2

    assert recorder.texts, "the documents were embedded"
    assert not any(form in t for t in recorder.texts for form in CARD_FORMS)
    chunks = chunks_of(memory, source.id)
    assert chunks and any("[REDACTED:card]" in c.text for c in chunks)
    stored = json.dumps([c.model_dump(mode="json") for c in chunks])
    stored += memory.knowledge.sources.get(source.id).model_dump_json()
    assert not any(form in stored for form in CARD_FORMS)
    assert memory.knowledge.sources.get(source.id).title == "Billing notes for [REDACTED:card]"
    for query in ("4111", CARD_FORMS[1]):
        assert memory.knowledge.search(query, mode="keyword") == []
    checkpoint(memory)
    assert scan(db_of(memory), CARD_FORMS) == {}
