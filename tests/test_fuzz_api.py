"""Fuzz the public Python API: every method of every namespace of the handle
(docs/api.md), called with arguments drawn from plausible values and from
malformed ones (wrong types, NUL, lone surrogates, huge strings, deep nesting,
out-of-range times and numbers).

Asserted for every call: only :class:`memory_core.MemoryCoreError` subclasses
escape, and a rejected call leaves the store's record counts (every tenant,
every collection, the audit log included) as they were.

Bounded: a few examples per method on one seeded store per method, so the whole
module runs in the inner loop.
"""

from __future__ import annotations

import inspect
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import MemoryCoreError
from memory_core.knowledge.types import DocumentIn
from memory_core.memory import Memory
from memory_core.models import CrawlOptions, Identifier, IdentifierKind
from memory_core.recall import RecallOptions
from memory_core.services._base import Service
from tests.test_limits import counts

EXAMPLES = 10
"""Examples per method in the inner loop (every method, every run, drawn afresh)."""
SLOW_EXAMPLES = 200
"""Examples per method in the slow run."""
PHONE = "phone:+16175550142"
SKIP = {"close", "open"}  # closing the store, opening another: not input handling


class _Deep(dict[str, object]):
    """A value nested ``depth`` deep (dicts and lists), with a short repr (the
    default one would recurse as deep as the value)."""

    def __init__(self, depth: int) -> None:
        value: object = "leaf"
        for i in range(depth):
            value = {"k": value} if i % 2 else [value]
        super().__init__(k=value)
        self.depth = depth

    def __repr__(self) -> str:
        return f"<dict nested {self.depth} deep>"


NASTY: list[object] = [
    None,
    0,
    -1,
    2**63,
    10**30,
    10**5000,  # too large to print as a decimal
    1.5,
    float("nan"),
    float("inf"),
    True,
    "",
    " ",
    "\n",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "x" * 20_000,
    "prf_\ud800",
    "phone:\x00",
    "kb_\x00",
    {},
    [],
    (),
    {"a": 1},
    [1, 2],
    ["\ud800"],
    [None],
    b"\xff\xfe",
    object(),
    _Deep(5000),
    datetime(1, 1, 1),
    datetime.max,
    datetime.min,
    datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=14))),
    datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    "0001-01-01T00:00:00",
    Identifier(kind=IdentifierKind.EMAIL, value="\ud800@x.com"),
    Identifier(kind=IdentifierKind.CHAT_ID, value="x" * 5000),
    {"remember": {"deny_topics": ["\ud800"]}},
    {"redaction": {"custom": [{"name": "x", "pattern": "("}]}},
    [DocumentIn(text="\ud800")],
    [DocumentIn(text="a", uri="\x00")],
    RecallOptions(include_knowledge=True, knowledge_bases=("\ud800",)),
]

#: Random text, with control characters and lone surrogates.
TEXT = st.text(st.characters(categories=("Cs", "Cc", "L", "N", "P", "Z")), max_size=12)
NASTY_ANY = st.sampled_from(NASTY) | TEXT | st.integers() | st.floats() | st.datetimes()
#: For parameters naming files: never random text (it could name any path).
NASTY_NO_TEXT = st.sampled_from(NASTY)

TS = st.sampled_from(["2024-03-04T15:00:00", "2024-03-04T15:00:00+02:00", None])


def _message() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "role": st.sampled_from(["customer", "human_agent"]) | NASTY_ANY,
            "text": st.sampled_from(["my wifi drops every evening", "thanks"]) | NASTY_ANY,
        },
        optional={
            "ts": TS | NASTY_ANY,
            "id": st.sampled_from(["m0", "m-new"]) | NASTY_ANY,
            "author": st.sampled_from(["agent-7"]) | NASTY_ANY,
            "metadata": st.sampled_from([{"k": "v"}]) | NASTY_ANY,
        },
    )


def _conversation() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"channel": st.sampled_from(["sms", "chat"]) | NASTY_ANY},
        optional={
            "customer": st.lists(st.sampled_from([PHONE, "email:dana@example.com"]) | NASTY_ANY)
            | NASTY_ANY,
            "messages": st.lists(_message(), max_size=3) | NASTY_ANY,
            "id": st.sampled_from(["c0", "c-open", "c-new"]) | NASTY_ANY,
            "profile_id": NASTY_ANY,
            "subject": st.sampled_from(["billing"]) | NASTY_ANY,
            "metadata": st.sampled_from([{"k": "v"}]) | NASTY_ANY,
            "started_at": TS | NASTY_ANY,
            "ended": st.booleans() | NASTY_ANY,
        },
    )


@dataclass
class World:
    """A seeded store and the ids of what it holds."""

    memory: Memory
    tmp: Path
    profile_id: str
    observation_id: str
    source_id: str
    key_id: str
    token: str
    doc: Path


