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
    memory.knowledge.bases.add("help", description="customer help centre")
    sources = {name: memory.knowledge.sources.add("help", path) for name, path in files.items()}
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
        hits = memory.knowledge.search(query, kb="help", limit=3)
        top = hits[0]
        assert top.citation.source_id == sources[name].id, query
        assert snippet in top.text
        assert top.citation.uri == files[name].resolve().as_uri()
        assert top.citation.heading_path == headings
        assert 0.0 <= top.score <= 1.0
    pdf_hit = memory.knowledge.search("serial number warranty claim", limit=1)[0]
    assert pdf_hit.citation.page == 2
    assert "Claims" in str(pdf_hit.citation) and "p.2" in str(pdf_hit.citation)


def test_inline_content_and_documents_sources(memory: Memory) -> None:
    memory.knowledge.bases.add("kb")
    inline = memory.knowledge.sources.add(
        "kb", content="Gift cards never expire.", title="Gift cards"
    )
    assert inline.uri.startswith("inline:") and inline.status is SourceStatus.READY
    again = memory.knowledge.sources.add(
        "kb", content="Gift cards never expire.", title="Gift cards"
    )
    assert again.id == inline.id and again.version == 1, "same content: same source, no new version"

    docs = memory.knowledge.sources.add(
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
    hit = memory.knowledge.search("late fee", kb="kb", limit=1)[0]
    assert hit.citation.uri == "policy/fees" and hit.citation.source_title == "Policies"
    assert hit.citation.page_title == "Fees"


def test_filters_by_knowledge_base_source_and_tags(memory: Memory, tmp_path: Path) -> None:
    memory.knowledge.bases.add("billing")
    memory.knowledge.bases.add("tech")
    a = memory.knowledge.sources.add(
        "billing", content="Refunds are paid to the original card.", tags=["refunds"]
    )
    b = memory.knowledge.sources.add(
        "billing", content="Refund requests need an order number.", tags=["orders"]
    )
    c = memory.knowledge.sources.add("tech", content="A refund of the router fee is automatic.")
    everything = {h.citation.source_id for h in memory.knowledge.search("refund", limit=10)}
    assert everything == {a.id, b.id, c.id}
    assert {h.citation.source_id for h in memory.knowledge.search("refund", kb="tech")} == {c.id}
    by_id = memory.knowledge.bases.get("billing").id
    assert {h.citation.source_id for h in memory.knowledge.search("refund", kb=[by_id])} == {
        a.id,
        b.id,
    }
    assert {h.citation.source_id for h in memory.knowledge.search("refund", sources=[b.id])} == {
        b.id
    }
    assert {h.citation.source_id for h in memory.knowledge.search("refund", tags=["refunds"])} == {
        a.id
    }
    assert memory.knowledge.search("refund", kb="billing", tags=["nope"]) == []
    for mode in ("keyword", "vector"):
        hits = memory.knowledge.search("refund", kb="tech", mode=mode)
        assert {h.citation.source_id for h in hits} == {c.id}
    with pytest.raises(NotFoundError):
        memory.knowledge.search("refund", kb="missing")
    with pytest.raises(NotFoundError):
        memory.knowledge.search("refund", sources=["src_missing"])


def test_top_k_and_relevance_threshold(memory: Memory) -> None:
    memory.knowledge.bases.add("kb")
    memory.knowledge.sources.add(
        "kb",
        documents=[
            DocumentIn(uri=f"d{i}", text=f"Topic {i}: parking at store {i}.") for i in range(12)
        ]
        + [DocumentIn(uri="x", text="Loyalty points expire after a year.")],
        title="Stores",
    )
    assert len(memory.knowledge.search("parking store", limit=4)) == 4
    hits = memory.knowledge.search("loyalty points expire", limit=13)
    assert hits[0].citation.uri == "x"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    strict = memory.knowledge.search("loyalty points expire", limit=13, min_score=hits[0].score)
    assert [h.citation.uri for h in strict] == ["x"]


def test_duplicate_source_is_a_refresh_and_a_type_clash_is_a_conflict(
    memory: Memory, files: dict[str, Path]
) -> None:
    memory.knowledge.bases.add("kb")
    first = memory.knowledge.sources.add("kb", files["markdown"], tags=["a"])
    second = memory.knowledge.sources.add("kb", str(files["markdown"]), tags=["b"])
    assert second.id == first.id and second.version == 1 and second.tags == ("b",)
    assert len(memory.knowledge.sources.list("kb")) == 1
    with pytest.raises(ConflictError, match="already source"):
        memory.knowledge.sources.add("kb", files["markdown"], source_type="text")
    memory.knowledge.bases.add("other")
    elsewhere = memory.knowledge.sources.add("other", files["markdown"])
    assert elsewhere.id != first.id, "the same file may be in another knowledge base"


def test_bad_input_is_refused_and_nothing_is_written(memory: Memory, tmp_path: Path) -> None:
    memory.knowledge.bases.add("kb")
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
            memory.knowledge.sources.add("kb", path)
    with pytest.raises(ValidationError, match="over the 100-byte limit"):
        memory.knowledge.sources.add("kb", content="x" * 101, max_bytes=100)
    with pytest.raises(ValidationError, match="exactly one"):
        memory.knowledge.sources.add("kb", content="a", documents=[DocumentIn(text="b")])
    with pytest.raises(ValidationError, match="invalid tag"):
        memory.knowledge.sources.add("kb", content="a", tags=["has space"])
    with pytest.raises(NotFoundError):
        memory.knowledge.sources.add("nope", content="a")
    assert memory.knowledge.sources.list() == []
    assert memory.backend.count("default", Collection.CHUNKS) == 0


def test_knowledge_base_names_are_unique_and_deletion_removes_everything(
    memory: Memory, files: dict[str, Path]
) -> None:
    kb = memory.knowledge.bases.add("help")
    with pytest.raises(ConflictError):
        memory.knowledge.bases.add("help")
    with pytest.raises(ValidationError):
        memory.knowledge.bases.add(" padded ")
    memory.knowledge.sources.add("help", files["text"])
    memory.knowledge.sources.add("help", files["faq_csv"])
    assert [k.name for k in memory.knowledge.bases.list()] == ["help"]
    receipt = memory.knowledge.bases.delete("help")
    assert receipt.deleted == {"chunks": 3, "sources": 2, "knowledge_bases": 1}
    assert memory.knowledge.bases.list() == [] and memory.knowledge.sources.list() == []
    assert memory.backend.count("default", Collection.CHUNKS, Where(eq={"kb_id": kb.id})) == 0
    with pytest.raises(NotFoundError):
        memory.knowledge.bases.get("help")


def test_tenants_are_hard_partitions_for_knowledge(memory: Memory) -> None:
    """Same knowledge base names and texts in two tenants never leak into each other."""
    memory.tenants.add("acme")
    memory.tenants.add("globex")
    ids = {}
    for tenant in ("acme", "globex"):
        knowledge = memory.tenant(tenant).knowledge
        knowledge.bases.add("policies")
        ids[tenant] = knowledge.sources.add(
            "policies",
            documents=[DocumentIn(uri="refunds", text=f"Refunds take 30 days at {tenant}.")],
            title="Policies",
        )
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        knowledge = memory.tenant(tenant).knowledge
        hits = knowledge.search("refunds take 30 days", limit=50)
        assert hits and all(h.citation.source_id == ids[tenant].id for h in hits)
        assert all(other not in h.text for h in hits)
        with pytest.raises(NotFoundError):
            knowledge.sources.get(ids[other].id)
        with pytest.raises(NotFoundError):
            knowledge.sources.delete(ids[other].id)
        with pytest.raises(NotFoundError):
            knowledge.search("refunds", sources=[ids[other].id])
    memory.tenant("acme").knowledge.bases.delete("policies")
    assert memory.tenant("acme").knowledge.search("refunds take 30 days") == []
    assert len(memory.tenant("globex").knowledge.search("refunds take 30 days")) == 1
    with pytest.raises(NotFoundError):
        memory.tenant("initech").knowledge.search("refunds")


def test_removing_a_source_removes_every_chunk_from_every_index(
    memory: Memory, files: dict[str, Path]
) -> None:
    memory.knowledge.bases.add("kb")
    keep = memory.knowledge.sources.add("kb", files["text"])
    gone = memory.knowledge.sources.add("kb", files["markdown"])
    receipt = memory.knowledge.sources.delete(gone.id)
    assert receipt.deleted == {"chunks": gone.chunk_count, "sources": 1}
    for mode in ("keyword", "vector", "hybrid"):
        hits = memory.knowledge.search("returns damaged parcels", mode=mode, limit=50)
        assert {h.citation.source_id for h in hits} <= {keep.id}
    assert memory.backend.count("default", Collection.CHUNKS, Where(eq={"source_id": gone.id})) == 0
    with pytest.raises(NotFoundError):
        memory.knowledge.sources.get(gone.id)
    with pytest.raises(NotFoundError):
        memory.knowledge.sources.delete(gone.id)
