"""Size limits and text hygiene, one validation layer for every field
(``Settings.limits``, :mod:`memory_core.validation`, docs/limits.md).

Each over-limit or unclean input raises a typed ValidationError naming the field
and the setting, and nothing is written; a value at the limit is accepted; the
limits are configurable from arguments, the environment and the TOML file; the
MCP tools and the CLI go through the same checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from typer.testing import CliRunner

from convmem_mcp.server import create_server
from memory_core.backends.base import Collection
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.cli.app import app
from memory_core.config import Limits, load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import MemoryCoreError, ValidationError
from memory_core.knowledge.types import DocumentIn
from memory_core.memory import Memory
from memory_core.recall import RecallOptions
from tests.mcp_server.conftest import error_text

PHONE = "phone:+16175550142"
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)

#: Small limits, so that "one over" is cheap to build.
SMALL = Limits(
    message_chars=50,
    messages_per_call=3,
    subject_chars=10,
    name_chars=8,
    identifier_chars=40,
    trait_key_chars=6,
    trait_value_bytes=20,
    source_chars=5,
    metadata_bytes=40,
    metadata_depth=3,
    observation_chars=30,
    query_chars=12,
    source_bytes=100,
    title_chars=10,
    uri_chars=20,
    description_chars=15,
    list_items=2,
)


def counts(memory: Memory) -> dict[tuple[str, str], int]:
    """Records per tenant and collection: what a rejected call must leave as it was."""
    backend = memory.backend
    return {
        (tenant, collection.value): backend.count(tenant, collection)
        for tenant in backend.list_tenants()
        for collection in Collection
    }


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Memory]:
    """A Memory with :data:`SMALL` limits, holding one customer, conversation, trait,
    knowledge base and source."""
    settings = load_settings(data_dir=tmp_path).model_copy(update={"limits": SMALL})
    mem = Memory(SQLiteBackend(tmp_path / "small.db"), HashEmbedder(), settings=settings)
    mem.ingest(
        {
            "id": "c1",
            "channel": "sms",
            "customer": [PHONE],
            "ended": False,
            "messages": [{"id": "m1", "role": "customer", "text": "my wifi drops"}],
        }
    )
    mem.traits.set(PHONE, "plan", "gold")
    mem.knowledge.bases.add("kb")
    mem.knowledge.sources.add("kb", content="Returns are free.", uri="doc:r")
    yield mem
    mem.close()


def _conv(**fields: Any) -> dict[str, Any]:
    message = {"role": "customer", "text": "hello", **fields.pop("message", {})}
    return {"channel": "sms", "customer": [PHONE], "messages": [message], **fields}


# Each case: (what, the call at the limit, the call one over it, the setting named).
Call = Callable[[Memory], object]
LIMIT_CASES: list[tuple[str, Call, Call, str]] = [
    (
        "message text",
        lambda m: m.ingest(_conv(message={"text": "x" * 50})),
        lambda m: m.ingest(_conv(message={"text": "x" * 51})),
        "message_chars",
    ),
    (
        "message text (add_message)",
        lambda m: m.conversations.add_message("c1", "customer", "x" * 50),
        lambda m: m.conversations.add_message("c1", "customer", "x" * 51),
        "message_chars",
    ),
    (
        "messages per call",
        lambda m: m.conversations.add_messages("c1", [{"role": "customer", "text": "a"}] * 3),
        lambda m: m.conversations.add_messages("c1", [{"role": "customer", "text": "a"}] * 4),
        "messages_per_call",
    ),
    (
        "subject",
        lambda m: m.conversations.add("sms", [PHONE], subject="s" * 10),
        lambda m: m.conversations.add("sms", [PHONE], subject="s" * 11),
        "subject_chars",
    ),
    (
        "author",
        lambda m: m.ingest(_conv(message={"author": "a" * 8})),
        lambda m: m.ingest(_conv(message={"author": "a" * 9})),
        "name_chars",
    ),
    (
        "display name",
        lambda m: m.profiles.add([PHONE], display_name="d" * 8),
        lambda m: m.profiles.add([PHONE], display_name="d" * 9),
        "name_chars",
    ),
    (
        "identifier",
        lambda m: m.profiles.add(["chat_id:" + "i" * 40]),
        lambda m: m.profiles.add(["chat_id:" + "i" * 41]),
        "identifier_chars",
    ),
    (
        "identifiers per call",
        lambda m: m.profiles.add(["chat_id:a", "chat_id:b"]),
        lambda m: m.profiles.add(["chat_id:a", "chat_id:b", "chat_id:c"]),
        "list_items",
    ),
    (
        "trait key",
        lambda m: m.traits.set(PHONE, "k" * 6, "v"),
        lambda m: m.traits.set(PHONE, "k" * 7, "v"),
        "trait_key_chars",
    ),
    (
        "trait value",
        lambda m: m.traits.set(PHONE, "plan", "v" * 18),  # 20 bytes as JSON, quotes included
        lambda m: m.traits.set(PHONE, "plan", "v" * 19),
        "trait_value_bytes",
    ),
    (
        "trait source",
        lambda m: m.traits.set(PHONE, "plan", "v", source="s" * 5),
        lambda m: m.traits.set(PHONE, "plan", "v", source="s" * 6),
        "source_chars",
    ),
    (
        "conversation metadata size",
        lambda m: m.ingest(_conv(metadata={"k": "v" * 32})),  # {"k":"vvv..."} = 40 bytes
        lambda m: m.ingest(_conv(metadata={"k": "v" * 33})),
        "metadata_bytes",
    ),
    (
        "message metadata size",
        lambda m: m.ingest(_conv(message={"metadata": {"k": "v" * 32}})),
        lambda m: m.ingest(_conv(message={"metadata": {"k": "v" * 33}})),
        "metadata_bytes",
    ),
    (
        "metadata depth",
        lambda m: m.ingest(_conv(metadata={"a": {"b": {"c": 1}}})),
        lambda m: m.ingest(_conv(metadata={"a": {"b": {"c": {"d": 1}}}})),
        "metadata_depth",
    ),
    (
        "observation text",
        lambda m: m.observations.add(PHONE, "o" * 30),
        lambda m: m.observations.add(PHONE, "o" * 31),
        "observation_chars",
    ),
    (
        "recall query",
        lambda m: m.recall(PHONE, "q" * 12),
        lambda m: m.recall(PHONE, "q" * 13),
        "query_chars",
    ),
    (
        "knowledge query",
        lambda m: m.knowledge.search("q" * 12),
        lambda m: m.knowledge.search("q" * 13),
        "query_chars",
    ),
    (
        "knowledge content",
        lambda m: m.knowledge.sources.add("kb", content="c" * 100, uri="doc:c"),
        lambda m: m.knowledge.sources.add("kb", content="c" * 101, uri="doc:c"),
        "source_bytes",
    ),
    (
        "knowledge content on refresh",
        lambda m: m.knowledge.sources.refresh(m.knowledge.sources.list()[0].id, content="c" * 100),
        lambda m: m.knowledge.sources.refresh(m.knowledge.sources.list()[0].id, content="c" * 101),
        "source_bytes",
    ),
    (
        "knowledge documents",
        lambda m: m.knowledge.sources.add("kb", documents=[DocumentIn(text="d" * 100)], title="t"),
        lambda m: m.knowledge.sources.add("kb", documents=[DocumentIn(text="d" * 101)], title="t"),
        "source_bytes",
    ),
    (
        "source title",
        lambda m: m.knowledge.sources.add("kb", content="x", uri="doc:t", title="t" * 10),
        lambda m: m.knowledge.sources.add("kb", content="x", uri="doc:t", title="t" * 11),
        "title_chars",
    ),
    (
        "source uri",
        lambda m: m.knowledge.sources.add("kb", content="x", uri="doc:" + "u" * 16),
        lambda m: m.knowledge.sources.add("kb", content="x", uri="doc:" + "u" * 17),
        "uri_chars",
    ),
    (
        "knowledge base description",
        lambda m: m.knowledge.bases.add("kb2", description="d" * 15),
        lambda m: m.knowledge.bases.add("kb2", description="d" * 16),
        "description_chars",
    ),
    (
        "tags",
        lambda m: m.knowledge.search("returns", tags=["a", "b"]),
        lambda m: m.knowledge.search("returns", tags=["a", "b", "c"]),
        "list_items",
    ),
]


@pytest.mark.parametrize(
    ("what", "at_limit", "over_limit", "setting"),
    LIMIT_CASES,
    ids=[case[0] for case in LIMIT_CASES],
)
def test_every_field_has_a_limit_and_over_it_nothing_is_written(
    small: Memory, what: str, at_limit: Call, over_limit: Call, setting: str
) -> None:
    before = counts(small)
    with pytest.raises(ValidationError) as info:
        over_limit(small)
    assert counts(small) == before, f"{what}: a rejected call wrote something"
    message = str(info.value)
    assert setting in message, message  # names the setting to raise it with
    at_limit(small)  # the limit itself is allowed


def test_defaults_refuse_a_ten_megabyte_subject_and_metadata(memory: Memory) -> None:
    before = counts(memory)
    with pytest.raises(ValidationError, match="subject has 10,000,000 characters"):
        memory.conversations.add("sms", [PHONE], subject="s" * 10_000_000)
    with pytest.raises(ValidationError, match="metadata is more than 16,384 bytes"):
        memory.ingest(_conv(metadata={"blob": "b" * 4_000_000}))
    with pytest.raises(ValidationError, match="more than the limit of 100,000"):
        memory.ingest(_conv(message={"text": "t" * 100_001}))
    assert counts(memory) == before
    limits = memory.settings.limits
    assert (limits.message_chars, limits.subject_chars, limits.metadata_depth) == (
        100_000,
        1_000,
        8,
    )


def _deep(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def _deep_list(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.ingest(_conv(metadata=_deep(5000))),
        lambda m: m.ingest(_conv(message={"metadata": _deep(5000)})),
        lambda m: m.conversations.add("chat", [PHONE], metadata=_deep(5000)),  # type: ignore[arg-type]
        lambda m: m.traits.set(PHONE, "plan", _deep_list(5000)),
        lambda m: m.traits.set(PHONE, "plan", _deep(5000)),
    ],
    ids=["metadata", "message metadata", "add metadata", "trait list", "trait dict"],
)
def test_deep_nesting_is_refused_before_any_recursion(memory: Memory, call: Call) -> None:
    memory.profiles.add([PHONE])
    before = counts(memory)
    with pytest.raises(ValidationError, match="nested more than 8 deep"):
        call(memory)
    assert counts(memory) == before


NUL, SURROGATE = "a\x00b", "a\ud800b"

#: Every text field a caller gives, as a call taking the bad text.
TEXT_FIELDS: dict[str, Callable[[Memory, str], object]] = {
    "message text": lambda m, s: m.ingest(_conv(message={"text": s})),
    "subject": lambda m, s: m.conversations.add("sms", [PHONE], subject=s),
    "author": lambda m, s: m.ingest(_conv(message={"author": s})),
    "message id": lambda m, s: m.ingest(_conv(message={"id": s})),
    "conversation id": lambda m, s: m.ingest(_conv(id=s)),
    "metadata value": lambda m, s: m.ingest(_conv(metadata={"k": s})),
    "metadata key": lambda m, s: m.ingest(_conv(metadata={s: 1})),
    "message metadata": lambda m, s: m.ingest(_conv(message={"metadata": {"k": [s]}})),
    "identifier": lambda m, s: m.profiles.add([f"chat_id:{s}"]),
    "identifier (ingest)": lambda m, s: m.ingest({**_conv(), "customer": [f"email:{s}@x.com"]}),
    "profile ref": lambda m, s: m.profiles.get(f"prf_{s}"),
    "display name": lambda m, s: m.profiles.add([PHONE], display_name=s),
    "trait value": lambda m, s: m.traits.set(PHONE, "plan", s),
    "trait source": lambda m, s: m.traits.set(PHONE, "plan", "gold", source=s),
    "observation": lambda m, s: m.observations.add(PHONE, f"prefers {s}"),
    "observation value": lambda m, s: m.observations.add(PHONE, "x", trait_key="tier", value=s),
    "recall query": lambda m, s: m.recall(PHONE, s),
    "knowledge query": lambda m, s: m.knowledge.search(s),
    "knowledge content": lambda m, s: m.knowledge.sources.add("kb", content=s),
    "document text": lambda m, s: m.knowledge.sources.add(
        "kb", documents=[DocumentIn(text=s)], title="t"
    ),
    "source title": lambda m, s: m.knowledge.sources.add("kb", content="x", title=s),
    "merge reason": lambda m, s: m.profiles.merge(PHONE, PHONE, reason=s),
    "redact": lambda m, s: m.governance.redact(s),
    "api key name": lambda m, s: m.governance.keys.add("read", s),
    "knowledge base": lambda m, s: m.knowledge.bases.get(s),
}


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["NUL", "lone surrogate"])
@pytest.mark.parametrize("field", sorted(TEXT_FIELDS))
def test_nul_and_lone_surrogates_are_refused_in_every_text_field(
    memory: Memory, field: str, bad: str
) -> None:
    memory.profiles.add([PHONE])
    memory.knowledge.bases.add("kb")
    before = counts(memory)
    with pytest.raises(ValidationError) as info:
        TEXT_FIELDS[field](memory, bad)
    assert counts(memory) == before
    assert any(word in str(info.value) for word in ("NUL", "Unicode", "control", "id ")), info.value


# -- configuration ---------------------------------------------------------------------


def test_limits_are_configured_from_the_environment_and_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().limits == Limits()
    monkeypatch.setenv("CONVMEM_LIMITS__SUBJECT_CHARS", "5")
    assert load_settings().limits.subject_chars == 5
    monkeypatch.delenv("CONVMEM_LIMITS__SUBJECT_CHARS")
    toml = tmp_path / "convmem.toml"
    toml.write_text("[limits]\nsubject_chars = 7\nmetadata_depth = 2\n")
    monkeypatch.setenv("CONVMEM_CONFIG", str(toml))
    settings = load_settings()
    assert (settings.limits.subject_chars, settings.limits.metadata_depth) == (7, 2)
    with Memory.open(tmp_path / "t.db", embedder="hash", settings=settings) as memory:
        with pytest.raises(ValidationError, match="subject_chars"):
            memory.conversations.add("sms", [PHONE], subject="12345678")
        memory.conversations.add("sms", [PHONE], subject="1234567")
    toml.write_text("[limits]\nsubject_chars = 0\n")
    with pytest.raises(MemoryCoreError, match="subject_chars"):
        load_settings()


def test_a_larger_configured_limit_is_honoured(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path).model_copy(
        update={"limits": Limits(message_chars=200_000)}
    )
    with Memory.open(tmp_path / "big.db", embedder="hash", settings=settings) as memory:
        result = memory.ingest(_conv(message={"text": "w " * 75_000}))
        assert len(result.messages[0].text) == 150_000


# -- other bad inputs that used to escape untyped ----------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"token_budget": -1},
        {"min_score": 2},
        {"limits": {"message": -5}},
        {"since": datetime(2024, 2, 1), "until": datetime(2024, 1, 1)},
        {"as_of": datetime(1, 1, 1)},
        {"unknown": 1},
    ],
)
def test_recall_options_raise_our_validation_error(kwargs: dict[str, Any]) -> None:
    raised = []
    for build in (
        lambda: RecallOptions(**kwargs),
        lambda: RecallOptions.model_validate(kwargs),
        lambda: RecallOptions.model_validate_json(json.dumps(kwargs, default=str)),
    ):
        with pytest.raises(ValidationError, match="^invalid RecallOptions: ") as info:
            build()
        raised.append(str(info.value))
    assert len(set(raised)) == 1, raised  # the same one-line message, however it was built
    assert "\n" not in raised[0] and raised[0].count("invalid RecallOptions") == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.ingest(_conv(message={"ts": "0001-01-01T00:00:00"})),
        lambda m: m.ingest(_conv(started_at="0001-01-01T00:00:00")),
        lambda m: m.conversations.add_message("c1", "customer", "hi", ts=datetime(1, 1, 1)),
        lambda m: m.conversations.end("c1", ended_at=datetime.max),
        lambda m: m.observations.list(PHONE, as_of=datetime.min),
        lambda m: m.governance.gc(now=datetime(1, 1, 1)),
        lambda m: m.governance.audit.list(since=datetime(9999, 12, 31, 23, 59)),
    ],
)
def test_times_out_of_range_are_refused(memory: Memory, call: Call) -> None:
    memory.ingest({**_conv(), "id": "c1", "ended": False})
    before = counts(memory)
    with pytest.raises(ValidationError, match="out of range"):
        call(memory)
    assert counts(memory) == before


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda m: m.recall(None), "profile reference"),  # type: ignore[arg-type]
        (lambda m: m.profiles.get(5), "profile reference"),  # type: ignore[arg-type]
        (lambda m: m.recall(PHONE, options={"token_budget": 5}), "RecallOptions"),  # type: ignore[arg-type]
        (lambda m: m.knowledge.sources.add("kb", content="a,b", source_type="csv"), "csv"),
        (lambda m: m.knowledge.search("hi", limit="5"), "whole number"),  # type: ignore[arg-type]
        (lambda m: m.conversations.list(limit=10**30), "limit"),
        (lambda m: m.traits.set(PHONE, "plan", float("nan")), "JSON"),
        (lambda m: m.conversations.add("sms", None), "list"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_get_a_typed_error(memory: Memory, call: Call, says: str) -> None:
    memory.profiles.add([PHONE])
    memory.knowledge.bases.add("kb")
    with pytest.raises(ValidationError, match=says):
        call(memory)


# -- the adapters go through the same layer -----------------------------------------------


async def test_mcp_tools_are_held_to_the_same_limits(memory: Memory) -> None:
    server = create_server(memory=memory)
    memory.profiles.add([PHONE])
    before = counts(memory)
    async with Client(server) as client:
        big_value = await client.call_tool(
            "update_profile", {"customer": PHONE, "set_traits": {"plan": "v" * 20_000}}
        )
        assert "trait_value_bytes" in error_text(big_value)
        big_text = await client.call_tool(
            "remember",
            {
                "customer": PHONE,
                "channel": "chat",
                "messages": [{"role": "customer", "text": "t" * 100_001}],
            },
        )
        assert "message_chars" in error_text(big_text)
        nul = await client.call_tool(
            "remember",
            {
                "customer": PHONE,
                "channel": "chat",
                "subject": "a\x00b",
                "messages": [{"role": "customer", "text": "hi"}],
            },
        )
        assert "NUL" in error_text(nul)
    assert counts(memory) == before


def test_cli_ingest_is_held_to_the_same_limits(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    lines = [
        _conv(id="ok", message={"id": "m1"}),
        _conv(id="big", subject="s" * 1_001),
    ]
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = CliRunner().invoke(app, ["ingest", str(data), "--db", str(db), "--embedder", "hash"])
    assert result.exit_code == 2
    assert "subject_chars" in result.output
    with Memory.open(db, embedder="hash") as memory:
        assert memory.backend.count("default", Collection.MESSAGES) == 0  # not even line 1