def _seed(tmp: Path) -> World:
    memory = Memory(
        SQLiteBackend(tmp / "fuzz.db"), HashEmbedder(), settings=load_settings(data_dir=tmp)
    )
    first = memory.ingest(
        {
            "id": "c0",
            "channel": "sms",
            "customer": [PHONE],
            "messages": [{"id": "m0", "role": "customer", "text": "my wifi drops every evening"}],
        }
    )
    memory.ingest(
        {
            "id": "c-open",
            "channel": "chat",
            "customer": [PHONE],
            "ended": False,
            "messages": [{"id": "m1", "role": "customer", "text": "still dropping"}],
        }
    )
    memory.traits.set(PHONE, "plan", "gold")
    observation = memory.observations.add(PHONE, "Prefers SMS", "preference", evidence=["m0"])
    memory.knowledge.bases.add("kb1")
    source = memory.knowledge.sources.add("kb1", content="Returns are free within 30 days.")
    issued = memory.governance.keys.add("read", "dashboard")
    memory.tenants.add("acme")
    doc = tmp / "faq.md"
    doc.write_text("# Shipping\n\nWe ship to 40 countries.\n")
    return World(
        memory,
        tmp,
        first.profile.id,
        observation.id,
        source.id,
        issued.key_id,
        issued.secret,
        doc,
    )


def _valid(world: World) -> dict[str, list[object]]:
    """Plausible values per parameter name (drawn beside the nasty ones)."""
    ids = [PHONE, world.profile_id, Identifier(kind=IdentifierKind.PHONE, value="+16175550142")]
    return {
        "ref": [*ids, "email:someone@example.com"],
        "a": ids,
        "b": [*ids, "chat_id:other"],
        "identifier": ["email:dana@example.com", Identifier(kind=IdentifierKind.CRM_ID, value="1")],
        "identifiers": [[PHONE], ["chat_id:abc"], []],
        "customer": [[PHONE], ["chat_id:abc"]],
        "kind": ["phone", "email", "preference", "context"],
        "value": ["gold", 5, "+16175550142", True],
        "key": ["plan", "tier", "preferred_channel"],
        "source": ["crm", "api", "agent"],
        "confidence": [0.5, 1.0],
        "evidence": [[], ["m0"]],
        "conversation_id": ["c0", "c-open", "c-new"],
        "message_id": ["m0", "m-new"],
        "profile_id": [world.profile_id],
        "channel": ["sms", "chat"],
        "role": ["customer", "read", "admin"],
        "text": ["my wifi keeps dropping", "Prefers morning calls"],
        "ts": [datetime(2024, 3, 5, tzinfo=UTC), None],
        "started_at": [datetime(2024, 3, 1), None],
        "ended_at": [datetime(2024, 3, 6, tzinfo=UTC), None],
        "now": [datetime(2030, 1, 1, tzinfo=UTC), None],
        "expires_at": [datetime(2030, 1, 1, tzinfo=UTC), datetime(2020, 1, 1), None],
        "since": [datetime(2024, 1, 1, tzinfo=UTC), None],
        "until": [datetime(2031, 1, 1, tzinfo=UTC), None],
        "as_of": [datetime(2024, 3, 5, tzinfo=UTC), None],
        "subject": ["billing", None],
        "metadata": [{"k": "v"}, None],
        "messages": [[{"role": "customer", "text": "hi"}], []],
        "observation_id": [world.observation_id],
        "reason": ["duplicate", ""],
        "limit": [5, 1, None],
        "offset": [0, 2],
        "include_superseded": [True, False],
        "force": [True, False],
        "timeout": [0.0, 5.0, None],
        "include_revoked": [True, False],
        "query": ["wifi", "returns policy", None],
        "kb": ["kb1", ["kb1"], None],
        "sources": [[world.source_id], None],
        "tags": [["policy"], None],
        "min_score": [0.0, 0.5],
        "alpha": [0.0, 0.5],
        "mode": ["hybrid", "keyword", "vector"],
        "name": ["kb2", "acme2", "agent-key"],
        "description": ["about returns", ""],
        "location": [str(world.doc), world.doc, None],
        "source_type": ["text", "markdown", None],
        "content": ["Shipping is free.", b"Shipping is free.", None],
        "documents": [[DocumentIn(text="Free returns.", title="Returns")], None],
        "uri": ["doc:returns", None],
        "title": ["Returns", None],
        "crawl": [None, CrawlOptions()],
        "max_bytes": [None, 1_000_000],
        "progress": [None, lambda *args: None],
        "policy": [None, {}, {"remember": {"deny_topics": ["health"]}}],
        "path": [world.tmp / "audit.jsonl"],
        "action": ["ingest", None],
        "target": ["conversation:c0", None],
        "actor": ["api", None],
        "key_id": [world.key_id],
        "merge_id": ["pmg_0f3a", "pmg_missing"],
        "token": [world.token, "cm.default.key_0.x"],
        "tenant": ["default", "acme", None],
        "type": ["str", "enum", "int"],
        "values": [["a", "b"], []],
        "conversation": [],
        "options": [None, RecallOptions(), RecallOptions(include_knowledge=True, token_budget=50)],
        "source_id": [world.source_id],
        "status": ["ready", "failed", None],
        "display_name": ["Dana", None],
        "author": ["agent-7", None],
        "trait_key": ["plan", None],
        "kb_id": [],
    }


