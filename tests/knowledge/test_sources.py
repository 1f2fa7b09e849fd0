"""Knowledge bases and sources through the Python API: every source type from
real files, citations, filters, duplicates, bad input and tenant isolation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory_core.backends.base import Collection, Where
from memory_core.errors import ConflictError, NotFoundError, ValidationError
from memory_core.knowledge import DocumentIn, SourceStatus, SourceType
from memory_core.memory import Memory
from tests.knowledge.conftest import make_pdf

HTML = """<!doctype html><html><head><title>Store hours</title></head><body>
<nav><a href="/">Home</a> | <a href="/jobs">Careers</a></nav>
<main><h1>Store hours</h1><p>Our Denver store opens at 9 am and closes at 6 pm on weekdays.
On Saturdays it closes at 4 pm, and it is closed on Sundays and public holidays.</p></main>
<footer>Copyright ACME</footer></body></html>"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    out = {
        "text": docs / "shipping.txt",
        "markdown": docs / "returns.md",
        "html": docs / "hours.html",
        "faq_csv": docs / "faq.csv",
        "faq_json": docs / "faq.json",
    }
    out["text"].write_text(
        "Shipping\n\nWe ship to all 50 states. Standard shipping takes 3 to 5 business days.\n"
    )
    out["markdown"].write_text(
        "# Returns\n\nReturns are free within 30 days.\n\n## Damaged items\n\n"
        "Report damaged parcels within 48 hours with a photo of the box.\n"
    )
    out["html"].write_text(HTML)
    out["faq_csv"].write_text(
        "question,answer\nHow do I reset my router?,Hold the reset button for ten seconds.\n"
        "Can I pay by card?,We accept Visa and Mastercard.\n"
    )
    out["faq_json"].write_text(
        json.dumps([{"question": "Do you price match?", "answer": "Yes, within 14 days."}])
    )
    out["pdf"] = make_pdf(
        docs / "warranty.pdf",
        [
            ("Warranty", 0, "Every modem carries a two year warranty on hardware faults."),
            ("Claims", 1, "Warranty claims need the serial number printed under the modem."),
        ],
    )
    return out


def test_every_file_type_is_indexed_and_searchable_with_citations(
    memory: Memory, files: dict[str, Path]
) -> None:
    memory.create_knowledge_base("help", description="customer help centre")
    sources = {name: memory.add_source("help", path) for name, path in files.items()}
    for name, source in sources.items():
        assert source.status is SourceStatus.READY, (name, source.error)
        assert source.version == 1 and source.chunk_count >= 1
    assert sources["pdf"].type is SourceType.PDF
    assert sources["faq_csv"].chunk_count == 2

    cases = {
        "how long does standard shipping take": ("text", "50 states", ()),
        "damaged parcel photo": ("markdown", "48 hours", ("Returns", "Damaged items")),
        "when does the Denver store close on Saturday": ("html", "4 pm", ("Store hours",)),
        "reset router button": ("faq_csv", "ten seconds", ()),
        "serial number for a warranty claim": ("pdf", "serial number", ("Warranty", "Claims")),
    }
    for query, (name, snippet, headings) in cases.items():
        hits = memory.search_knowledge(query, kb="help", limit=3)
        top = hits[0]
        assert top.citation.source_id == sources[name].id, query
        assert snippet in top.text
        assert top.citation.uri == files[name].resolve().as_uri()
        assert top.citation.heading_path == headings
        assert 0.0 <= top.score <= 1.0
    pdf_hit = memory.search_knowledge("serial number warranty claim", limit=1)[0]
    assert pdf_hit.citation.page == 2
    assert "Claims" in str(pdf_hit.citation) and "p.2" in str(pdf_hit.citation)


def test_inline_content_and_documents_sources(memory: Memory) -> None:
    memory.create_knowledge_base("kb")
    inline = memory.add_source("kb", content="Gift cards never expire.", title="Gift cards")
    assert inline.uri.startswith("inline:") and inline.status is SourceStatus.READY
    again = memory.add_source("kb", content="Gift cards never expire.", title="Gift cards")
    assert again.id == inline.id and again.version == 1, "same content: same source, no new version"

    docs = memory.add_source(
        "kb",
        documents=[
            DocumentIn(uri="policy/returns", title="Returns", text="Returns take 30 days."),
            DocumentIn(
                uri="policy/fees", title="Fees", text="# Fees\n\nLate fee: $5.", format="markdown"
            ),
        ],
        title="Policies",
    )
    assert docs.page_count == 2 and docs.chunk_count == 2
    hit = memory.search_knowledge("late fee", kb="kb", limit=1)[0]
    assert hit.citation.uri == "policy/fees" and hit.citation.source_title == "Policies"
    assert hit.citation.page_title == "Fees"


