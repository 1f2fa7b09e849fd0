"""The LoCoMo eval's progress moves during ingest (per session, so the bar has an
ETA), and counts every turn and question exactly once, on both levels."""

from __future__ import annotations

from pathlib import Path

from memory_core.eval.locomo import load_locomo
from memory_core.eval.run import EvalConfig, evaluate_locomo, evaluate_locomo_levels
from tests.eval.test_loaders import _sample, _write


def test_locomo_progress_ticks_per_session_and_adds_up(tmp_path: Path) -> None:
    path = _write(tmp_path, [_sample()])
    [sample] = load_locomo(path)
    ticks: list[int] = []
    evaluate_locomo(path, EvalConfig(embedder="hash"), progress=ticks.append)
    sessions = [len(s.turns) for s in sample.sessions if s.turns]
    assert ticks[: len(sessions)] == sessions  # one tick per session ingested
    assert sum(ticks) == sample.turn_count + len(sample.questions)

    ticks.clear()
    evaluate_locomo_levels(path, EvalConfig(embedder="hash"), progress=ticks.append)
    assert len(ticks) > len(sample.questions) + 1  # ingest ticks too, not one per sample
    assert sum(ticks) == sample.turn_count + len(sample.questions)
