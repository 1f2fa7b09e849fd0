"""Loader for a dataset in the BEIR layout (e.g. SciFact).

A BEIR directory holds::

    corpus.jsonl        one document per line: {"_id", "title", "text", ...}
    queries.jsonl       one query per line:    {"_id", "text", ...}
    qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, with or without
                        the header line "query-id  corpus-id  score"

As in BEIR's own loader, only the queries judged in the split's qrels are kept,
and a repeated (query, document) pair keeps its last score. Ids are strings
(numeric ids in JSON are turned into strings). A missing file or a malformed
line raises :class:`~memory_core.errors.ValidationError` naming the file and
the line number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory_core.errors import ValidationError

__all__ = ["BeirDataset", "BeirDoc", "load_beir"]


@dataclass(frozen=True, slots=True)
class BeirDoc:
    """One corpus document. ``title`` is "" when the corpus has none."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A corpus, the split's judged queries (id -> text) and their qrels.

    ``qrels[query_id][doc_id]`` is the graded relevance; scores <= 0 mark judged
    non-relevant documents.
    """

    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def relevant_pair_count(self) -> int:
        """Number of (query, document) pairs with a score > 0."""
        return sum(1 for judged in self.qrels.values() for s in judged.values() if s > 0)


def load_beir(directory: str | os.PathLike[str], split: str = "test") -> BeirDataset:
    """Read ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` from ``directory``."""
    root = Path(directory)
    if not root.is_dir():
        raise ValidationError(
            f"{root}: BEIR dataset directory not found; pass a directory in the BEIR "
            "layout (corpus.jsonl, queries.jsonl, qrels/test.tsv), e.g. SciFact from "
            "github.com/beir-cellar/beir (README: Quality and performance)"
        )
    qrels = _load_qrels(root / "qrels" / f"{split}.tsv")
    corpus = _load_corpus(root / "corpus.jsonl")
    all_queries = _load_queries(root / "queries.jsonl")
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        shown = ", ".join(repr(q) for q in missing[:5])
        raise ValidationError(
            f"{root / 'qrels' / f'{split}.tsv'}: {len(missing)} judged queries are not in "
            f"{root / 'queries.jsonl'} (e.g. {shown})"
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its end) for every non-blank line."""
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                stripped = line.rstrip("\r\n")
                if stripped.strip():
                    yield number, stripped
    except FileNotFoundError:
        raise ValidationError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: cannot read file: {exc}") from None


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _open_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise ValidationError(f"{path}:{number}: expected a JSON object")
        yield number, obj


def _id(path: Path, number: int, obj: dict[str, Any]) -> str:
    value = obj.get("_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ValidationError(f"{path}:{number}: missing or invalid '_id' ({value!r})")
    return str(value)


def _text(path: Path, number: int, obj: dict[str, Any], key: str, *, required: bool) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problem = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise ValidationError(f"{path}:{number}: {key!r} is {problem}")
    return value


def _load_corpus(path: Path) -> dict[str, BeirDoc]:
    corpus: dict[str, BeirDoc] = {}
    for number, obj in _json_lines(path):
        doc_id = _id(path, number, obj)
        if doc_id in corpus:
            raise ValidationError(f"{path}:{number}: duplicate document id {doc_id!r}")
        corpus[doc_id] = BeirDoc(
            id=doc_id,
            title=_text(path, number, obj, "title", required=False),
            text=_text(path, number, obj, "text", required=True),
        )
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, obj in _json_lines(path):
        query_id = _id(path, number, obj)
        if query_id in queries:
            raise ValidationError(f"{path}:{number}: duplicate query id {query_id!r}")
        queries[query_id] = _text(path, number, obj, "text", required=True)
    return queries


def _load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    first = True
    for number, line in _open_lines(path):
        fields = line.split("\t")
        if len(fields) == 1:
            fields = line.split()
        fields = [f.strip() for f in fields]
        is_first, first = first, False
        if is_first and [f.lower() for f in fields[:2]] == ["query-id", "corpus-id"]:
            continue  # header
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise ValidationError(
                f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}"
            )
        query_id, doc_id, raw_score = fields
        try:
            score = int(raw_score)
        except ValueError:
            raise ValidationError(
                f"{path}:{number}: score {raw_score!r} is not an integer"
            ) from None
        qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise ValidationError(f"{path}: no relevance judgements")
    return qrels
