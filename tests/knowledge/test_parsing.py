"""Parsers and the structure-aware chunker, on real files of every type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory_core.errors import ValidationError
from memory_core.knowledge.chunking import ChunkingConfig, chunk_page, context_line
from memory_core.knowledge.parse import (
    infer_type,
    parse_bytes,
    parse_faq,
    parse_html,
    parse_markdown,
    parse_pdf,
    read_file,
)
from memory_core.knowledge.types import BlockKind
from memory_core.models import SourceType
from memory_core.recall import count_tokens
from tests.knowledge.conftest import make_pdf

GUIDE = """# Returns guide

Items can be returned within 30 days.

## Fees

| Plan | Monthly fee | Notes |
|---|---|---|
{rows}

## Steps

1. Pack the item in its original box.
2. Print the label from your account.
   The label is free for Premium members.
3. Drop it at any post office.

### Exceptions

> Final sale items cannot be returned.
"""


def guide(rows: int = 3) -> str:
    table = "\n".join(
        f"| Plan {i} | ${i}.00 | support tier {i} with callback |" for i in range(rows)
    )
    return GUIDE.format(rows=table)


def test_markdown_blocks_carry_their_heading_path() -> None:
    page = parse_markdown(guide(), uri="file:///guide.md")
    assert page.title == "Returns guide"
    kinds = [(b.kind, b.heading_path) for b in page.blocks]
    assert kinds == [
        (BlockKind.TEXT, ("Returns guide",)),
        (BlockKind.TABLE, ("Returns guide", "Fees")),
        (BlockKind.LIST, ("Returns guide", "Steps")),
        (BlockKind.TEXT, ("Returns guide", "Steps", "Exceptions")),
    ]
    steps = page.blocks[2]
    assert steps.rows[1] == (
        "2. Print the label from your account. The label is free for Premium members."
    )
    assert page.blocks[1].header.startswith("| Plan | Monthly fee |")


def test_a_long_table_is_split_between_rows_and_repeats_its_header() -> None:
    page = parse_markdown(guide(rows=60), uri="file:///guide.md")
    config = ChunkingConfig(target_tokens=120, max_tokens=200)
    pieces = [p for p in chunk_page(page, config) if p.heading_path[-1:] == ("Fees",)]
    assert len(pieces) > 2
    rows_seen: list[str] = []
    for piece in pieces:
        lines = piece.passage.split("\n")
        assert lines[0].startswith("| Plan | Monthly fee |"), "header repeated on every part"
        assert lines[1].startswith("|---")
        for line in lines[2:]:
            assert line.startswith("| Plan ") and line.endswith("|"), "no row cut in two"
            rows_seen.append(line)
    assert {f"| Plan {i} | ${i}.00 | support tier {i} with callback |" for i in range(60)} <= set(
        rows_seen
    )


def test_a_list_that_fits_moves_whole_to_the_next_chunk() -> None:
    text = "# Doc\n\n" + " ".join(["Background sentence about our policies."] * 25) + "\n\n"
    text += "\n".join(f"- step {i}: do the thing number {i}" for i in range(8)) + "\n"
    page = parse_markdown(text, uri="file:///doc.md")
    pieces = chunk_page(page, ChunkingConfig(target_tokens=150, max_tokens=220))
    holding = [p for p in pieces if "- step 0" in p.passage]
    assert len(holding) == 1 and all(f"- step {i}:" in holding[0].passage for i in range(8))


def test_long_text_is_cut_between_sentences_with_overlap_near_the_target() -> None:
    sentences = [
        f"Clause {i} says that refunds take {i} business days to arrive." for i in range(80)
    ]
    page = parse_markdown("# Terms\n\n" + " ".join(sentences), uri="file:///t.md")
    config = ChunkingConfig(target_tokens=100, overlap=0.2, max_tokens=150)
    pieces = chunk_page(page, config)
    assert len(pieces) > 5
    for piece in pieces:
        assert count_tokens(piece.passage) <= config.max_tokens
        assert piece.passage.endswith("arrive."), "cut between sentences"
        assert piece.heading_path == ("Terms",)
    first, second = pieces[0].passage, pieces[1].passage
    assert first.split(". ")[-1] in second, "consecutive chunks overlap"
    assert [p.position for p in pieces] == list(range(len(pieces)))


def test_faq_files_give_one_chunk_per_pair(tmp_path: Path) -> None:
    csv_text = (
        'question,answer,category\n"How do I reset my router?","Hold reset for 10 s.",Internet\n'
    )
    csv_text += '"Can I pay by card?","Yes, Visa and Mastercard.",Billing\n",",\n'
    page = parse_faq(csv_text, uri="faq.csv")
    assert [b.kind for b in page.blocks] == [BlockKind.QA, BlockKind.QA]
    assert page.blocks[0].heading_path == ("Internet",)
    assert page.notes, "the row without a question is reported"
    pieces = chunk_page(page)
    assert [p.passage for p in pieces] == [
        "Q: How do I reset my router?\nA: Hold reset for 10 s.",
        "Q: Can I pay by card?\nA: Yes, Visa and Mastercard.",
    ]
    tsv = parse_faq("Q\tA\nWhere are you?\tDenver.\n", uri="faq.tsv")
    assert tsv.blocks[0].text == "Q: Where are you?\nA: Denver."
    data = {"faqs": [{"Question": "Opening hours?", "Answer": "9 to 5.", "topic": "Stores"}]}
    js = parse_faq(json.dumps(data), uri="faq.json")
    assert js.blocks[0].heading_path == ("Stores",)
    headerless = parse_faq("Is it free?,Yes\nIs it fast?,Very\n", uri="faq.csv")
    assert len(headerless.blocks) == 2


@pytest.mark.parametrize(
    ("text", "uri", "match"),
    [
        ("name,email,phone\nann,a@x,1\n", "faq.csv", "header must name"),
        ("[1, 2]", "faq.json", "list of"),
        ("question,answer\n,\n", "faq.csv", "no question/answer pairs"),
        ("{not json", "faq.json", "not valid JSON"),
    ],
)
def test_bad_faq_files_are_refused(text: str, uri: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_faq(text, uri=uri)


def test_a_long_faq_answer_keeps_its_question_on_every_part() -> None:
    answer = " ".join(f"Step {i} of the long procedure is described here." for i in range(60))
    page = parse_faq(json.dumps([{"q": "How do I migrate?", "a": answer}]), uri="f.json")
    pieces = chunk_page(page, ChunkingConfig(target_tokens=80, max_tokens=120))
    assert len(pieces) > 2
    assert all(p.passage.startswith("Q: How do I migrate?") for p in pieces)


def test_pdf_text_pages_and_outline_become_heading_paths(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "warranty.pdf",
        [
            ("Warranty", 0, "Every router has a two year warranty covering hardware faults."),
            ("Returns", 0, "Returns are accepted within 30 days of delivery."),
            ("Damaged items", 1, "Report damaged items within 48 hours with photos."),
        ],
        title="Hardware terms",
    )
    page = parse_pdf(path.read_bytes(), uri=path.as_uri())
    assert page.title == "Hardware terms"
    found = {b.text: (b.heading_path, b.page) for b in page.blocks}
    assert found["Returns are accepted within 30 days of delivery."] == (("Returns",), 2)
    assert found["Report damaged items within 48 hours with photos."] == (
        ("Returns", "Damaged items"),
        3,
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "not a readable PDF"),
        (b"GIF89a not a pdf", "not a PDF"),
    ],
)
def test_empty_or_corrupt_pdfs_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        parse_pdf(data, uri="bad.pdf")


def test_a_pdf_without_text_is_refused_with_a_reason(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()  # a page, no text layer (like a scan)
    with pytest.raises(ValidationError, match="no extractable text"):
        parse_pdf(bytes(pdf.output()), uri="scan.pdf")


def test_html_main_content_drops_navigation_scripts_and_footer() -> None:
    html = b"""<!doctype html><html><head><title>Refund policy | ACME</title>
    <script>var secretTracker = 1;</script><style>.x{color:red}</style></head><body>
    <nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/contact">Contact us</a></nav>
    <main><article><h1>Refund policy</h1>
    <p>We refund purchases within 30 days of delivery when the item is unused and in its
    original packaging. Contact support with your order number to start a refund.</p>
    <h2>Digital goods</h2>
    <p>Digital goods can be refunded within 14 days if they have not been downloaded.
    Subscriptions can be cancelled at any time from the account page.</p>
    <ul><li>Software licences</li><li>E-books and audiobooks</li></ul>
    </article></main><footer>Copyright 2024 ACME. Privacy. Cookie settings.</footer>
    </body></html>"""
    page = parse_html(html, uri="https://acme.example/refunds")
    assert page.title == "Refund policy"  # trafilatura drops the site name
    text = "\n".join(b.text for b in page.blocks)
    assert "within 30 days of delivery" in text and "E-books and audiobooks" in text
    for boilerplate in ("secretTracker", "Contact us", "Cookie settings", "color:red"):
        assert boilerplate not in text
    digital = [b for b in page.blocks if "Digital goods can" in b.text]
    assert digital[0].heading_path == ("Refund policy", "Digital goods")


def test_types_come_from_extensions_and_sizes_are_limited(tmp_path: Path) -> None:
    assert infer_type("a/b/Guide.MD") is SourceType.MARKDOWN
    assert infer_type("https://example.com/x.pdf") is SourceType.WEB
    assert infer_type("faq.tsv") is SourceType.FAQ
    with pytest.raises(ValidationError, match="cannot tell the type"):
        infer_type("archive.zip")
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(60_000_000)  # sparse: nothing is really written
    with pytest.raises(ValidationError, match="over the 50,000,000-byte limit"):
        read_file(big, 50_000_000)
    with pytest.raises(ValidationError, match="cannot read"):
        read_file(tmp_path / "missing.txt", 1000)


def test_text_files_decode_and_binary_is_refused() -> None:
    page = parse_bytes(
        "Caf\u00e9 hours:\n\n- Mon 9-5\n- Tue 9-5\n".encode("cp1252"), SourceType.TEXT, uri="h.txt"
    )
    assert page.blocks[0].text == "Café hours:"
    assert page.blocks[1].kind is BlockKind.LIST
    with pytest.raises(ValidationError, match="binary"):
        parse_bytes(b"\x00\x01\x02", SourceType.TEXT, uri="x.txt")


def test_context_line_names_document_and_headings_once() -> None:
    assert context_line("Returns guide", ("Returns guide", "Fees")) == "Returns guide > Fees"
    assert context_line("", ("A", "B")) == "A > B"


def test_optional_parsers_say_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from memory_core.errors import ConfigError

    for module in ("trafilatura", "pypdf"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'conversation-memory\[knowledge\]'"):
        parse_html(b"<p>hi</p>", uri="a.html")
    with pytest.raises(ConfigError, match="knowledge"):
        parse_pdf(b"%PDF-1.4 ...", uri="a.pdf")
    # text, Markdown and FAQ files need nothing beyond the core install
    assert parse_bytes(b"# T\n\nhello", SourceType.MARKDOWN, uri="a.md").blocks
    assert parse_faq("q,a\nx?,y\n", uri="f.csv").blocks


@pytest.mark.slow
def test_importing_loads_no_optional_knowledge_dependency(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, memory_core, memory_core.knowledge, memory_core.cli.app; "
        "print([m for m in ('trafilatura', 'pypdf', 'httpx', 'lxml', 'fpdf') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "[]"
