"""Keyword analysis for the Weaviate backend: the embedded backend's, exactly.

The embedded backend indexes text with SQLite FTS5's ``porter unicode61
remove_diacritics 2`` tokenizer: Unicode word splitting, case and diacritics
folded, Porter stemming ("snorkelling" finds "snorkel"). Weaviate has no
stemmer, and keyword ranking without one measurably loses quality (LoCoMo
keyword R@10 60.1 against 63.9 with stemming). So the Weaviate backend runs
the very same tokenizer here, in an in-memory SQLite database (through FTS5's
``fts5vocab`` table), and stores each text's terms, space-separated, in a
property Weaviate indexes with ``whitespace`` tokenization; queries are
analysed the same way. Both backends then rank the same terms with the same
BM25 formula (k1 = 1.2, b = 0.75).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence

from memory_core.backends.sqlite import fts_query_terms

__all__ = ["TOKENIZER", "analyze", "query_terms"]

TOKENIZER = "porter unicode61 remove_diacritics 2"  # as the embedded backend's messages_fts

_local = threading.local()


class _Holder:
    """A thread's in-memory analysis database, closed when the thread ends."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.execute(f"CREATE VIRTUAL TABLE doc USING fts5(text, tokenize = '{TOKENIZER}')")
        self.conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(doc, instance)")
        weakref.finalize(self, self.conn.close)


def _connection() -> sqlite3.Connection:
    holder: _Holder | None = getattr(_local, "holder", None)
    if holder is None:
        holder = _local.holder = _Holder()
    return holder.conn


def analyze(texts: Sequence[str]) -> list[str]:
    """Each text's index terms (folded, stemmed), space-separated, in text order."""
    if not texts:
        return []
    conn = _connection()
    conn.execute("BEGIN")
    try:
        conn.executemany(
            "INSERT INTO doc (rowid, text) VALUES (?, ?)", [(i, t) for i, t in enumerate(texts)]
        )
        rows = conn.execute("SELECT doc, term FROM terms ORDER BY doc, offset").fetchall()
    finally:
        conn.execute("ROLLBACK")  # leaves the table empty for the next call
    out: list[list[str]] = [[] for _ in texts]
    for doc, term in rows:
        out[doc].append(term)
    return [" ".join(terms) for terms in out]


def query_terms(text: str) -> list[str]:
    """The terms a keyword query for ``text`` looks for: the embedded backend's
    query words (stopwords dropped, see ``fts_query_terms``), analysed as above."""
    words = fts_query_terms(text)
    return list(dict.fromkeys(t for terms in analyze(words) for t in terms.split()))
