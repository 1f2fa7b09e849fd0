"""Retrieval metrics for the offline evaluations (pure functions).

- :func:`evidence_recall_at_k`: LoCoMo evidence recall. Each returned unit
  points to a set of dia_ids (a message to itself, an observation or summary to
  the messages it was drawn from); R@k is the share of the question's evidence
  ids found among the ids the top-k units point to.
- :func:`ndcg_at_k` and :func:`recall_at_k`: BEIR's standard definitions, as
  pytrec_eval's ``ndcg_cut`` and ``recall`` compute them: linear graded gain
  (the qrels score), ``log2(rank + 1)`` discount, the ideal DCG from all judged
  relevant documents, and documents with a score <= 0 counted as non-relevant.
- :func:`locomo_report` and :func:`beir_report` aggregate per-question scores
  into JSON-serialisable reports.

A document or dia_id repeated in a ranking counts once, at its first rank.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from memory_core.eval.locomo import CATEGORY_NAMES, LocomoQuestion

__all__ = [
    "LOCOMO_KS",
    "BeirReport",
    "CategoryScores",
    "LocomoReport",
    "beir_report",
    "evidence_recall_at_k",
    "locomo_report",
    "mean",
    "ndcg_at_k",
    "recall_at_k",
]

LOCOMO_KS: tuple[int, ...] = (5, 10, 25)
"""The cut-offs LoCoMo evidence recall is reported at."""


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def evidence_recall_at_k(
    retrieved: Sequence[Collection[str]], evidence: Collection[str], k: int
) -> float:
    """Share of ``evidence`` ids pointed to by the first ``k`` retrieved units.

    ``retrieved[i]`` is the set of dia_ids the unit at rank ``i + 1`` points to
    (a bare string is taken as a single id). Duplicate evidence ids count once.
    Raises ValueError when ``evidence`` is empty (such questions are skipped) or
    ``k < 1``.
    """
    _check_k(k)
    gold = {evidence} if isinstance(evidence, str) else set(evidence)
    if not gold:
        raise ValueError("evidence is empty: questions without evidence cannot be scored")
    found: set[str] = set()
    for unit in retrieved[:k]:
        if isinstance(unit, str):
            found.add(unit)
        else:
            found.update(unit)
    return len(gold & found) / len(gold)


def _first_occurrences(ranked: Sequence[str], k: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranked:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        out.append(doc_id)
        if len(out) == k:
            break
    return out


def ndcg_at_k(
    ranked_doc_ids: Sequence[str], qrels_for_query: Mapping[str, int], k: int = 10
) -> float:
    """nDCG@k with graded (linear) gain, as BEIR / pytrec_eval ``ndcg_cut_k``.

    DCG = sum over ranks i = 1..k of rel_i / log2(i + 1), rel_i the qrels score of
    the document at rank i (0 when unjudged or <= 0). IDCG is the DCG of the ideal
    ordering of all judged relevant documents, truncated to k. Returns 0.0 when
    the query has no relevant document.
    """
    _check_k(k)
    ideal = sorted((s for s in qrels_for_query.values() if s > 0), reverse=True)[:k]
    if not ideal:
        return 0.0
    idcg = sum(gain / math.log2(rank + 1) for rank, gain in enumerate(ideal, start=1))
    dcg = 0.0
    for rank, doc_id in enumerate(_first_occurrences(ranked_doc_ids, k), start=1):
        gain = qrels_for_query.get(doc_id, 0)
        if gain > 0:
            dcg += gain / math.log2(rank + 1)
    return dcg / idcg


def recall_at_k(
    ranked_doc_ids: Sequence[str], qrels_for_query: Mapping[str, int], k: int = 100
) -> float:
    """Relevant documents (score > 0) in the top k / all relevant documents.

    Returns 0.0 when the query has no relevant document.
    """
    _check_k(k)
    relevant = {doc_id for doc_id, score in qrels_for_query.items() if score > 0}
    if not relevant:
        return 0.0
    hits = relevant.intersection(_first_occurrences(ranked_doc_ids, k))
    return len(hits) / len(relevant)


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; raises ValueError on no values (a mean of nothing is undefined)."""
    total = 0.0
    count = 0
    for value in values:
        total += value
        count += 1
    if count == 0:
        raise ValueError("mean of no values")
    return total / count


