"""Structure-aware chunking of a :class:`Page` into retrievable passages.

- Chunks never span two sections: every chunk keeps its heading path.
- A FAQ pair is one chunk (split only when longer than ``max_tokens``, each
  part keeping its question).
- Paragraphs stay whole when they fit; longer ones are cut between sentences.
  List items and table rows are never cut (unless one alone is over
  ``max_tokens``); a table split over chunks repeats its header, and a list
  or table that fits in one chunk is moved whole to the next chunk rather
  than cut.
- Consecutive chunks of a section overlap by about ``overlap`` of the target
  (whole sentences or rows); a tiny last chunk is merged into the previous one.

Sizes are in :func:`memory_core.recall.count_tokens` units (close to BPE
tokens); the default target (~200) keeps a chunk with its context line within
the 256 word pieces the local embedder reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from memory_core.knowledge.types import Block, BlockKind, Page
from memory_core.recall import count_tokens

__all__ = ["ChunkingConfig", "Piece", "chunk_page", "context_line"]


@dataclass(frozen=True)
class ChunkingConfig:
    """How pages are cut. ``context`` prefixes each chunk's indexed text with a
    line naming the document and its headings."""

    target_tokens: int = 200
    overlap: float = 0.15
    max_tokens: int = 300
    context: bool = True

    def __post_init__(self) -> None:
        if not 20 <= self.target_tokens <= self.max_tokens:
            raise ValueError("need 20 <= target_tokens <= max_tokens")
        if not 0.0 <= self.overlap < 0.5:
            raise ValueError("overlap must be within [0, 0.5)")

    @property
    def signature(self) -> str:
        """Changes whenever chunks would come out differently (part of page hashes)."""
        return f"chunker-1:{self.target_tokens}:{self.overlap}:{self.max_tokens}:{self.context}"


@dataclass(frozen=True)
class Piece:
    """One chunk of a page: its passage and where it sits."""

    passage: str
    heading_path: tuple[str, ...]
    position: int
    page: int | None = None


def context_line(title: str, heading_path: tuple[str, ...]) -> str:
    """``Title > Heading > Subheading`` (a heading equal to the title is not repeated)."""
    parts = [title] if title else []
    parts += [h for h in heading_path if h and h not in parts]
    return " > ".join(parts)


@dataclass
class _Unit:
    text: str
    tokens: int
    block: int
    joiner: str  # between this unit and the previous one of the same block
    header: str = ""  # table header repeated when a chunk starts inside the table
    page: int | None = None


@dataclass
class _Draft:
    units: list[_Unit] = field(default_factory=list)
    carried: int = 0  # leading units repeated from the previous chunk (overlap)

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)


_SENTENCE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _split_words(text: str, size: int) -> list[str]:
    """Cut an over-long run of text into pieces of about ``size`` tokens."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for word in text.split():
        cost = count_tokens(word)
        if current and used + cost > size:
            out.append(" ".join(current))
            current, used = [], 0
        current.append(word)
        used += cost
    if current:
        out.append(" ".join(current))
    return out


def _units(block: Block, index: int, config: ChunkingConfig) -> list[_Unit]:
    def fit(text: str) -> list[str]:
        return (
            [text]
            if count_tokens(text) <= config.max_tokens
            else _split_words(text, config.target_tokens)
        )

    if block.kind in (BlockKind.LIST, BlockKind.TABLE, BlockKind.CODE):
        rows = [part for row in block.rows for part in fit(row)]
        return [_Unit(r, count_tokens(r), index, "\n", block.header, block.page) for r in rows]
    tokens = count_tokens(block.text)
    if block.kind is BlockKind.QA:
        if tokens <= config.max_tokens:
            return [_Unit(block.text, tokens, index, " ", page=block.page)]
        question, _, answer = block.text.partition("\n")
        parts = [part for sentence in _sentences(answer) for part in fit(sentence)]
        return [_Unit(question, count_tokens(question), index, "\n", page=block.page)] + [
            _Unit(p, count_tokens(p), index, " ", question, block.page) for p in parts
        ]
    if tokens <= config.target_tokens:
        return [_Unit(block.text, tokens, index, " ", page=block.page)]
    parts = [part for sentence in _sentences(block.text) for part in fit(sentence)]
    return [_Unit(p, count_tokens(p), index, " ", page=block.page) for p in parts]


def _render(units: list[_Unit]) -> str:
    out: list[str] = []
    for i, unit in enumerate(units):
        starts_block = i == 0 or unit.block != units[i - 1].block
        if i > 0:
            out.append("\n\n" if starts_block else unit.joiner)
        if starts_block and unit.header:
            out.append(unit.header + "\n")
        out.append(unit.text)
    return "".join(out)


def _pack(units: list[_Unit], blocks: list[Block], config: ChunkingConfig) -> list[_Draft]:
    """Greedy packing of one section's units into drafts of about the target size."""
    target = config.target_tokens
    block_tokens: dict[int, int] = {}
    for unit in units:
        block_tokens[unit.block] = block_tokens.get(unit.block, 0) + unit.tokens
    drafts: list[_Draft] = []
    current = _Draft()
    for i, unit in enumerate(units):
        starts_block = i == 0 or units[i - 1].block != unit.block
        structured = blocks[unit.block].kind in (BlockKind.LIST, BlockKind.TABLE)
        whole = block_tokens[unit.block] if starts_block and structured else unit.tokens
        if (
            current.units
            and len(current.units) > current.carried
            and (current.tokens + unit.tokens > target or current.tokens + whole > target >= whole)
        ):
            drafts.append(current)
            current = _overlap(current, config, unit)
        current.units.append(unit)
    if current.units and len(current.units) > current.carried:
        drafts.append(current)
    if len(drafts) >= 2:  # fold a tiny tail into the chunk before it
        last, before = drafts[-1], drafts[-2]
        fresh = last.units[last.carried :]
        if sum(u.tokens for u in fresh) < target // 4 and (
            before.tokens + sum(u.tokens for u in fresh) <= config.max_tokens
        ):
            before.units.extend(fresh)
            drafts.pop()
    return drafts


def _overlap(previous: _Draft, config: ChunkingConfig, upcoming: _Unit) -> _Draft:
    budget = int(config.target_tokens * config.overlap)
    tail: list[_Unit] = []
    used = 0
    for unit in reversed(previous.units[previous.carried :]):
        if used + unit.tokens > budget:
            break
        tail.insert(0, unit)
        used += unit.tokens
    if len(tail) >= len(previous.units) - previous.carried:
        tail = tail[1:]  # never repeat a whole chunk
    if used + upcoming.tokens > config.max_tokens:
        tail = []
    return _Draft(list(tail), len(tail))


def chunk_page(page: Page, config: ChunkingConfig | None = None) -> list[Piece]:
    """The chunks of a page, in document order."""
    config = config or ChunkingConfig()
    blocks = list(page.blocks)
    pieces: list[Piece] = []
    section: list[int] = []

    def flush() -> None:
        if not section:
            return
        units = [u for i in section for u in _units(blocks[i], i, config)]
        for draft in _pack(units, blocks, config):
            fresh = draft.units[draft.carried :] or draft.units
            pieces.append(
                Piece(
                    passage=_render(draft.units),
                    heading_path=blocks[fresh[0].block].heading_path,
                    position=len(pieces),
                    page=fresh[0].page,
                )
            )
        section.clear()

    for i, block in enumerate(blocks):
        if block.kind is BlockKind.QA:
            flush()
            section.append(i)
            flush()
            continue
        if section and blocks[section[-1]].heading_path != block.heading_path:
            flush()
        section.append(i)
    flush()
    return pieces