def _strategies(name: str, world: World) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """The plausible and the malformed values of a parameter, by its name."""
    if name == "conversation":
        return _conversation(), _conversation() | NASTY_ANY
    if name == "messages":
        messages = st.lists(_message(), max_size=3)
        return messages, messages | NASTY_ANY
    valid = _valid(world)
    assert name in valid, f"no plausible values for parameter {name!r}: add them to _valid"
    nasty = NASTY_NO_TEXT if name in ("path", "location") else NASTY_ANY
    return (st.sampled_from(valid[name]) if valid[name] else nasty), nasty


def _methods() -> list[str]:
    """Every public method of the handle and of its namespaces, as dotted paths."""
    found: list[str] = []

    def walk(obj: object, prefix: str) -> None:
        for name in dir(obj):
            if name.startswith("_") or name in SKIP:
                continue
            value = getattr(obj, name)
            if isinstance(value, Service):
                walk(value, f"{prefix}{name}.")
            elif inspect.ismethod(value):
                found.append(f"{prefix}{name}")

    with tempfile.TemporaryDirectory() as tmp:
        memory = Memory(
            SQLiteBackend(Path(tmp) / "walk.db"),
            HashEmbedder(),
            settings=load_settings(data_dir=Path(tmp)),
        )
        try:
            walk(memory, "")
        finally:
            memory.close()
    return sorted(set(found))


METHODS = _methods()


def test_the_fuzzed_surface_is_the_documented_api() -> None:
    documented = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    for path in METHODS:
        assert f"### `{path.rsplit('.', 1)[-1]}(" in documented, path
    assert {"ingest", "recall", "tenant", "profiles.get", "knowledge.sources.add"} <= set(METHODS)
    assert "governance.keys.revoke" in METHODS and "tenants.authorize" in METHODS


def _resolve(memory: Memory, path: str) -> Callable[..., Any]:
    obj: Any = memory
    for part in path.split("."):
        obj = getattr(obj, part)
    assert callable(obj)
    return obj  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One seeded store, closed; each test works on its own copy of it."""
    seeded = _seed(tmp_path_factory.mktemp("fuzz-template"))
    seeded.memory.close()
    return seeded


@pytest.fixture
def world(template: World, tmp_path: Path) -> Iterator[World]:
    for file in template.tmp.glob("fuzz.db*"):
        shutil.copy(file, tmp_path / file.name)
    shutil.copy(template.doc, tmp_path / template.doc.name)
    memory = Memory(
        SQLiteBackend(tmp_path / "fuzz.db"),
        HashEmbedder(),
        settings=load_settings(data_dir=tmp_path),
    )
    yield replace(template, memory=memory, tmp=tmp_path, doc=tmp_path / template.doc.name)
    memory.close()


@pytest.mark.parametrize("path", METHODS)
def test_only_typed_errors_escape_and_rejected_calls_write_nothing(world: World, path: str) -> None:
    fuzz(world, path, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("path", METHODS)
def test_only_typed_errors_escape_many_examples(world: World, path: str) -> None:
    fuzz(world, path, SLOW_EXAMPLES)


def fuzz(world: World, path: str, examples: int) -> None:
    """Call the method at ``path`` ``examples`` times with drawn arguments."""
    method = _resolve(world.memory, path)
    params = [
        p
        for p in inspect.signature(method).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    strategies = {p.name: _strategies(p.name, world) for p in params}
    names = [p.name for p in params]

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(st.data())
    def call(data: st.DataObject) -> None:
        # Either one argument is malformed and the others plausible (to reach the
        # checks deep in a call), or each argument is drawn from both.
        target = data.draw(st.sampled_from([None, *names]), label="malformed argument")
        kwargs: dict[str, object] = {}
        for p in params:  # by keyword: any optional argument may be left out
            give = p.default is p.empty or p.name == target
            if give or data.draw(st.booleans(), label=f"give {p.name}"):
                plausible, nasty = strategies[p.name]
                pool = nasty if p.name == target else plausible if target else plausible | nasty
                kwargs[p.name] = data.draw(pool, label=p.name)
        try:
            method(**kwargs)
        except MemoryCoreError:
            assert counts(world.memory) == stored[0], f"{path} wrote before failing"
        else:  # a queued background extraction writes after the call that queued it
            world.memory.observations.wait_background()
            stored[0] = counts(world.memory)

    stored = [counts(world.memory)]  # what the store holds (changed only by calls that succeed)
    call()
