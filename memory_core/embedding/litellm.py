"""Hosted embedding models through LiteLLM (OpenAI, Azure, Cohere, Voyage, Ollama...).

LiteLLM is the optional extra ``llm``, imported on first use and called off the
main thread, as :mod:`memory_core._litellm` explains.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from memory_core._litellm import import_litellm, off_thread
from memory_core.errors import ConfigError, ModelError, ValidationError

__all__ = ["LiteLLMEmbedder"]

_PROBE_TEXT = "dimension probe"


class LiteLLMEmbedder:
    """An embedding model behind an API, called through ``litellm.embedding``.

    Args:
        model: A LiteLLM model name with its provider, e.g.
            ``"openai/text-embedding-3-small"`` or ``"ollama/nomic-embed-text"``.
        dimension: The vector size. When given it is also sent to the provider
            as ``dimensions`` (text-embedding-3 models shorten their vectors to
            it). When omitted it is learnt by embedding one probe text the
            first time it is needed.
        api_key: The provider key; by default LiteLLM reads the provider's
            usual environment variable (``OPENAI_API_KEY``...).
        api_base: The endpoint, for proxies and self-hosted OpenAI-compatible servers.
        batch_size: At most this many texts per request.
        timeout: Seconds per request.
        max_retries: Retries per request on connection errors, 429 and 5xx (done
            by the provider SDK). Note: LiteLLM 1.106 turns ``0`` into its default
            of 2 for OpenAI-compatible providers (BerriAI/litellm#7003).

    Rows are L2-normalised here whatever the provider returns. Every failure
    of the provider (authentication, rate limit, timeout, bad response)
    raises :class:`~memory_core.errors.ModelError` with the provider's message.
    """

    def __init__(
        self,
        model: str,
        *,
        dimension: int | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        batch_size: int = 128,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        if not model or not model.strip():
            raise ConfigError(
                "LiteLLMEmbedder needs a model name, e.g. 'openai/text-embedding-3-small'"
            )
        if dimension is not None and dimension < 1:
            raise ConfigError(f"dimension must be at least 1, got {dimension}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if not timeout > 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must not be negative, got {max_retries}")
        self.model = model
        self.model_id = f"litellm/{model}"
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key
        self._api_base = api_base
        self._requested_dimension = dimension
        self._dimension = dimension
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return (
            f"LiteLLMEmbedder(model={self.model!r}, dimension={self._dimension}, "
            f"api_base={self._api_base!r}, batch_size={self.batch_size})"
        )

    @property
    def dimension(self) -> int:
        """The vector size; embeds a probe text through the provider if not known yet."""
        if self._dimension is None:
            with self._lock:
                if self._dimension is None:
                    self._dimension = int(self._request([_PROBE_TEXT]).shape[1])
        return self._dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        if value < 1:
            raise ConfigError(f"dimension must be at least 1, got {value}")
        self._dimension = value

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str):
            raise ValidationError("embed_batch takes a sequence of texts, not a single str")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValidationError(
                    f"embed_batch takes strings; item {i} is a {type(text).__name__}"
                )
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        chunks = [
            self._request(list(texts[start : start + self.batch_size]))
            for start in range(0, len(texts), self.batch_size)
        ]
        return np.concatenate(chunks, axis=0)

    def _request(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One ``litellm.embedding`` call: unit rows, in the order of ``texts``."""
        litellm = import_litellm("the LiteLLM embedder (hosted embedding models)")
        import openai  # a dependency of LiteLLM; the root of every error it raises

        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": texts,
            "api_key": self._api_key,
            "api_base": self._api_base,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }
        if self._requested_dimension is not None:
            kwargs["dimensions"] = self._requested_dimension
            kwargs["drop_params"] = True  # providers without the parameter ignore it
        try:
            response = off_thread(lambda: litellm.embedding(**kwargs))
        except openai.OpenAIError as exc:
            raise ModelError(f"embedding model {self.model!r} failed: {exc}") from exc
        return self._parse(response, len(texts))

    def _parse(self, response: Any, expected_rows: int) -> npt.NDArray[np.float32]:
        items = list(getattr(response, "data", None) or [])
        if len(items) != expected_rows:
            raise ModelError(
                f"embedding model {self.model!r} returned {len(items)} vectors "
                f"for {expected_rows} texts"
            )
        rows: list[tuple[int, npt.NDArray[np.float32]]] = []
        for position, item in enumerate(items):
            index = _field(item, "index")
            raw = _field(item, "embedding")
            if isinstance(raw, str):  # encoding_format="base64"
                vec = np.frombuffer(base64.b64decode(raw), dtype="<f4").astype(np.float32)
            else:
                vec = np.asarray(raw, dtype=np.float32)
            rows.append((int(index) if index is not None else position, vec))
        rows.sort(key=lambda pair: pair[0])
        if [index for index, _ in rows] != list(range(expected_rows)):
            raise ModelError(f"embedding model {self.model!r} returned inconsistent indexes")
        sizes = {vec.shape for _, vec in rows}
        expected = self._dimension
        if len(sizes) != 1 or (shape := sizes.pop()) == (0,) or len(shape) != 1:
            raise ModelError(f"embedding model {self.model!r} returned malformed vectors")
        if expected is not None and shape[0] != expected:
            raise ModelError(
                f"embedding model {self.model!r} returned {shape[0]} dimensions, "
                f"expected {expected}; set dimension= to the model's size"
            )
        matrix = np.stack([vec for _, vec in rows])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.all(np.isfinite(matrix)) or np.any(norms == 0):
            raise ModelError(f"embedding model {self.model!r} returned a zero or non-finite vector")
        result: npt.NDArray[np.float32] = (matrix / norms).astype(np.float32)
        return result


def _field(item: Any, name: str) -> Any:
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)
