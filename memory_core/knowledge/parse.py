"""Parsers: bytes of a text, Markdown, HTML, PDF or FAQ file into a :class:`Page`
of structural :class:`Block`\\ s (paragraphs, list items, table rows, Q&A pairs),
each under its heading path.

Text, Markdown (markdown-it-py, a dependency of rich) and FAQ files (CSV, TSV,
JSON) need nothing beyond the core install; HTML (trafilatura) and PDF (pypdf)
need the ``knowledge`` extra, imported only when such a file is parsed.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from memory_core.errors import ConfigError, ValidationError
from memory_core.knowledge.types import Block, BlockKind, Page
from memory_core.models import SourceType

__all__ = [
    "MAX_SOURCE_BYTES",
    "decode_text",
    "infer_type",
    "parse_bytes",
    "parse_faq",
    "parse_html",
    "parse_markdown",
    "parse_pdf",
    "parse_text",
    "read_file",
    "require",
    "type_from_extension",
]

MAX_SOURCE_BYTES = 50_000_000
"""Default size limit of one file or inline content (50 MB)."""

_EXTENSIONS = {
    ".txt": SourceType.TEXT,
    ".text": SourceType.TEXT,
    ".md": SourceType.MARKDOWN,
    ".markdown": SourceType.MARKDOWN,
    ".html": SourceType.HTML,
    ".htm": SourceType.HTML,
    ".xhtml": SourceType.HTML,
    ".pdf": SourceType.PDF,
    ".csv": SourceType.FAQ,
    ".tsv": SourceType.FAQ,
    ".json": SourceType.FAQ,
    ".jsonl": SourceType.FAQ,
}


def require(module: str, what: str) -> ModuleType:
    """Import an optional dependency of the ``knowledge`` extra, or say how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{what} needs the '{module.split('.')[0]}' package: "
            "pip install 'conversation-memory[knowledge]'"
        ) from exc


def type_from_extension(name: str) -> SourceType | None:
    """The type a file name's extension implies, if it is a known one."""
    return _EXTENSIONS.get(Path(urlsplit(name).path if "://" in name else name).suffix.lower())


def infer_type(location: str) -> SourceType:
    """The source type a path or URL implies (a URL is a web source)."""
    if re.match(r"^https?://", location, re.IGNORECASE):
        return SourceType.WEB
    suffix = Path(location).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        known = ", ".join(sorted(_EXTENSIONS))
        raise ValidationError(
            f"cannot tell the type of {location!r} from its extension ({known}); "
            "give source_type (text, markdown, html, pdf, faq)"
        ) from None


