"""The adapters' packaging: public surface, optional extras, import direction."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

pytest.importorskip("langchain_core", reason="needs the langchain extra")
pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")

import convmem_integrations.langchain
import convmem_integrations.llamaindex

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            convmem_integrations.langchain,
            {
                "ConversationMemoryChatMessageHistory",
                "ConversationMemoryMiddleware",
                "ConversationMemoryRetriever",
                "ConversationMemoryStore",
                "KnowledgeRetriever",
                "memory_tools",
                "session_history_factory",
                "spec_tool",
            },
        ),
        (
            convmem_integrations.llamaindex,
            {
                "ConversationChatMemory",
                "ConversationMemoryBlock",
                "ConversationMemoryRetriever",
                "ConversationMemoryToolSpec",
                "KnowledgeRetriever",
            },
        ),
    ],
)
def test_exported_members_are_pinned(module: object, names: set[str]) -> None:
    assert set(module.__all__) == names  # type: ignore[attr-defined]
    for name in names:
        assert getattr(module, name) is not None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("package", "framework", "extra"),
    [
        ("convmem_integrations.langchain", "langchain_core", "langchain"),
        ("convmem_integrations.langchain", "langgraph", "langchain"),
        ("convmem_integrations.llamaindex", "llama_index", "llamaindex"),
    ],
)
def test_importing_without_the_extra_says_what_to_install(
    package: str, framework: str, extra: str
) -> None:
    code = f"import sys; sys.modules[{framework!r}] = None; import {package}"
    proc = _run(code)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert f"pip install 'conversation-memory[{extra}]'" in proc.stderr


@pytest.mark.slow
def test_memory_core_never_imports_the_adapters_or_frameworks() -> None:
    code = (
        "import sys, memory_core, memory_core.memory, memory_core.aio;"
        "bad = sorted(m for m in sys.modules"
        " if m.split('.')[0] in"
        " {'convmem_integrations', 'convmem_mcp', 'langchain_core', 'llama_index'});"
        "print(bad)"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("extra", "distributions"),
    [
        ("langchain", {"langchain-core", "langchain", "langgraph"}),
        ("llamaindex", {"llama-index-core"}),
    ],
)
def test_installed_frameworks_satisfy_the_declared_extras(
    extra: str, distributions: set[str]
) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(spec) for spec in project["optional-dependencies"][extra]]
    assert {r.name for r in requirements} == distributions
    for requirement in requirements:
        assert requirement.specifier.contains(metadata.version(requirement.name))
