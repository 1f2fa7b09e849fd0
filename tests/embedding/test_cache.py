"""CachedEmbedder around a real (hashing) embedder that records what it is asked."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from memory_core.embedding import CachedEmbedder, Embedder, HashEmbedder


class RecordingHashEmbedder(HashEmbedder):
    """A HashEmbedder that remembers every batch it embedded."""

    def __init__(self, dimension: int = 64) -> None:
        super().__init__(dimension)
        self.batches: list[list[str]] = []
        self._record_lock = threading.Lock()

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._record_lock:
            self.batches.append(list(texts))
        return super().embed_batch(texts)

    @property
    def embedded(self) -> list[str]:
        return [text for batch in self.batches for text in batch]


def test_wraps_the_protocol() -> None:
    inner = RecordingHashEmbedder()
    cached = CachedEmbedder(inner)
    assert isinstance(cached, Embedder)
    assert (cached.model_id, cached.dimension) == (inner.model_id, inner.dimension)
    assert cached.embed_batch([]).shape == (0, 64)
    assert inner.embedded == []


def test_repeated_texts_are_embedded_once() -> None:
    inner = RecordingHashEmbedder()
    cached = CachedEmbedder(inner)
    cached.embed_batch(["hello", "thanks", "hello"])
    assert inner.batches == [["hello", "thanks"]]
    cached.embed_batch(["thanks", "bye", "hello"])
    assert inner.batches == [["hello", "thanks"], ["bye"]]
    cached.embed_batch(["bye", "hello"])
    assert len(inner.batches) == 2
    assert (cached.hits, cached.misses) == (4, 4)


def test_results_equal_the_uncached_embedder() -> None:
    texts = [
        "hi",
        "my card was charged twice",
        "hi",
        "",
        "refund please",
        "my card was charged twice",
    ]
    cached = CachedEmbedder(RecordingHashEmbedder())
    first = cached.embed_batch(texts)
    second = cached.embed_batch(texts[::-1])
    expected = HashEmbedder(64).embed_batch(texts)
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected[::-1])


def test_returned_rows_do_not_alias_the_cache() -> None:
    cached = CachedEmbedder(RecordingHashEmbedder())
    first = cached.embed_batch(["hello"])
    first[0] = 0.0
    np.testing.assert_array_equal(
        cached.embed_batch(["hello"]), HashEmbedder(64).embed_batch(["hello"])
    )


def test_least_recently_used_entries_are_evicted_at_the_bound() -> None:
    inner = RecordingHashEmbedder()
    cached = CachedEmbedder(inner, max_entries=2)
    cached.embed_batch(["a", "b"])
    cached.embed_batch(["a"])  # a is now the most recently used
    cached.embed_batch(["c"])  # evicts b
    assert inner.embedded == ["a", "b", "c"]
    cached.embed_batch(["a", "c"])
    assert inner.embedded == ["a", "b", "c"]
    cached.embed_batch(["b"])
    assert inner.embedded == ["a", "b", "c", "b"]
    cached.embed_batch(["a"])  # a was evicted by b
    assert inner.embedded == ["a", "b", "c", "b", "a"]


def test_a_batch_larger_than_the_bound_is_still_answered_in_full() -> None:
    inner = RecordingHashEmbedder()
    cached = CachedEmbedder(inner, max_entries=3)
    texts = [f"text {i}" for i in range(10)]
    np.testing.assert_array_equal(cached.embed_batch(texts), HashEmbedder(64).embed_batch(texts))
    cached.embed_batch(["text 9"])
    assert inner.embedded == texts  # the most recent entries survived


def test_threads_embedding_overlapping_texts_get_identical_results() -> None:
    inner = RecordingHashEmbedder()
    cached = CachedEmbedder(inner, max_entries=40)
    pool = [f"message number {i}" for i in range(60)]
    expected = dict(zip(pool, HashEmbedder(64).embed_batch(pool), strict=True))
    workers = 8
    barrier = threading.Barrier(workers)
    failures: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            barrier.wait(timeout=10)
            for round_ in range(30):
                texts = [pool[(seed * 7 + round_ * 3 + k) % len(pool)] for k in range(12)]
                vectors = cached.embed_batch(texts)
                for text, vector in zip(texts, vectors, strict=True):
                    np.testing.assert_array_equal(vector, expected[text])
        except BaseException as exc:  # collected and re-raised in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert len(cached._cache) <= 40
    assert cached.hits + cached.misses == workers * 30 * 12