@dataclass(frozen=True, slots=True)
class CategoryScores:
    """Mean evidence recall of one group of questions: ``recall[k]`` is mean R@k."""

    name: str
    count: int
    recall: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "count": self.count}
        out.update({f"R@{k}": value for k, value in sorted(self.recall.items())})
        return out


@dataclass(frozen=True, slots=True)
class LocomoReport:
    """LoCoMo evidence recall: overall and per category, at each k in ``ks``.

    ``per_category`` holds only the categories that had scored questions, keyed
    by category number. ``skipped_no_evidence`` counts the questions left out
    because no evidence id survived cleaning.
    """

    ks: tuple[int, ...]
    overall: CategoryScores
    per_category: dict[int, CategoryScores]
    skipped_no_evidence: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (category keys as strings)."""
        return {
            "metric": "evidence_recall",
            "ks": list(self.ks),
            "overall": self.overall.to_dict(),
            "per_category": {
                str(category): scores.to_dict()
                for category, scores in sorted(self.per_category.items())
            },
            "skipped_no_evidence": self.skipped_no_evidence,
        }


def _scores(name: str, per_question: list[dict[int, float]], ks: tuple[int, ...]) -> CategoryScores:
    return CategoryScores(
        name=name,
        count=len(per_question),
        recall={k: mean(q[k] for q in per_question) for k in ks},
    )


def locomo_report(
    results: Iterable[tuple[LocomoQuestion, Sequence[Collection[str]]]],
    ks: Sequence[int] = LOCOMO_KS,
) -> LocomoReport:
    """Build the LoCoMo report from each question and its ranked retrieval.

    ``results`` yields ``(question, retrieved)`` with ``retrieved`` as for
    :func:`evidence_recall_at_k` (best first, at least ``max(ks)`` units when the
    retriever returns that many). Questions without evidence are skipped and
    counted. Raises ValueError when no question could be scored.
    """
    cutoffs = tuple(sorted(set(ks)))
    if not cutoffs:
        raise ValueError("ks must not be empty")
    for k in cutoffs:
        _check_k(k)
    scored: list[tuple[int, dict[int, float]]] = []
    skipped = 0
    for question, retrieved in results:
        if not question.is_evaluable:
            skipped += 1
            continue
        scored.append(
            (
                question.category,
                {k: evidence_recall_at_k(retrieved, question.evidence, k) for k in cutoffs},
            )
        )
    if not scored:
        raise ValueError("no question with evidence to score")
    per_category = {
        category: _scores(name, [s for c, s in scored if c == category], cutoffs)
        for category, name in CATEGORY_NAMES.items()
        if any(c == category for c, _ in scored)
    }
    return LocomoReport(
        ks=cutoffs,
        overall=_scores("overall", [s for _, s in scored], cutoffs),
        per_category=per_category,
        skipped_no_evidence=skipped,
    )


@dataclass(frozen=True, slots=True)
class BeirReport:
    """Mean nDCG@``ndcg_k`` and recall@``recall_k`` over ``count`` queries."""

    count: int
    ndcg_k: int
    ndcg: float
    recall_k: int
    recall: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            f"nDCG@{self.ndcg_k}": self.ndcg,
            f"R@{self.recall_k}": self.recall,
        }


def beir_report(
    runs: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ndcg_k: int = 10,
    recall_k: int = 100,
) -> BeirReport:
    """Mean nDCG and recall over every query in ``qrels``.

    ``runs[query_id]`` is the ranked list of document ids, best first. A judged
    query missing from ``runs`` scores 0 (unlike pytrec_eval, which would drop
    it), so a partial run cannot inflate the means.
    """
    if not qrels:
        raise ValueError("qrels is empty")
    ndcgs: list[float] = []
    recalls: list[float] = []
    for query_id, judged in qrels.items():
        ranked = runs.get(query_id, ())
        ndcgs.append(ndcg_at_k(ranked, judged, ndcg_k))
        recalls.append(recall_at_k(ranked, judged, recall_k))
    return BeirReport(
        count=len(ndcgs),
        ndcg_k=ndcg_k,
        ndcg=mean(ndcgs),
        recall_k=recall_k,
        recall=mean(recalls),
    )