def read_file(path: Path, max_bytes: int) -> bytes:
    """A file's bytes, refusing missing files and files over ``max_bytes``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise ValidationError(f"{path} is not a file")
    if size > max_bytes:
        raise ValidationError(
            f"{path} is {size:,} bytes, over the {max_bytes:,}-byte limit for one source; "
            "split it, or raise max_bytes"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None


def decode_text(data: bytes, uri: str) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; Windows-1252 as a last resort."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data:
        raise ValidationError(f"{uri} looks binary (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise ValidationError(f"{uri} is not UTF-8 (or Windows-1252) text") from None


def parse_bytes(data: bytes, source_type: SourceType, *, uri: str, title: str = "") -> Page:
    """Parse one document of a non-web source type."""
    if source_type is SourceType.PDF:
        return parse_pdf(data, uri=uri, title=title)
    if source_type is SourceType.HTML:
        return parse_html(data, uri=uri, title=title)
    text = decode_text(data, uri)
    if source_type is SourceType.MARKDOWN:
        return parse_markdown(text, uri=uri, title=title)
    if source_type is SourceType.FAQ:
        return parse_faq(text, uri=uri, title=title)
    if source_type is SourceType.TEXT:
        return parse_text(text, uri=uri, title=title)
    raise ValidationError(f"cannot parse a {source_type.value} source from bytes")


def _default_title(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return Path(name).stem.replace("_", " ").replace("-", " ").strip() or uri


def _clean(text: str) -> str:
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


# -- plain text ----------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*•‣◦]|\d{1,3}[.)])\s+")


def _text_blocks(
    text: str, heading_path: tuple[str, ...] = (), page: int | None = None
) -> list[Block]:
    """Paragraphs (blank-line separated); runs of bulleted lines become lists."""
    blocks: list[Block] = []
    for para in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [line.rstrip() for line in para.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) > 1 and all(_BULLET.match(line) or line.startswith("  ") for line in lines):
            rows = _join_continuations(lines)
            blocks.append(Block(BlockKind.LIST, "\n".join(rows), heading_path, rows, page=page))
            continue
        joined = re.sub(r"(\w)-\s*\n\s*(\w)", r"\1\2", "\n".join(lines))  # de-hyphenate
        body = _clean(joined.replace("\n", " "))
        blocks.append(Block(BlockKind.TEXT, body, heading_path, page=page))
    return blocks


def _join_continuations(lines: list[str]) -> tuple[str, ...]:
    rows: list[str] = []
    for line in lines:
        if rows and not _BULLET.match(line):
            rows[-1] += " " + line.strip()
        else:
            rows.append(line.strip())
    return tuple(rows)


def parse_text(text: str, *, uri: str, title: str = "") -> Page:
    return Page(uri, title or _default_title(uri), tuple(_text_blocks(text)), "text")


# -- Markdown ------------------------------------------------------------------------


def parse_markdown(text: str, *, uri: str, title: str = "") -> Page:
    """Headings become the heading path of the blocks under them; list items and
    table rows are kept as rows (their Markdown source), code blocks as lines."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    source = text.replace("\r\n", "\n")
    lines = source.split("\n")
    tokens = md.parse(source)
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    first_h1 = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = _closing(tokens, i)
        heading = tuple(h for _, h in path)
        if token.type == "heading_open":
            level = int(token.tag[1:])
            name = _clean(tokens[i + 1].content)
            if level == 1 and not first_h1:
                first_h1 = name
            path = [(lv, h) for lv, h in path if lv < level] + [(level, name)]
        elif token.type == "paragraph_open":
            body = _clean(tokens[i + 1].content.replace("\n", " "))
            if body:
                blocks.append(Block(BlockKind.TEXT, body, heading))
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            rows = tuple(
                _clean(" ".join(s.strip() for s in _lines(lines, item.map)))
                for item in tokens[i:end]
                if item.type == "list_item_open" and item.level == token.level + 1
            )
            rows = tuple(r for r in rows if r)
            if rows:
                blocks.append(Block(BlockKind.LIST, "\n".join(rows), heading, rows))
        elif token.type == "table_open":
            table = [s.strip() for s in _lines(lines, token.map) if s.strip()]
            header, rows = "\n".join(table[:2]), tuple(table[2:])
            if rows:
                blocks.append(Block(BlockKind.TABLE, "\n".join(table), heading, rows, header))
        elif token.type in ("fence", "code_block"):
            rows = tuple(r for r in token.content.rstrip("\n").split("\n"))
            if any(r.strip() for r in rows):
                blocks.append(Block(BlockKind.CODE, "\n".join(rows), heading, rows))
        elif token.type == "blockquote_open":
            quoted = "\n".join(re.sub(r"^\s*>\s?", "", s) for s in _lines(lines, token.map))
            blocks += _text_blocks(quoted, heading)
        i = end + 1 if token.nesting == 1 else i + 1
    return Page(uri, title or first_h1 or _default_title(uri), tuple(blocks), "markdown")


