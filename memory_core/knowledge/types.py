"""Typed values of the knowledge pipeline: what parsers produce (:class:`Page`
of :class:`Block`\\ s), what callers pass in (:class:`DocumentIn`) and what a
search returns (:class:`KnowledgeHit` with its :class:`Citation`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Block",
    "BlockKind",
    "Citation",
    "DocumentIn",
    "KnowledgeHit",
    "Page",
    "ProgressFn",
]

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as a long indexing run advances."""


class BlockKind(StrEnum):
    TEXT = "text"  # a paragraph (split between sentences when too long)
    LIST = "list"  # list items, one per row; never cut inside an item
    TABLE = "table"  # table rows; the header is repeated when a table is split
    CODE = "code"  # preformatted lines
    QA = "qa"  # one question with its answer (FAQ): always a chunk of its own


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit of a page, under the headings in ``heading_path``."""

    kind: BlockKind
    text: str
    heading_path: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()  # LIST / TABLE / CODE: the rows ``text`` is made of
    header: str = ""  # TABLE: the header lines, repeated on every part
    page: int | None = None  # PDF: 1-based page number


@dataclass(frozen=True, slots=True)
class Page:
    """One document of a source (a file, a web page, a document of a batch)."""

    uri: str
    title: str
    blocks: tuple[Block, ...]
    kind: str = "text"  # what it was parsed from (text, markdown, html, pdf, faq)
    notes: tuple[str, ...] = field(default=())

    def content_hash(self, salt: str = "") -> str:
        """A hash of what gets indexed: title, headings and block texts."""
        digest = hashlib.sha256(salt.encode())
        digest.update(b"\x00" + self.title.encode())
        for block in self.blocks:
            for part in (block.kind.value, "\x1f".join(block.heading_path), block.header):
                digest.update(b"\x00" + part.encode())
            digest.update(b"\x00" + block.text.encode() + b"\x00" + str(block.page).encode())
        return digest.hexdigest()


class DocumentIn(BaseModel):
    """A document given directly (not as a file): its text in ``format``, a
    title, and a ``uri`` that identifies it within its source (defaults to
    ``doc:<n>``, its position). Refreshing a source re-indexes only the
    documents whose content changed, matched by ``uri``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    title: str = ""
    uri: str | None = None
    format: Literal["text", "markdown", "html"] = "text"

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or len(value) > 2000):
            raise ValueError("a document uri must be 1-2000 characters")
        return value


class Citation(BaseModel):
    """Where a knowledge chunk comes from."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    kb_id: str
    source_title: str
    uri: str  # the page (web), file or document the chunk is in
    page_title: str = ""
    heading_path: tuple[str, ...] = ()
    position: int = 0  # 0-based order of the chunk within its page
    page: int | None = None  # PDF page number

    def __str__(self) -> str:
        parts = [self.source_title or self.uri]
        if self.page_title and self.page_title != self.source_title:
            parts.append(self.page_title)
        parts += [h for h in self.heading_path if h not in parts]
        where = self.uri + (f" p.{self.page}" if self.page is not None else "")
        return f"{' › '.join(parts)} ({where}, chunk {self.position + 1})"


class KnowledgeHit(BaseModel):
    """A search result: the chunk's passage, its score (in [0, 1], higher is
    better) and its citation."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    score: float = Field(ge=0.0, le=1.0)
    citation: Citation