def test_filters_by_knowledge_base_source_and_tags(memory: Memory, tmp_path: Path) -> None:
    memory.create_knowledge_base("billing")
    memory.create_knowledge_base("tech")
    a = memory.add_source(
        "billing", content="Refunds are paid to the original card.", tags=["refunds"]
    )
    b = memory.add_source(
        "billing", content="Refund requests need an order number.", tags=["orders"]
    )
    c = memory.add_source("tech", content="A refund of the router fee is automatic.")
    everything = {h.citation.source_id for h in memory.search_knowledge("refund", limit=10)}
    assert everything == {a.id, b.id, c.id}
    assert {h.citation.source_id for h in memory.search_knowledge("refund", kb="tech")} == {c.id}
    by_id = memory.get_knowledge_base("billing").id
    assert {h.citation.source_id for h in memory.search_knowledge("refund", kb=[by_id])} == {
        a.id,
        b.id,
    }
    assert {h.citation.source_id for h in memory.search_knowledge("refund", sources=[b.id])} == {
        b.id
    }
    assert {h.citation.source_id for h in memory.search_knowledge("refund", tags=["refunds"])} == {
        a.id
    }
    assert memory.search_knowledge("refund", kb="billing", tags=["nope"]) == []
    for mode in ("keyword", "vector"):
        hits = memory.search_knowledge("refund", kb="tech", mode=mode)
        assert {h.citation.source_id for h in hits} == {c.id}
    with pytest.raises(NotFoundError):
        memory.search_knowledge("refund", kb="missing")
    with pytest.raises(NotFoundError):
        memory.search_knowledge("refund", sources=["src_missing"])


def test_top_k_and_relevance_threshold(memory: Memory) -> None:
    memory.create_knowledge_base("kb")
    memory.add_source(
        "kb",
        documents=[
            DocumentIn(uri=f"d{i}", text=f"Topic {i}: parking at store {i}.") for i in range(12)
        ]
        + [DocumentIn(uri="x", text="Loyalty points expire after a year.")],
        title="Stores",
    )
    assert len(memory.search_knowledge("parking store", limit=4)) == 4
    hits = memory.search_knowledge("loyalty points expire", limit=13)
    assert hits[0].citation.uri == "x"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    strict = memory.search_knowledge("loyalty points expire", limit=13, min_score=hits[0].score)
    assert [h.citation.uri for h in strict] == ["x"]


def test_duplicate_source_is_a_refresh_and_a_type_clash_is_a_conflict(
    memory: Memory, files: dict[str, Path]
) -> None:
    memory.create_knowledge_base("kb")
    first = memory.add_source("kb", files["markdown"], tags=["a"])
    second = memory.add_source("kb", str(files["markdown"]), tags=["b"])
    assert second.id == first.id and second.version == 1 and second.tags == ("b",)
    assert len(memory.list_sources("kb")) == 1
    with pytest.raises(ConflictError, match="already source"):
        memory.add_source("kb", files["markdown"], source_type="text")
    memory.create_knowledge_base("other")
    elsewhere = memory.add_source("other", files["markdown"])
    assert elsewhere.id != first.id, "the same file may be in another knowledge base"


