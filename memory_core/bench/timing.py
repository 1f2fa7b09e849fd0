"""What every benchmark here measures with: latency percentiles of timed calls,
the exact numpy top-k that vector search is compared with, and a description
of the machine.

Timings on a shared machine are only ever compared with a baseline measured
in the same run, never with a fixed number.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from memory_core.embedding.base import CachedEmbedder, Embedder

__all__ = [
    "Latency",
    "Progress",
    "cpu_seconds",
    "machine",
    "model_alone",
    "numpy_topk",
    "peak_rss_mb",
    "seconds",
    "ticker",
    "timed",
]

A = TypeVar("A")

Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: how a benchmark reports how far it is."""


def _percentile_ms(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of sorted seconds, in milliseconds."""
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index] * 1000.0, 3)


@dataclass(frozen=True)
class Latency:
    """p50 / p95 / p99 of a set of timed calls, in milliseconds."""

    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        """The percentiles of ``seconds`` (one duration per call; at least one)."""
        ordered = sorted(seconds)
        return cls(*(_percentile_ms(ordered, q) for q in (50, 95, 99)))

    def text(self, digits: int = 2, *, p99: bool = True) -> str:
        """``"p50 / p95 / p99"`` for a table (``p99=False``: the first two)."""
        values = (self.p50_ms, self.p95_ms, self.p99_ms) if p99 else (self.p50_ms, self.p95_ms)
        return " / ".join(f"{v:.{digits}f}" for v in values)


def seconds(fn: Callable[[A], object], args: Iterable[A], *, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of ``fn(arg)`` for each of ``args``, in order; the first
    ``warmup`` calls run untimed (they fill caches). Producing an argument is not timed."""
    out: list[float] = []
    for i, arg in enumerate(args):
        start = time.perf_counter()
        fn(arg)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            out.append(elapsed)
    return out


def cpu_seconds(fn: Callable[[A], object], args: Iterable[A]) -> list[float]:
    """Process CPU seconds (every thread's) of ``fn(arg)`` for each of ``args``: steadier
    than wall-clock time on a shared machine."""
    out: list[float] = []
    for arg in args:
        start = time.process_time()
        fn(arg)
        out.append(time.process_time() - start)
    return out


def timed(fn: Callable[[A], object], args: Iterable[A], *, warmup: int = 0) -> Latency:
    """The latency of ``fn`` over ``args`` (see :func:`seconds`)."""
    return Latency.of(seconds(fn, args, warmup=warmup))


def numpy_topk(
    matrix: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.intp]:
    """Rows of ``matrix`` with the ``k`` highest dot products with ``query``, best
    first: the exact in-memory search that vector search is compared with."""
    scores = matrix @ query
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top])]


def model_alone(embedder: Embedder) -> Embedder:
    """The model behind ``embedder``'s cache: the embedding baseline, which must
    not be answered from the cache."""
    return embedder.inner if isinstance(embedder, CachedEmbedder) else embedder


def ticker(progress: Progress | None, label: str, total: int) -> Callable[[int], None]:
    """``tick(k)``: ``k`` more of ``total`` done, reported to ``progress`` as ``label``."""
    done = 0

    def tick(k: int) -> None:
        nonlocal done
        done += k
        if progress:
            progress(label, done, total)

    return tick


def machine() -> str:
    """CPU architecture, core count and Python version, for the report's header."""
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
