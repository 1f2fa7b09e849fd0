"""One vocabulary: the tools each role is listed over HTTP (real ``convmem serve
--http``, API keys of each role), every argument named in
``memory_core.tools.ARGUMENTS`` and none retired, the adapters' knowledge
retrievers on the same names, and ``docs/tools.md`` carrying the vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from convmem_mcp.bench import HttpServerProcess, http_client
from memory_core import tools
from memory_core.memory import Memory
from tests.conftest import REPO
from tests.mcp_server.conftest import PHONE, child_env, error_text, first_exchange, ok

READ = {"recall", "search_knowledge", "get_profile", "list_observations"}
WRITE = READ | {"remember", "update_profile", "correct_observation"}
ADMIN = WRITE | {
    "forget",
    "list_knowledge_sources",
    "add_knowledge_source",
    "refresh_knowledge_source",
    "remove_knowledge_source",
}
STATIC = "static-token-vocabulary-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("vocabulary")
    db = root / "vocabulary.db"
    with Memory.open(db, embedder="hash") as memory:
        keys = memory.tenants.add("acme").governance.keys
        secrets = {role: keys.add(role, f"{role}-agent").secret for role in ("read", "write")}
        secrets["admin"] = keys.add("admin", "ops").secret
    secrets["static"] = STATIC  # a configured token: role admin
    environ = child_env(XDG_DATA_HOME=str(root / "data"))
    with HttpServerProcess(db, {STATIC: "acme"}, environ=environ) as server:
        yield server.url, secrets


def _arguments(schema: dict[str, Any], spec: tools.ToolSpec) -> set[str]:
    """The argument names of a listed input schema, with the options of ``advanced``."""
    names = set(schema["properties"])
    advanced = spec.input_model.model_fields.get("advanced")
    if advanced is not None:
        names |= set(getattr(advanced.annotation, "model_fields", {}))
    return names


@pytest.mark.slow
@pytest.mark.parametrize(
    ("who", "expected"),
    [("read", READ), ("write", WRITE), ("admin", ADMIN), ("static", ADMIN)],
)
async def test_each_role_is_listed_only_the_tools_it_may_call(
    served: tuple[str, dict[str, str]], who: str, expected: set[str]
) -> None:
    url, secrets = served
    with anyio.fail_after(60):
        async with http_client(url, secrets[who]) as client:
            listed = {t.name: t for t in (await client.list_tools()).tools}
            assert set(listed) == expected
            assert [t.name for t in tools.TOOLS if t.name in expected] == list(listed)
            for name, tool in listed.items():
                spec = tools.tool_spec(name)
                arguments = _arguments(tool.input_schema, spec)
                assert arguments <= set(tools.ARGUMENTS), (name, arguments - set(tools.ARGUMENTS))
                assert not arguments & tools.RETIRED, name
            if who == "read":  # a hidden tool is refused when called anyway
                refused = await client.call_tool("forget", {"customer": PHONE})
                assert "role 'read'; this needs 'admin'" in error_text(refused)
                refused = await client.call_tool("remember", first_exchange())
                assert "role 'read'; this needs 'write'" in error_text(refused)


@pytest.mark.slow
async def test_stdio_lists_every_tool(tmp_path: Path) -> None:
    from mcp import Client

    from convmem_mcp.bench import stdio_parameters

    params = stdio_parameters(tmp_path / "s.db", env=child_env(XDG_DATA_HOME=str(tmp_path)))
    with anyio.fail_after(60):
        async with Client(params) as client:
            assert {t.name for t in (await client.list_tools()).tools} == ADMIN
            ok(await client.call_tool("remember", first_exchange()))


def test_every_argument_is_in_the_vocabulary_and_every_word_is_used() -> None:
    used: set[str] = set()
    for spec in tools.TOOLS:
        fields = spec.input_model.model_fields
        names = set(fields)
        for field in fields.values():  # nested models: advanced options, messages ...
            inner = getattr(field.annotation, "model_fields", None)
            names |= set(inner or ())
        assert not names & tools.RETIRED, spec.name
        used |= names
    # Nested field names of messages and observations are theirs (role, ts, id, ...);
    # every top-level argument and advanced option is a word of the vocabulary.
    for spec in tools.TOOLS:
        top = set(spec.input_model.model_fields)
        advanced = spec.input_model.model_fields.get("advanced")
        top |= set(getattr(advanced.annotation, "model_fields", {})) if advanced else set()
        assert top <= set(tools.ARGUMENTS), (spec.name, top - set(tools.ARGUMENTS))
    assert set(tools.ARGUMENTS) <= used, set(tools.ARGUMENTS) - used  # no word unused


def test_the_knowledge_retrievers_use_the_same_words() -> None:
    from convmem_integrations._common import KnowledgeSearch

    names = set(KnowledgeSearch.model_fields)
    assert names <= set(tools.ARGUMENTS), names - set(tools.ARGUMENTS)
    assert not names & tools.RETIRED


def test_docs_carry_the_vocabulary_and_the_changes() -> None:
    text = (REPO / "docs" / "tools.md").read_text(encoding="utf-8")
    assert tools.vocabulary_table() in text, "regenerate the table: tools.vocabulary_table()"
    for before, now in tools.RENAMED.items():
        assert f"| {before} | {now} |" in text
