"""LiteLLMEmbedder against a fake OpenAI-compatible server at the HTTP boundary (respx).

The real LiteLLM and OpenAI SDK code runs; only the HTTP transport is replaced,
so any request to an unmocked address fails the test instead of leaving the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
import respx

from memory_core.embedding import Embedder, HashEmbedder, LiteLLMEmbedder
from memory_core.errors import ConfigError, ModelError, ValidationError

pytestmark = pytest.mark.slow

API_BASE = "http://llm.test/v1"
MODEL = "openai/text-embedding-3-small"
KEY = "sk-test-not-a-real-key"
DIM = 16


@pytest.fixture(autouse=True)
def _no_cost_map_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: the embedder sets this default too before importing LiteLLM."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(key, raising=False)


def raw_vector(text: str, dimension: int = DIM) -> list[float]:
    """What the fake provider returns for ``text``: deterministic, not unit length."""
    base = HashEmbedder(dimension).embed_batch([text])[0] * 3.0 + 0.5
    return [float(x) for x in base]


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return array / np.linalg.norm(array)


def embeddings_payload(texts: list[str], dimension: int = DIM) -> dict[str, object]:
    tokens = sum(len(t.split()) + 1 for t in texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": raw_vector(text, dimension)}
            for i, text in enumerate(texts)
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@dataclass
class FakeProvider:
    router: respx.MockRouter
    bodies: list[dict[str, object]] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        texts = body["input"]
        dimension = int(body.get("dimensions", DIM))
        return httpx.Response(200, json=embeddings_payload(texts, dimension))

    @property
    def inputs(self) -> list[list[str]]:
        return [list(body["input"]) for body in self.bodies]  # type: ignore[call-overload]


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        fake = FakeProvider(router)
        router.post(f"{API_BASE}/embeddings").mock(side_effect=fake.handle)
        yield fake


def make(**kwargs: object) -> LiteLLMEmbedder:
    # max_retries=0 would not help: LiteLLM 1.106 turns 0 into its default of 2
    # for OpenAI-compatible providers (BerriAI/litellm#7003).
    options: dict[str, object] = {"api_key": KEY, "api_base": API_BASE, "max_retries": 1}
    options.update(kwargs)
    return LiteLLMEmbedder(MODEL, **options)  # type: ignore[arg-type]


def test_sends_the_texts_and_returns_unit_rows_in_order(provider: FakeProvider) -> None:
    embedder = make(dimension=DIM)
    texts = ["I moved to Denver", "my invoice is wrong", "thanks!"]
    vectors = embedder.embed_batch(texts)

    assert provider.bodies == [
        {"model": "text-embedding-3-small", "input": texts, "dimensions": DIM}
    ]
    assert provider.headers[0]["authorization"] == f"Bearer {KEY}"
    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, unit(raw_vector(text)), atol=1e-6)


def test_is_an_embedder_with_a_provider_scoped_model_id() -> None:
    embedder = make(dimension=DIM)
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "litellm/openai/text-embedding-3-small"
    assert KEY not in repr(embedder)


def test_texts_over_batch_size_go_in_several_requests(provider: FakeProvider) -> None:
    embedder = make(dimension=DIM, batch_size=2)
    texts = ["one", "two", "three", "four", "five"]
    vectors = embedder.embed_batch(texts)
    assert provider.inputs == [["one", "two"], ["three", "four"], ["five"]]
    expected = np.stack([unit(raw_vector(t)) for t in texts])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_rows_follow_the_response_indexes(provider: FakeProvider) -> None:
    def shuffled(request: httpx.Request) -> httpx.Response:
        payload = embeddings_payload(json.loads(request.content)["input"])
        payload["data"] = list(reversed(payload["data"]))  # type: ignore[call-overload]
        return httpx.Response(200, json=payload)

    provider.router.post(f"{API_BASE}/embeddings").mock(side_effect=shuffled)
    vectors = make(dimension=DIM).embed_batch(["a b", "c d", "e f"])
    np.testing.assert_allclose(vectors[0], unit(raw_vector("a b")), atol=1e-6)
    np.testing.assert_allclose(vectors[2], unit(raw_vector("e f")), atol=1e-6)


def test_dimension_is_probed_lazily_once(provider: FakeProvider) -> None:
    embedder = make()
    assert provider.bodies == []  # constructing calls nothing
    assert embedder.dimension == DIM
    assert embedder.dimension == DIM
    assert provider.bodies == [{"model": "text-embedding-3-small", "input": ["dimension probe"]}]
    assert embedder.embed_batch(["hello"]).shape == (1, DIM)
    assert embedder.embed_batch([]).shape == (0, DIM)
    assert len(provider.bodies) == 2


def test_given_dimension_needs_no_probe_and_is_sent_to_the_provider(provider: FakeProvider) -> None:
    embedder = make(dimension=8)
    assert embedder.dimension == 8
    assert embedder.embed_batch([]).shape == (0, 8)
    assert provider.bodies == []
    assert embedder.embed_batch(["hello"]).shape == (1, 8)
    assert provider.bodies[0]["dimensions"] == 8


def test_a_vector_of_the_wrong_size_is_a_model_error(provider: FakeProvider) -> None:
    provider.router.post(f"{API_BASE}/embeddings").mock(
        return_value=httpx.Response(200, json=embeddings_payload(["hello"], dimension=5))
    )
    with pytest.raises(ModelError, match="returned 5 dimensions, expected 8"):
        make(dimension=8).embed_batch(["hello"])


def test_a_missing_vector_is_a_model_error(provider: FakeProvider) -> None:
    provider.router.post(f"{API_BASE}/embeddings").mock(
        return_value=httpx.Response(200, json=embeddings_payload(["only one"]))
    )
    with pytest.raises(ModelError, match="returned 1 vectors for 2 texts"):
        make(dimension=DIM).embed_batch(["one", "two"])


def test_rejected_key_is_a_model_error_with_the_provider_message(
    provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    provider.router.post(f"{API_BASE}/embeddings").mock(
        return_value=httpx.Response(
            401,
            json={
                "error": {
                    "message": "Incorrect API key provided: sk-test-***-key.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
    )
    with pytest.raises(ModelError, match="Incorrect API key provided"):
        make(dimension=DIM).embed_batch(["hello"])
    assert capsys.readouterr().out == ""  # LiteLLM's stdout banner is switched off


def test_server_error_is_a_model_error_after_the_retries(provider: FakeProvider) -> None:
    route = provider.router.post(f"{API_BASE}/embeddings").mock(
        return_value=httpx.Response(
            500,
            headers={"retry-after-ms": "1"},
            json={"error": {"message": "The server had an error", "type": "server_error"}},
        )
    )
    with pytest.raises(ModelError, match="The server had an error"):
        make(dimension=DIM, max_retries=1).embed_batch(["hello"])
    assert route.call_count == 2  # the first try and one retry


def test_transient_server_error_is_retried(provider: FakeProvider) -> None:
    route = provider.router.post(f"{API_BASE}/embeddings").mock(
        side_effect=[
            httpx.Response(
                503,
                headers={"retry-after-ms": "1"},
                json={"error": {"message": "overloaded", "type": "server_error"}},
            ),
            httpx.Response(200, json=embeddings_payload(["hello"])),
        ]
    )
    vectors = make(dimension=DIM, max_retries=1).embed_batch(["hello"])
    assert route.call_count == 2
    np.testing.assert_allclose(vectors[0], unit(raw_vector("hello")), atol=1e-6)


def test_unreachable_server_is_a_model_error(provider: FakeProvider) -> None:
    provider.router.post(f"{API_BASE}/embeddings").mock(
        side_effect=httpx.ConnectError("connection refused")
    )
    with pytest.raises(ModelError, match="text-embedding-3-small"):
        make(dimension=DIM).embed_batch(["hello"])


def test_missing_litellm_is_a_config_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # makes `import litellm` fail
    with pytest.raises(ConfigError, match=r"pip install 'conversation-memory\[llm\]'"):
        make(dimension=DIM).embed_batch(["hello"])


@pytest.mark.parametrize(
    "kwargs",
    [{"dimension": 0}, {"batch_size": 0}, {"timeout": 0}, {"max_retries": -1}],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        make(**kwargs)
    with pytest.raises(ConfigError):
        LiteLLMEmbedder("  ")


def test_bad_input_is_rejected_before_any_request(provider: FakeProvider) -> None:
    with pytest.raises(ValidationError):
        make(dimension=DIM).embed_batch("hello")
    assert provider.bodies == []


def test_importing_litellm_through_the_embedder_does_not_fetch_the_cost_map(
    tmp_path: Path,
) -> None:
    # A fresh interpreter without the variable: the embedder must set it before
    # LiteLLM's import, which otherwise downloads a price list from GitHub.
    code = textwrap.dedent(
        """
        import os
        from memory_core._litellm import import_litellm
        litellm = import_litellm("tests")
        from litellm.litellm_core_utils.get_model_cost_map import (
            get_model_cost_map_source_info,
        )
        info = get_model_cost_map_source_info()
        print(info["source"], info["url"], os.environ["LITELLM_LOCAL_MODEL_COST_MAP"])
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "LITELLM_LOCAL_MODEL_COST_MAP"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == "local None True"
    assert "model cost map" not in out.stderr


def test_a_call_on_the_main_thread_leaves_no_event_loop_behind(tmp_path: Path) -> None:
    # Regression: LiteLLM's timing hook calls asyncio.get_event_loop() after a
    # blocking call, which on the main thread creates and installs a loop that
    # is never closed; it later surfaced as "unclosed event loop" in other tests.
    code = textwrap.dedent(
        """
        import asyncio, gc, json, httpx, respx
        from memory_core.embedding import LiteLLMEmbedder

        payload = {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
        with respx.mock(assert_all_mocked=True) as router:
            router.post("http://llm.test/v1/embeddings").mock(
                return_value=httpx.Response(200, json=payload)
            )
            embedder = LiteLLMEmbedder(
                "openai/text-embedding-3-small", api_key="sk-test", api_base="http://llm.test/v1"
            )
            print(embedder.embed_batch(["hello"]).tolist())
        asyncio.set_event_loop(None)  # drops a leaked loop, if any...
        gc.collect()  # ...whose __del__ then reports it on stderr
        """
    )
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONWARNINGS="error")
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(tmp_path),
        env=env,
        timeout=120,
    )
    assert out.stdout.strip() == "[[0.6000000238418579, 0.800000011920929]]"
    assert "unclosed event loop" not in out.stderr