def test_bad_input_is_refused_and_nothing_is_written(memory: Memory, tmp_path: Path) -> None:
    memory.create_knowledge_base("kb")
    big = tmp_path / "big.md"
    with big.open("wb") as handle:
        handle.truncate(51_000_000)
    empty_pdf = tmp_path / "empty.pdf"
    empty_pdf.write_bytes(b"")
    corrupt_pdf = tmp_path / "corrupt.pdf"
    corrupt_pdf.write_bytes(b"%PDF-1.4\n%%garbage that is no PDF at all")
    bad_csv = tmp_path / "faq.csv"
    bad_csv.write_text("name,email,phone\nann,a@example.com,1\n")
    cases = [
        (big, "over the 50,000,000-byte limit"),
        (empty_pdf, "empty"),
        (corrupt_pdf, "not a readable PDF"),
        (bad_csv, "header must name"),
        (tmp_path / "missing.md", "cannot read"),
        (tmp_path / "x.zip", "cannot tell the type"),
    ]
    for path, match in cases:
        with pytest.raises(ValidationError, match=match):
            memory.add_source("kb", path)
    with pytest.raises(ValidationError, match="over the 100-byte limit"):
        memory.add_source("kb", content="x" * 101, max_bytes=100)
    with pytest.raises(ValidationError, match="exactly one"):
        memory.add_source("kb", content="a", documents=[DocumentIn(text="b")])
    with pytest.raises(ValidationError, match="invalid tag"):
        memory.add_source("kb", content="a", tags=["has space"])
    with pytest.raises(NotFoundError):
        memory.add_source("nope", content="a")
    assert memory.list_sources() == []
    assert memory.backend.count("default", Collection.CHUNKS) == 0


def test_knowledge_base_names_are_unique_and_deletion_removes_everything(
    memory: Memory, files: dict[str, Path]
) -> None:
    kb = memory.create_knowledge_base("help")
    with pytest.raises(ConflictError):
        memory.create_knowledge_base("help")
    with pytest.raises(ValidationError):
        memory.create_knowledge_base(" padded ")
    memory.add_source("help", files["text"])
    memory.add_source("help", files["faq_csv"])
    assert [k.name for k in memory.list_knowledge_bases()] == ["help"]
    receipt = memory.delete_knowledge_base("help")
    assert receipt.deleted == {"chunks": 3, "sources": 2, "knowledge_bases": 1}
    assert memory.list_knowledge_bases() == [] and memory.list_sources() == []
    assert memory.backend.count("default", Collection.CHUNKS, Where(eq={"kb_id": kb.id})) == 0
    with pytest.raises(NotFoundError):
        memory.get_knowledge_base("help")


def test_tenants_are_hard_partitions_for_knowledge(memory: Memory) -> None:
    """Same knowledge base names and texts in two tenants never leak into each other."""
    memory.create_tenant("acme")
    memory.create_tenant("globex")
    ids = {}
    for tenant in ("acme", "globex"):
        memory.create_knowledge_base("policies", tenant=tenant)
        ids[tenant] = memory.add_source(
            "policies",
            documents=[DocumentIn(uri="refunds", text=f"Refunds take 30 days at {tenant}.")],
            title="Policies",
            tenant=tenant,
        )
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        hits = memory.search_knowledge("refunds take 30 days", tenant=tenant, limit=50)
        assert hits and all(h.citation.source_id == ids[tenant].id for h in hits)
        assert all(other not in h.text for h in hits)
        with pytest.raises(NotFoundError):
            memory.get_source(ids[other].id, tenant=tenant)
        with pytest.raises(NotFoundError):
            memory.remove_source(ids[other].id, tenant=tenant)
        with pytest.raises(NotFoundError):
            memory.search_knowledge("refunds", tenant=tenant, sources=[ids[other].id])
    memory.delete_knowledge_base("policies", tenant="acme")
    assert memory.search_knowledge("refunds take 30 days", tenant="acme") == []
    assert len(memory.search_knowledge("refunds take 30 days", tenant="globex")) == 1
    with pytest.raises(NotFoundError):
        memory.search_knowledge("refunds", tenant="initech")


def test_removing_a_source_removes_every_chunk_from_every_index(
    memory: Memory, files: dict[str, Path]
) -> None:
    memory.create_knowledge_base("kb")
    keep = memory.add_source("kb", files["text"])
    gone = memory.add_source("kb", files["markdown"])
    receipt = memory.remove_source(gone.id)
    assert receipt.deleted == {"chunks": gone.chunk_count, "sources": 1}
    for mode in ("keyword", "vector", "hybrid"):
        hits = memory.search_knowledge("returns damaged parcels", mode=mode, limit=50)
        assert {h.citation.source_id for h in hits} <= {keep.id}
    assert memory.backend.count("default", Collection.CHUNKS, Where(eq={"source_id": gone.id})) == 0
    with pytest.raises(NotFoundError):
        memory.get_source(gone.id)
    with pytest.raises(NotFoundError):
        memory.remove_source(gone.id)
