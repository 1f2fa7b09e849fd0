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
    memory.create_knowledge_base("help", tenant=tenant)
    memory.add_source(
        "help",
        content=f"# Shipping\n\nWe ship to all 50 states within five days. {FILLER}\n",
        source_type="markdown",
        uri="kb://shipping",
        tenant=tenant,
    )
    secret = memory.add_source(
        "help",
        content=secret_document(marker),
        source_type="markdown",
        uri="kb://escalations",
        tenant=tenant,
    )
    assert secret.status is SourceStatus.READY and secret.chunk_count >= 1
    return secret


# -- deletion leaves nothing -----------------------------------------------------------

DELETIONS: dict[str, Callable[[Memory, Source], DeletionReceipt]] = {
    "remove_source": lambda m, s: m.remove_source(s.id),
    "delete_knowledge_base": lambda m, s: m.delete_knowledge_base("help"),
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
    assert memory.search_knowledge(marker, mode="keyword")
    searcher = memory._searcher()
    assert any(key[0] == "default" for key in searcher._cache)  # the tenant's source list
    checkpoint(memory)
    assert scan(db_of(memory), [marker, stem]).get(db_of(memory).name) == [marker, stem]

    receipt = DELETIONS[how](memory, secret)

    assert receipt.deleted["chunks"] >= len(texts)
    assert_gone(memory, [marker, stem])
    assert not any(k in cache._cache for k in keys)  # cached vectors of the text went too
    assert not any(key[0] == "default" for key in searcher._cache)
    assert memory.search_knowledge(marker, mode="keyword") == []
    [event] = memory.audit(action=how)
    assert event.target == receipt.target
    assert event.details["chunks"] == receipt.deleted["chunks"]
    assert marker not in json.dumps([e.model_dump(mode="json") for e in memory.audit()])
    memory.close()
    assert scan(db_of(memory), [marker, stem]) == {}


@pytest.mark.parametrize("change", ["vanished", "changed"])
def test_a_refresh_that_drops_or_replaces_a_page_leaves_nothing_of_its_text(
    memory: Memory, change: str
) -> None:
    marker = marker_word()
    stem = marker[:-3]
    memory.create_knowledge_base("help")
    kept = DocumentIn(uri="shipping", text=f"We ship to all 50 states within five days. {FILLER}")
    marked = DocumentIn(uri="escalations", text=secret_document(marker), format="markdown")
    source = memory.add_source("help", documents=[kept, marked], title="Handbook")
    old_texts = [c.text for c in chunks_of(memory, source.id) if c.page_uri == "escalations"]
    assert old_texts and all(marker in t for t in old_texts)
    checkpoint(memory)
    assert marker in str(scan(db_of(memory), [marker]))

    if change == "vanished":
        pages = [kept]
    else:
        pages = [kept, marked.model_copy(update={"text": "# Escalations\n\nAsk a supervisor."})]
    refreshed = memory.refresh_source(source.id, documents=pages)

    assert refreshed.status is SourceStatus.READY and refreshed.version == 2
    assert_gone(memory, [marker, stem])
    cache = memory.embedder
    assert isinstance(cache, CachedEmbedder)
    assert not any(hashlib.sha256(t.encode()).digest() in cache._cache for t in old_texts)
    # The page that stayed is still there, not re-embedded, and searchable.
    assert memory.search_knowledge("ship to all 50 states", limit=1)[0].citation.uri == "shipping"
    [event] = memory.audit(action="refresh_source")
    assert event.details["removed"] == len(old_texts)


def test_a_recrawl_whose_page_disappeared_leaves_nothing_of_it(tmp_path: Path, site: Site) -> None:
    marker = marker_word()
    site.html("/", "Help", f"<p>Welcome to the help centre. {FILLER}</p>", ["/escalations"])
    site.html("/escalations", "Escalations", f"<p>The codeword is {marker}. {FILLER}</p>")
    with open_memory(tmp_path / "web.db") as memory:
        memory.create_knowledge_base("web")
        source = memory.add_source("web", site.base, crawl=CrawlOptions(max_depth=1))
        assert any(marker in c.text for c in chunks_of(memory, source.id))
        del site.routes["/escalations"]  # now a 404
        refreshed = memory.refresh_source(source.id)
        assert refreshed.status is SourceStatus.READY
        assert {c.page_uri for c in chunks_of(memory, source.id)} == {site.base + "/"}
        assert_gone(memory, [marker, marker[:-3]])
    assert scan(tmp_path / "web.db", [marker, marker[:-3]]) == {}


def test_a_knowledge_deletion_in_one_tenant_never_touches_another(memory: Memory) -> None:
    shared, only_acme, only_globex = marker_word(), marker_word(), marker_word()
    for tenant, own in (("acme", only_acme), ("globex", only_globex)):
        memory.create_tenant(tenant)
        memory.create_knowledge_base("help", tenant=tenant)
        memory.add_source(
            "help",
            content=f"# Codes\n\nShared {shared}, own {own}. {FILLER}\n",
            source_type="markdown",
            uri="kb://codes",  # the same URI and knowledge base name in both tenants
            tenant=tenant,
        )
    globex_before = memory.search_knowledge(shared, tenant="globex", mode="keyword")
    assert len(globex_before) == 1

    memory.delete_knowledge_base("help", tenant="acme")

    assert memory.search_knowledge(shared, tenant="acme", mode="keyword") == []
    assert memory.search_knowledge(shared, tenant="globex", mode="keyword") == globex_before
    assert memory.search_knowledge(only_globex, tenant="globex", mode="keyword")
    assert [kb.name for kb in memory.list_knowledge_bases(tenant="globex")] == ["help"]
    assert len(memory.list_sources(tenant="globex")) == 1
    found = scan(db_of(memory), [shared, only_acme, only_globex])
    assert found == {db_of(memory).name: [shared, only_globex]}  # acme's own text is gone
    assert [e.action for e in memory.audit(tenant="acme")][-1] == "delete_knowledge_base"
    assert "delete_knowledge_base" not in [e.action for e in memory.audit(tenant="globex")]
    # Deleting the tenant drops its cached source lists too; the other's stay usable.
    memory.delete_tenant("acme")
    assert not any(key[0] == "acme" for key in memory._searcher()._cache)
    assert memory.search_knowledge(shared, tenant="globex", mode="keyword") == globex_before


# -- audit -----------------------------------------------------------------------------


def test_every_knowledge_write_is_audited_without_content(memory: Memory) -> None:
    marker = marker_word()
    with acting_as("admin:kim", reason="onboarding the help centre"):
        kb = memory.create_knowledge_base("ops-handbook")
        source = memory.add_source(
            "ops-handbook", content=secret_document(marker), source_type="markdown", uri="kb://esc"
        )
        again = memory.add_source(  # the same URI again is a refresh
            "ops-handbook", content=secret_document(marker), source_type="markdown", uri="kb://esc"
        )
        changed = memory.refresh_source(source.id, content="# Escalations\n\nAsk a supervisor.")
        failed = memory.refresh_source(source.id, content="   ")  # nothing to index
        receipt = memory.remove_source(source.id)
        memory.delete_knowledge_base("ops-handbook")
    assert again.id == source.id and failed.status is SourceStatus.FAILED

    events = memory.audit()
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
    memory.create_knowledge_base("billing")
    source = memory.add_source(
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
    refreshed = memory.refresh_source(
        source.id,
        documents=[DocumentIn(uri="refunds", text=f"Refunds go back to card {CARD}. {FILLER}")],
    )
    assert refreshed.status is SourceStatus.READY and refreshed.version == 2

    assert recorder.texts, "the documents were embedded"
    assert not any(form in t for t in recorder.texts for form in CARD_FORMS)
    chunks = chunks_of(memory, source.id)
    assert chunks and any("[REDACTED:card]" in c.text for c in chunks)
    stored = json.dumps([c.model_dump(mode="json") for c in chunks])
    stored += memory.get_source(source.id).model_dump_json()
    assert not any(form in stored for form in CARD_FORMS)
    assert memory.get_source(source.id).title == "Billing notes for [REDACTED:card]"
    for query in ("4111", CARD_FORMS[1]):
        assert memory.search_knowledge(query, mode="keyword") == []
    checkpoint(memory)
    assert scan(db_of(memory), CARD_FORMS) == {}
