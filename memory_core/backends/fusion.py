"""Score fusion for hybrid search.

Relative score fusion, the same rule Weaviate uses by default: each result
list's scores are min-max normalised to [0, 1], then a record's fused score is
``alpha * vector + (1 - alpha) * keyword`` (a record missing from one list gets
0 there). Keeping the rule identical on every backend keeps rankings comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory_core.backends.base import Hit, R

__all__ = ["relative_score_fusion"]


def _normalised(hits: Sequence[Hit[R]]) -> dict[str, tuple[float, R]]:
    if not hits:
        return {}
    scores = [h.score for h in hits]
    low, high = min(scores), max(scores)
    span = high - low
    return {h.record.id: ((h.score - low) / span if span > 0 else 1.0, h.record) for h in hits}


def relative_score_fusion(
    keyword: Sequence[Hit[R]], vector: Sequence[Hit[R]], alpha: float, limit: int
) -> list[Hit[R]]:
    """Fuse two best-first hit lists into one of at most ``limit``, best first."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    kw = _normalised(keyword)
    vec = _normalised(vector)
    fused: dict[str, tuple[float, R]] = {}
    for rid, (score, record) in kw.items():
        fused[rid] = ((1.0 - alpha) * score, record)
    for rid, (score, record) in vec.items():
        prior = fused.get(rid, (0.0, record))[0]
        fused[rid] = (prior + alpha * score, record)
    ranked = sorted(fused.items(), key=lambda item: (-item[1][0], item[0]))
    return [Hit(record=record, score=score) for _, (score, record) in ranked[:limit]]
