"""Scoring a reconciler on labelled statement pairs (contradiction / paraphrase /
compatible): each pair is decided as reconciliation would, the old statement the
only candidate. ``python scripts/eval_contradictions.py`` prints the figures for
``tests/extraction/data/contradiction_pairs*.jsonl``."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from memory_core.embedding.base import Embedder
from memory_core.errors import ValidationError
from memory_core.extraction.base import ProposedObservation
from memory_core.extraction.reconcile import Candidate, Reconciler
from memory_core.models import Decision, Observation, ObservationKind

__all__ = ["Pair", "PairsResult", "evaluate_pairs", "load_pairs"]

Label = Literal["contradiction", "paraphrase", "compatible"]


@dataclass(frozen=True)
class Pair:
    old: str
    new: str
    label: Label


@dataclass
class PairsResult:
    """How a reconciler decided labelled pairs; UPDATE is the positive class for
    ``contradiction``."""

    count: int = 0
    confusion: Counter[tuple[str, Decision]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def _n(self, label: str | None, decision: Decision) -> int:
        return sum(
            n
            for (lab, dec), n in self.confusion.items()
            if dec is decision and (label is None or lab == label)
        )

    @property
    def update_precision(self) -> float:
        predicted = self._n(None, Decision.UPDATE)
        return self._n("contradiction", Decision.UPDATE) / predicted if predicted else 1.0

    @property
    def update_recall(self) -> float:
        actual = sum(n for (lab, _), n in self.confusion.items() if lab == "contradiction")
        return self._n("contradiction", Decision.UPDATE) / actual if actual else 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "pairs": self.count,
            "update_precision": round(self.update_precision, 3),
            "update_recall": round(self.update_recall, 3),
            "confusion": {
                f"{label} -> {decision.value}": n
                for (label, decision), n in sorted(self.confusion.items())
            },
            "errors": self.errors,
        }


def load_pairs(path: str | Path) -> list[Pair]:
    """Labelled pairs, one JSON object per line: ``{"old", "new", "label"}``."""
    pairs: list[Pair] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in ("contradiction", "paraphrase", "compatible"):
            raise ValidationError(f"{path}:{n}: label must be contradiction/paraphrase/compatible")
        pairs.append(Pair(str(row["old"]), str(row["new"]), row["label"]))
    return pairs


def _cosine(u: Sequence[float], v: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return dot / norm if norm else 0.0


def evaluate_pairs(
    pairs: Sequence[Pair], reconciler: Reconciler, embedder: Embedder
) -> PairsResult:
    """Decide each pair as reconciliation would (the old statement the only, active
    candidate, its similarity the embedder's cosine) and count the decisions."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    result = PairsResult(count=len(pairs))
    vectors = embedder.embed_batch([t for p in pairs for t in (p.old, p.new)])
    for i, pair in enumerate(pairs):
        old = Observation(
            id=f"obs_pair{i}",
            tenant="eval",
            profile_id="prof_eval",
            kind=ObservationKind.CONTEXT,
            text=pair.old,
            valid_from=at,
            created_at=at,
            updated_at=at,
            extractor="eval",
        )
        new = ProposedObservation(kind=ObservationKind.CONTEXT, text=pair.new, evidence=("m1",))
        similarity = _cosine(vectors[2 * i], vectors[2 * i + 1])
        verdict, _ = reconciler.decide(new, [Candidate(old, similarity)])
        result.confusion[(pair.label, verdict.decision)] += 1
        wrong = (pair.label == "contradiction") != (verdict.decision is Decision.UPDATE) or (
            pair.label != "paraphrase" and verdict.decision is Decision.DUPLICATE
        )
        if wrong:
            result.errors.append(
                f"{pair.label}: {pair.old!r} -> {pair.new!r}: {verdict.decision.value} "
                f"({verdict.reason}; cosine {similarity:.2f})"
            )
    return result
