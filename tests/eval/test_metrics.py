"""Retrieval metrics: hand-computed cases and a cross-check on random inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_core.eval.locomo import LocomoQuestion
from memory_core.eval.metrics import (
    beir_report,
    evidence_recall_at_k,
    locomo_report,
    mean,
    ndcg_at_k,
    recall_at_k,
)

# --------------------------------------------------------------------------- nDCG


def test_ndcg_graded_hand_computed() -> None:
    # qrels {a: 2, b: 1}, ranking [b, x, a], k = 10
    # DCG  = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1         = 2
    # IDCG = 2/log2(2) + 1/log2(3)             = 2 + 0.630929754   = 2.630929754
    # nDCG = 2 / 2.630929754                                       = 0.760187...
    value = ndcg_at_k(["b", "x", "a"], {"a": 2, "b": 1}, k=10)
    assert value == pytest.approx(2 / (2 + 1 / math.log2(3)))
    assert value == pytest.approx(0.7601875, abs=1e-6)


def test_ndcg_perfect_ranking_is_one() -> None:
    qrels = {"a": 3, "b": 2, "c": 1}
    assert ndcg_at_k(["a", "b", "c", "z"], qrels, k=10) == pytest.approx(1.0)
    # equal grades in either order are both ideal
    assert ndcg_at_k(["b", "a"], {"a": 1, "b": 1}, k=10) == pytest.approx(1.0)


def test_ndcg_no_relevant_is_zero() -> None:
    assert ndcg_at_k(["a", "b"], {}, k=10) == 0.0
    assert ndcg_at_k(["a", "b"], {"a": 0, "b": -1}, k=10) == 0.0  # judged non-relevant only
    assert ndcg_at_k(["x", "y"], {"a": 1}, k=10) == 0.0  # nothing relevant retrieved
    assert ndcg_at_k([], {"a": 1}, k=10) == 0.0


def test_ndcg_k_truncation() -> None:
    # relevant doc at rank 3; k = 2 does not see it
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}, k=2) == 0.0
    # k = 3: DCG = 1/log2(4) = 0.5, IDCG = 1 -> 0.5
    assert ndcg_at_k(["x", "y", "a"], {"a": 1}, k=3) == pytest.approx(0.5)
    # IDCG is truncated to k too: 3 relevant docs, k = 1, the best one first -> 1.0
    assert ndcg_at_k(["a", "x"], {"a": 2, "b": 2, "c": 2}, k=1) == pytest.approx(1.0)
    # k = 2 with qrels {a:2, b:1, c:1}, ranking [c, a]:
    # DCG = 1/1 + 2/log2(3) = 2.261859507; IDCG = 2/1 + 1/log2(3) = 2.630929754
    assert ndcg_at_k(["c", "a"], {"a": 2, "b": 1, "c": 1}, k=2) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    )


def test_ndcg_zero_and_negative_scores_give_no_gain() -> None:
    # n is judged 0, m judged -1: both non-relevant; a at rank 3 -> 1/log2(4) = 0.5
    assert ndcg_at_k(["n", "m", "a"], {"a": 1, "n": 0, "m": -1}, k=10) == pytest.approx(0.5)


def test_ndcg_duplicate_counts_once() -> None:
    # the second "a" neither adds gain nor takes a rank: [a, a, b] scores as [a, b]
    assert ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}, k=10) == pytest.approx(1.0)


def test_ndcg_rejects_bad_k() -> None:
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 1}, k=0)


# ------------------------------------------------------------------------- recall


def test_recall_at_k() -> None:
    qrels = {"a": 1, "b": 2, "c": 1, "n": 0}
    assert recall_at_k(["a", "x", "b", "c"], qrels, k=100) == pytest.approx(1.0)
    assert recall_at_k(["a", "x", "b", "c"], qrels, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "x", "b", "c"], qrels, k=3) == pytest.approx(2 / 3)
    assert recall_at_k(["n", "x"], qrels, k=100) == 0.0  # score 0 is not relevant
    assert recall_at_k(["a", "a", "a"], qrels, k=100) == pytest.approx(1 / 3)  # duplicates
    assert recall_at_k([], qrels, k=100) == 0.0
    assert recall_at_k(["a"], {}, k=100) == 0.0
    assert recall_at_k(["a"], {"a": 0}, k=100) == 0.0


# --------------------------------------------------------------- evidence recall


def test_evidence_recall_units_pointing_to_several_ids() -> None:
    evidence = ["D1:3", "D2:7", "D5:1"]
    retrieved = [
        {"D9:9"},  # a message that is not evidence
        {"D1:3", "D1:4", "D2:7"},  # an observation drawn from three messages
        {"D5:1"},
    ]
    assert evidence_recall_at_k(retrieved, evidence, k=1) == 0.0
    assert evidence_recall_at_k(retrieved, evidence, k=2) == pytest.approx(2 / 3)
    assert evidence_recall_at_k(retrieved, evidence, k=3) == pytest.approx(1.0)


def test_evidence_recall_duplicates() -> None:
    # the same id retrieved by several units counts once; duplicate evidence counts once
    retrieved = [{"D1:1"}, {"D1:1", "D1:2"}, ["D1:1", "D1:1"]]
    assert evidence_recall_at_k(retrieved, ["D1:1", "D1:1", "D3:3"], k=3) == pytest.approx(0.5)


def test_evidence_recall_k_larger_than_list() -> None:
    assert evidence_recall_at_k([{"D1:1"}], ["D1:1", "D1:2"], k=25) == pytest.approx(0.5)
    assert evidence_recall_at_k([], ["D1:1"], k=25) == 0.0


def test_evidence_recall_bare_string_unit_is_one_id() -> None:
    # a message pointing to itself may be passed as its id alone (not split into chars)
    assert evidence_recall_at_k(["D1:1", "D2:2"], ["D2:2"], k=2) == pytest.approx(1.0)
    assert evidence_recall_at_k(["D1"], ["D", "1"], k=1) == 0.0


def test_evidence_recall_rejects_empty_evidence_and_bad_k() -> None:
    with pytest.raises(ValueError, match="evidence is empty"):
        evidence_recall_at_k([{"D1:1"}], [], k=5)
    with pytest.raises(ValueError):
        evidence_recall_at_k([{"D1:1"}], ["D1:1"], k=0)


# -------------------------------------------------------------------------- mean


def test_mean() -> None:
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)
    assert mean(x for x in (0.25,)) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        mean([])


# ------------------------------------------------------------------------ reports


def _q(category: int, *evidence: str) -> LocomoQuestion:
    return LocomoQuestion(question="q?", answer="a", category=category, evidence=evidence)


def test_locomo_report() -> None:
    filler = [{f"D0:{i}"} for i in range(30)]
    results = [
        # multi-hop: both ids at ranks 1 and 7 -> R@5 0.5, R@10 1, R@25 1
        (_q(1, "D1:1", "D1:2"), [{"D1:1"}, *filler[:5], {"D1:2"}]),
        # multi-hop: id at rank 12 -> 0, 0, 1
        (_q(1, "D2:1"), [*filler[:11], {"D2:1"}]),
        # single-hop: id at rank 1 -> 1, 1, 1
        (_q(4, "D3:3"), [{"D3:3", "D3:4"}]),
        # no evidence after cleaning: skipped
        (_q(3), [{"D1:1"}]),
    ]
    report = locomo_report(results)
    assert report.ks == (5, 10, 25)
    assert report.skipped_no_evidence == 1
    assert report.overall.count == 3
    assert report.overall.recall[5] == pytest.approx((0.5 + 0 + 1) / 3)
    assert report.overall.recall[10] == pytest.approx((1 + 0 + 1) / 3)
    assert report.overall.recall[25] == pytest.approx(1.0)
    assert set(report.per_category) == {1, 4}
    multi = report.per_category[1]
    assert (multi.name, multi.count) == ("multi-hop", 2)
    assert multi.recall == pytest.approx({5: 0.25, 10: 0.5, 25: 1.0})
    assert report.per_category[4].recall == pytest.approx({5: 1.0, 10: 1.0, 25: 1.0})

    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["ks"] == [5, 10, 25]
    assert data["overall"]["count"] == 3
    assert data["per_category"]["1"] == {
        "name": "multi-hop",
        "count": 2,
        "R@5": pytest.approx(0.25),
        "R@10": pytest.approx(0.5),
        "R@25": pytest.approx(1.0),
    }
    assert data["skipped_no_evidence"] == 1


def test_locomo_report_custom_ks_and_errors() -> None:
    report = locomo_report([(_q(2, "D1:1"), [{"D9:9"}, {"D1:1"}])], ks=[2, 1])
    assert report.ks == (1, 2)
    assert report.overall.recall == {1: 0.0, 2: 1.0}
    with pytest.raises(ValueError):
        locomo_report([(_q(3), [])])
    with pytest.raises(ValueError):
        locomo_report([(_q(2, "D1:1"), [])], ks=[])


def test_beir_report() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}, "q3": {"d": 1}}
    runs = {"q1": ["a"], "q2": ["x", "b"]}  # q3 missing from the run: scores 0
    report = beir_report(runs, qrels, ndcg_k=10, recall_k=100)
    ndcg_q2 = (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert report.count == 3
    assert report.ndcg == pytest.approx((1 + ndcg_q2 + 0) / 3)
    assert report.recall == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.to_dict() == {
        "count": 3,
        "nDCG@10": pytest.approx(report.ndcg),
        "R@100": pytest.approx(report.recall),
    }


# ---------------------------------------------- cross-check against numpy version


def _ndcg_numpy(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    """An independent nDCG@k: vectorised, first-occurrence dedup via np.unique."""
    arr = np.array(ranked, dtype=object)
    if arr.size:
        _, first = np.unique(arr.astype(str), return_index=True)
        arr = arr[np.sort(first)]
    top = arr[:k]
    gains = np.array([max(qrels.get(str(d), 0), 0) for d in top], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, gains.size + 2, dtype=float))
    dcg = float(np.dot(gains, discounts)) if gains.size else 0.0
    ideal = np.sort(np.clip(np.array(list(qrels.values()), dtype=float), 0, None))[::-1][:k]
    idcg = float(np.dot(ideal, 1.0 / np.log2(np.arange(2, ideal.size + 2, dtype=float))))
    return dcg / idcg if idcg > 0 else 0.0


_DOCS = st.sampled_from([f"d{i}" for i in range(12)])


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(
    ranked=st.lists(_DOCS, max_size=15),
    qrels=st.dictionaries(_DOCS, st.integers(min_value=-1, max_value=3), max_size=10),
    k=st.integers(min_value=1, max_value=15),
)
def test_ndcg_matches_independent_implementation(
    ranked: list[str], qrels: dict[str, int], k: int
) -> None:
    value = ndcg_at_k(ranked, qrels, k)
    assert value == pytest.approx(_ndcg_numpy(ranked, qrels, k), abs=1e-12)
    assert 0.0 <= value <= 1.0 + 1e-12


@pytest.mark.slow
@settings(max_examples=200, deadline=None, database=None)
@given(
    ranked=st.lists(_DOCS, max_size=15),
    qrels=st.dictionaries(_DOCS, st.integers(min_value=-1, max_value=3), max_size=10),
    k=st.integers(min_value=1, max_value=15),
)
def test_recall_matches_set_definition(ranked: list[str], qrels: dict[str, int], k: int) -> None:
    relevant = np.array(sorted(d for d, s in qrels.items() if s > 0))
    seen = list(dict.fromkeys(ranked))[:k]
    expected = float(np.isin(relevant, seen).mean()) if relevant.size else 0.0
    assert recall_at_k(ranked, qrels, k) == pytest.approx(expected)