def _closing(tokens: list[Any], start: int) -> int:
    """Index of the token closing the one at ``start`` (itself if not an opener)."""
    if tokens[start].nesting != 1:
        return start
    depth = 0
    for j in range(start, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _lines(lines: list[str], span: list[int] | None) -> list[str]:
    return [] if span is None else lines[span[0] : span[1]]


# -- HTML ----------------------------------------------------------------------------


def parse_html(data: bytes | str, *, uri: str, title: str = "") -> Page:
    """The page's main content (trafilatura drops navigation, boilerplate and
    scripts), as Markdown, then parsed like a Markdown file."""
    trafilatura = require("trafilatura", "HTML sources")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if not raw.strip():
        raise ValidationError(f"{uri} is empty")
    extracted = trafilatura.extract(
        raw,
        url=uri if uri.startswith("http") else None,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
    )
    page = parse_markdown(str(extracted or ""), uri=uri, title=title or "-")
    name = title or _html_title(raw, trafilatura) or page.title
    if name == "-":
        name = _default_title(uri)
    notes = () if extracted else (f"{uri}: no main text found",)
    return Page(uri, name, page.blocks, "html", notes)


def _html_title(raw: bytes, trafilatura: ModuleType) -> str:
    meta = trafilatura.extract_metadata(raw)
    found = getattr(meta, "title", None) if meta is not None else None
    return _clean(str(found)) if found else ""


# -- PDF -----------------------------------------------------------------------------


def parse_pdf(data: bytes, *, uri: str, title: str = "") -> Page:
    """Text per page (pypdf); the PDF's outline (bookmarks), when it has one,
    gives the heading path of each page's text. Scanned PDFs without a text
    layer are refused (no OCR here)."""
    pypdf = require("pypdf", "PDF sources")
    if not data:
        raise ValidationError(f"{uri} is an empty file, not a PDF")
    if not data.lstrip()[:5] == b"%PDF-":
        raise ValidationError(f"{uri} is not a PDF (no %PDF- header)")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValidationError(f"{uri} is an encrypted PDF; decrypt it first")
        texts = [page.extract_text() or "" for page in reader.pages]
        outline = list(_outline(reader, reader.outline, 0))
        meta_title = _clean(str((reader.metadata or {}).get("/Title") or ""))
    except ValidationError:
        raise
    except Exception as exc:  # pypdf raises many types on malformed input
        raise ValidationError(f"{uri} is not a readable PDF: {exc}") from None
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    marks = sorted(outline, key=lambda mark: mark[0])
    m = 0
    for number, text in enumerate(texts):
        while m < len(marks) and marks[m][0] <= number:
            _, level, name = marks[m]
            path = [(lv, h) for lv, h in path if lv < level] + [(level, name)]
            m += 1
        blocks += _text_blocks(text, tuple(h for _, h in path), page=number + 1)
    if not blocks:
        raise ValidationError(
            f"{uri} has no extractable text (a scanned PDF needs OCR before indexing)"
        )
    return Page(uri, title or meta_title or _default_title(uri), tuple(blocks), "pdf")


def _outline(reader: Any, items: Iterable[Any], level: int) -> Iterator[tuple[int, int, str]]:
    """(page index, level, title) of every outline entry, in document order."""
    for item in items:
        if isinstance(item, list):
            yield from _outline(reader, item, level + 1)
            continue
        number = reader.get_destination_page_number(item)
        name = _clean(str(getattr(item, "title", "") or ""))
        if number is not None and number >= 0 and name:
            yield int(number), level, name


# -- FAQ -----------------------------------------------------------------------------

_QUESTION = ("question", "questions", "q", "query", "faq")
_ANSWER = ("answer", "answers", "a", "response", "reply")
_CATEGORY = ("category", "section", "topic", "group")
_LISTS = ("faqs", "faq", "items", "questions", "data", "entries")


def parse_faq(text: str, *, uri: str, title: str = "") -> Page:
    """Question/answer pairs from CSV, TSV, JSON or JSON lines, one block each.

    CSV/TSV need a header naming the question and answer columns (question/q,
    answer/a, ...) unless the file has exactly two columns, taken as question
    and answer with no header. An optional category column becomes the
    heading. JSON is a list of objects with those keys (or an object holding
    such a list under ``faqs``, ``items``, ...).
    """
    stripped = text.lstrip()
    lower = uri.lower()
    if stripped.startswith(("[", "{")) or lower.endswith((".json", ".jsonl")):
        rows = _json_rows(text, uri)
    else:
        rows = _table_rows(text, uri, "\t" if lower.endswith(".tsv") else None)
    blocks: list[Block] = []
    skipped = 0
    for row in rows:
        question = _clean(str(row.get("question") or ""))
        answer = str(row.get("answer") or "").strip()
        if not question or not answer:
            skipped += 1
            continue
        category = _clean(str(row.get("category") or ""))
        pair = f"Q: {question}\nA: {answer}"
        blocks.append(Block(BlockKind.QA, pair, (category,) if category else ()))
    if not blocks:
        raise ValidationError(f"{uri}: no question/answer pairs found")
    notes = (f"{uri}: {skipped} rows without a question or an answer skipped",) if skipped else ()
    return Page(uri, title or _default_title(uri), tuple(blocks), "faq", notes)


def _pick(keys: Iterable[str], names: tuple[str, ...]) -> str | None:
    lowered = {k.strip().lower(): k for k in keys if isinstance(k, str)}
    return next((lowered[n] for n in names if n in lowered), None)


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    q, a, c = _pick(obj, _QUESTION), _pick(obj, _ANSWER), _pick(obj, _CATEGORY)
    return {
        "question": obj.get(q) if q else None,
        "answer": obj.get(a) if a else None,
        "category": obj.get(c) if c else None,
    }


def _json_rows(text: str, uri: str) -> list[dict[str, Any]]:
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{uri}: not valid JSON or JSON lines: {exc}") from None
    if isinstance(data, dict):
        key = _pick(data, _LISTS)
        data = data.get(key) if key else [data]
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ValidationError(
            f"{uri}: expected a list of {{question, answer}} objects "
            "(or an object holding one under 'faqs' or 'items')"
        )
    return [_normalise(x) for x in data]


def _table_rows(text: str, uri: str, delimiter: str | None) -> list[dict[str, Any]]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        table = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(r)]
    except csv.Error as exc:
        raise ValidationError(f"{uri}: not valid CSV: {exc}") from None
    if not table:
        raise ValidationError(f"{uri}: the file is empty")
    header = [h.strip().lower() for h in table[0]]
    q, a = _pick(header, _QUESTION), _pick(header, _ANSWER)
    if q is not None and a is not None:
        names = header
        body = table[1:]
    elif all(len(r) == 2 for r in table):
        names, body = ["question", "answer"], table
    else:
        raise ValidationError(
            f"{uri}: the header must name a question and an answer column "
            f"(e.g. 'question,answer'); found {table[0]!r}"
        )
    return [_normalise(dict(zip(names, row, strict=False))) for row in body]
