"""Offline LLM extraction from a local GGUF model (``llm_gguf``), for real: llama.cpp
(llama-cpp-python) loads a GGUF file written by these tests (tests/extraction/tiny_gguf.py:
random weights, so it extracts nothing sensible) and generates under the grammar of
the reply's schema; extraction runs as a background job on the store's worker thread.

What is checked: the pipeline runs end to end and every reply is a JSON object of the
asked shape (so the conversation is extracted, with whatever valid items the noise
holds), the job completes, a re-run skips what is done, a cancelled job leaves its
conversations for the next, tenants stay apart, and each misconfiguration is a typed
error saying what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memory_core.backends.base import Collection
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import ConfigError
from memory_core.extraction.gguf import GGUFClient, GGUFExtractor, bounded_schema
from memory_core.extraction.prompts import (
    ExtractionReply,
    LLMObservation,
    LLMSummary,
    LLMTrait,
    ReconcileItem,
    ReconcileReply,
)
from memory_core.memory import Memory
from memory_core.models import ConversationIn, ExtractionStatus, MessageIn, Role

try:
    import llama_cpp  # noqa: F401
except ImportError:
    if os.environ.get("CONVMEM_REQUIRE_LLAMA", "") not in ("", "0"):
        raise  # CI installs the wheel .ci/llama.sh builds: a missing llama.cpp is a failure there
    pytest.skip(
        'llama-cpp-python is not installed (pip install --find-links "$(bash .ci/llama.sh)" '
        "llama-cpp-python; see README: Running the tests)",
        allow_module_level=True,
    )
pytest.importorskip("gguf", reason="the gguf package (writes the test model) is not installed")

from tests.extraction.tiny_gguf import write_tiny_model  # noqa: E402

pytestmark = pytest.mark.slow

T0 = datetime(2024, 5, 8, 14, 0, tzinfo=UTC)
CUSTOMER = "phone:+16175550142"
WAIT = 600.0  # seconds: a bound for a stuck worker, never reached by a working one


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def open_memory(tmp_path: Path, model: Path, **settings: Any) -> Memory:
    return Memory(
        SQLiteBackend(tmp_path / "memory.db"),
        HashEmbedder(),
        settings=load_settings(data_dir=tmp_path, llm_gguf=model, **settings),
    )


@pytest.fixture
def gguf_memory(tmp_path: Path, model_file: Path) -> Iterator[Memory]:
    with open_memory(tmp_path, model_file) as memory:
        yield memory


def conversation(memory: Memory, texts: list[str], *, day: int = 0, ended: bool = True) -> str:
    """Ingest a conversation of CUSTOMER (imported ended: history, left to the back-fill)."""
    start = T0 + timedelta(days=day)
    result = memory.ingest(
        ConversationIn(
            channel="chat",
            customer=[CUSTOMER],
            messages=[
                MessageIn(
                    role=Role.CUSTOMER if i % 2 == 0 else Role.HUMAN_AGENT,
                    text=text,
                    ts=start + timedelta(minutes=i),
                )
                for i, text in enumerate(texts)
            ],
            ended=ended,
        )
    )
    return result.conversation.id


TALK = [
    "Hi, I moved to Denver last month and I prefer SMS over calls.",
    "Thanks, I've updated your address. Anything else?",
    "Yes, I'm on the Gold plan and want paper invoices stopped.",
]


# -- the grammar ---------------------------------------------------------------------


def test_every_string_and_list_of_the_reply_grammar_is_bounded() -> None:
    """A reply generated under the grammar always ends: no unbounded string or list,
    and no object takes keys other than its own."""

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for model in (ExtractionReply, ReconcileReply):
        nodes = list(walk(bounded_schema(model)))
        strings = [n for n in nodes if n.get("type") == "string" and "enum" not in n]
        assert strings and all("maxLength" in n for n in strings)
        arrays = [n for n in nodes if n.get("type") == "array"]
        assert arrays and all("maxItems" in n for n in arrays)
        objects = [n for n in nodes if "properties" in n and isinstance(n["properties"], dict)]
        assert all(n["additionalProperties"] is False for n in objects)
        assert all(n.get("items") != {} for n in arrays)  # no list of anything
    # the replies are generated in their items' shapes (not as lists of anything), with
    # exactly the keys the items are then validated with
    items = bounded_schema(ExtractionReply)["$defs"]
    assert set(items["_Observation"]["properties"]) == set(LLMObservation.model_fields)
    assert set(items["_Trait"]["properties"]) == set(LLMTrait.model_fields)
    assert set(items["_Summary"]["properties"]) == set(LLMSummary.model_fields)
    decisions = bounded_schema(ReconcileReply)["$defs"]
    assert set(decisions["_Decision"]["properties"]) == set(ReconcileItem.model_fields)


def test_the_client_returns_a_validated_reply_from_a_real_model(model_file: Path) -> None:
    client = GGUFClient(model_file)
    prompt = [
        {"role": "system", "content": "Reply with a JSON object."},
        {"role": "user", "content": "The customer said: I prefer SMS."},
    ]
    reply, usage = client.complete_json(prompt, ExtractionReply)
    assert isinstance(reply, ExtractionReply)
    assert usage.calls >= 1 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost_usd == 0.0
    decisions, _ = client.complete_json(prompt, ReconcileReply)
    assert isinstance(decisions, ReconcileReply)


# -- extraction as a background job --------------------------------------------------


def test_ending_a_conversation_queues_it_and_the_background_job_extracts_it(
    gguf_memory: Memory,
) -> None:
    extractor = gguf_memory.observations.extractor
    assert isinstance(extractor, GGUFExtractor)
    assert extractor.name == "gguf/tiny.gguf"
    cid = conversation(gguf_memory, TALK, ended=False)
    gguf_memory.conversations.end(cid)  # queued, not extracted in this call
    assert gguf_memory.observations.wait_background(WAIT)
    status = gguf_memory.observations.extraction_status(cid)
    assert status is not None
    assert status.status is ExtractionStatus.DONE, status.error
    assert status.extractor == "gguf/tiny.gguf"
    assert status.usage.calls >= 1 and status.usage.completion_tokens > 0
    # whatever the noise held, nothing unchecked was stored: every observation cites
    # a customer message of this conversation
    customer_messages = {
        m.id for m in gguf_memory.conversations.list_messages(cid) if m.role is Role.CUSTOMER
    }
    for observation in gguf_memory.observations.list(CUSTOMER):
        assert set(observation.evidence) <= customer_messages


def test_a_background_job_completes_and_a_rerun_skips_what_is_done(
    tmp_path: Path, model_file: Path
) -> None:
    with open_memory(tmp_path, model_file, auto_extract=False) as memory:
        first = [conversation(memory, TALK, day=d) for d in range(2)]
        job = memory.observations.extract_in_background()
        assert job.total == 2
        assert job.wait(WAIT)
        assert job.state == "finished", job.error
        assert job.report is not None and job.report.extracted == 2
        assert job.done == 2
        for cid in first:
            status = memory.observations.extraction_status(cid)
            assert status is not None and status.status is ExtractionStatus.DONE

        later = conversation(memory, TALK, day=5)
        again = memory.observations.extract_in_background()
        assert again.conversation_ids == (later,)  # the two done ones are skipped
        assert again.wait(WAIT) and again.state == "finished"

        nothing = memory.observations.extract_in_background()
        assert nothing.total == 0
        assert nothing.wait(WAIT) and nothing.state == "finished"


def test_a_cancelled_job_leaves_its_conversations_for_the_next(
    tmp_path: Path, model_file: Path
) -> None:
    with open_memory(tmp_path, model_file, auto_extract=False) as memory:
        ahead = conversation(memory, TALK, day=0)
        running = memory.observations.extract_in_background()  # the worker's first job
        behind = conversation(memory, TALK, day=1)
        queued = memory.observations.extract_in_background()  # waits behind the first
        queued.cancel()
        assert queued.wait(WAIT) and running.wait(WAIT)
        assert running.state == "finished"
        assert queued.state == "cancelled"
        assert memory.observations.extraction_status(ahead) is not None
        # what the cancelled job held is picked up by the next one
        resumed = memory.observations.extract_in_background()
        assert resumed.conversation_ids == (behind,)
        assert resumed.wait(WAIT) and resumed.state == "finished"


def test_closing_the_store_cancels_queued_jobs(tmp_path: Path, model_file: Path) -> None:
    memory = open_memory(tmp_path, model_file, auto_extract=False)
    for day in range(3):
        conversation(memory, TALK, day=day)
    jobs = [memory.observations.extract_in_background() for _ in range(3)]
    memory.close()  # waits for the conversation in progress, cancels the rest
    assert all(job.wait(0) for job in jobs)
    assert jobs[-1].state == "cancelled"
    assert all(job.state in ("finished", "cancelled") for job in jobs)


def test_a_tenants_background_job_reads_and_writes_only_that_tenant(
    tmp_path: Path, model_file: Path
) -> None:
    with open_memory(tmp_path, model_file, auto_extract=False) as memory:
        memory.tenants.add("acme")
        memory.tenants.add("globex")
        acme, globex = memory.tenant("acme"), memory.tenant("globex")
        theirs = conversation(globex, TALK)
        mine = conversation(acme, TALK)
        job = acme.observations.extract_in_background()
        assert job.conversation_ids == (mine,)
        assert job.wait(WAIT) and job.state == "finished"
        assert globex.observations.extraction_status(theirs) is None
        assert memory.backend.count("globex", Collection.EXTRACTIONS) == 0
        assert memory.backend.count("globex", Collection.OBSERVATIONS) == 0


# -- typed errors ----------------------------------------------------------------------


def test_a_missing_model_file_is_a_config_error_saying_what_to_give(tmp_path: Path) -> None:
    memory = open_memory(tmp_path, tmp_path / "nowhere.gguf")
    with memory, pytest.raises(ConfigError, match=r"no file at .*nowhere\.gguf.*GGUF model file"):
        memory.observations.extractor  # noqa: B018


def test_a_file_that_is_not_gguf_is_a_config_error(tmp_path: Path) -> None:
    text = tmp_path / "model.gguf"
    text.write_text("this is not a model\n")
    with pytest.raises(ConfigError, match="not a GGUF model file"):
        GGUFClient(text)


def test_a_damaged_model_file_fails_the_job_with_a_config_error_and_writes_nothing(
    tmp_path: Path, model_file: Path
) -> None:
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(model_file.read_bytes()[:3000])  # the header, cut short
    with open_memory(tmp_path, damaged, auto_extract=False) as memory:
        cid = conversation(memory, TALK)
        job = memory.observations.extract_in_background()
        assert job.wait(WAIT)
        assert job.state == "failed"
        assert job.error is not None and "could not load" in job.error
        assert "download it again" in job.error
        assert memory.observations.extraction_status(cid) is None  # left for a fixed model
        with pytest.raises(ConfigError, match="could not load"):
            memory.observations.extract(cid)


def test_llm_model_and_llm_gguf_together_are_a_config_error(
    tmp_path: Path, model_file: Path
) -> None:
    memory = open_memory(tmp_path, model_file, llm_model="openai/gpt-4o-mini")
    with memory, pytest.raises(ConfigError, match="not both"):
        memory.observations.extractor  # noqa: B018


def test_without_llama_cpp_the_error_names_the_extra(tmp_path: Path, model_file: Path) -> None:
    code = (
        "import sys; sys.modules['llama_cpp'] = None\n"
        "from memory_core.errors import ConfigError\n"
        "from memory_core.extraction.gguf import GGUFClient\n"
        "try:\n"
        f"    GGUFClient({str(model_file)!r})\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "pip install 'conversation-memory[gguf]'" in done.stdout


# -- the same job in the foreground: `convmem extract --all` ------------------------------


def test_convmem_extract_all_runs_the_local_model_and_resumes(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from memory_core.cli.app import app
    from tests.extraction.test_cli import conversations

    runner = CliRunner()
    common = ["--db", str(tmp_path / "m.db"), "--embedder", "hash"]
    done = runner.invoke(app, ["ingest", str(conversations(tmp_path / "c.jsonl")), *common])
    assert done.exit_code == 0, done.output
    monkeypatch.setenv("CONVMEM_LLM_GGUF", str(model_file))
    first = runner.invoke(app, ["extract", "--all", *common, "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["extracted"], report["pending"], report["messages"]) == (2, 0, 4)
    assert report["usage"]["calls"] >= 2
    again = runner.invoke(app, ["extract", "--all", *common, "--json"], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["extracted"] == 0  # nothing left to do
