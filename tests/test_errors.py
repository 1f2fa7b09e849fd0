"""The error tree: every exception memory_core defines is a MemoryCoreError,
defined in memory_core.errors, documented, and pickles with its attributes."""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path

import pytest

import memory_core
from memory_core import errors
from memory_core.errors import (
    ConflictError,
    LLMReplyError,
    MemoryCoreError,
    NotFoundError,
    ValidationError,
)
from memory_core.models import Usage

REPO = Path(__file__).resolve().parents[1]


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a memory_core module, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    names = [memory_core.__name__]
    names += [m.name for m in pkgutil.walk_packages(memory_core.__path__, "memory_core.")]
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an optional extra that is not installed
            if (exc.name or "").split(".")[0] == "memory_core":
                raise
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[f"{name}.{cls.__qualname__}"] = cls
    return found


def test_every_exception_in_memory_core_is_a_memory_core_error() -> None:
    found = _exception_classes()
    assert "memory_core.errors.NotFoundError" in found
    strays = sorted(name for name, cls in found.items() if not issubclass(cls, MemoryCoreError))
    assert not strays, f"not derived from MemoryCoreError: {strays}"


def test_every_exception_is_defined_in_errors_and_documented() -> None:
    found = _exception_classes()
    elsewhere = sorted(n for n in found if not n.startswith("memory_core.errors."))
    assert not elsewhere, f"define these in memory_core.errors (and import them back): {elsewhere}"
    names = {cls.__name__ for cls in found.values()}
    assert names == set(errors.__all__)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for text, where in ((errors.__doc__ or "", "errors.py's docstring"), (readme, "the README")):
        in_tree = {line.strip(" │├└─").split(" ")[0] for line in text.splitlines()}
        missing = sorted(names - in_tree)
        assert not missing, f"missing from the error tree in {where}: {missing}"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("memory_core.governance.access", "AccessDenied"),
        ("memory_core.governance", "AccessDenied"),
        ("memory_core.governance.screening", "PolicyDenied"),
        ("memory_core.governance", "PolicyDenied"),
        ("memory_core.extraction.llm", "LLMReplyError"),
        ("memory_core.extraction", "LLMReplyError"),
        ("memory_core.knowledge.crawl", "CrawlError"),
        ("memory_core.knowledge.indexer", "NothingToIndex"),
    ],
)
def test_the_old_import_locations_still_work(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_the_tree_keeps_the_builtin_bases_callers_catch() -> None:
    assert issubclass(errors.PolicyDenied, ValidationError)
    assert issubclass(errors.PolicyDenied, ValueError)
    assert issubclass(errors.AccessDenied, PermissionError)
    assert issubclass(errors.LLMReplyError, errors.ModelError)
    assert issubclass(errors.CrawlError, errors.SourceError)
    assert issubclass(errors.NothingToIndex, errors.SourceError)
    assert issubclass(NotFoundError, LookupError)


def test_not_found_error_names_the_record_kind() -> None:
    exc = NotFoundError("profile 'p1' does not exist", kind="profile")
    assert exc.kind == "profile"
    assert str(exc) == "profile 'p1' does not exist"
    assert exc.args == ("profile 'p1' does not exist",)
    assert NotFoundError("no such thing").kind is None
    assert NotFoundError().kind is None
    with pytest.raises(LookupError) as caught:
        raise NotFoundError("tenant 'acme' does not exist", kind="tenant")
    assert caught.value.kind == "tenant"  # type: ignore[attr-defined]


def test_conflict_error_names_the_record_kind() -> None:
    exc = ConflictError("conversation 'c1' has ended", kind="conversation")
    assert (exc.kind, str(exc)) == ("conversation", "conversation 'c1' has ended")
    assert ConflictError("duplicate").kind is None


@pytest.mark.parametrize("cls", [NotFoundError, ConflictError])
def test_kind_survives_pickling_and_copying(cls: type[NotFoundError | ConflictError]) -> None:
    exc = cls("message 'm1' does not exist", kind="message")
    for clone in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert type(clone) is cls
        assert clone.kind == "message"
        assert clone.args == exc.args
    assert pickle.loads(pickle.dumps(cls("no kind"))).kind is None


def test_llm_reply_error_survives_pickling_with_its_usage() -> None:
    exc = LLMReplyError("LLM 'm' gave no usable reply", Usage(calls=3, prompt_tokens=10))
    clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is LLMReplyError
    assert str(clone) == "LLM 'm' gave no usable reply"
    assert clone.usage == Usage(calls=3, prompt_tokens=10)


def test_every_error_pickles() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        exc = cls("boom", Usage()) if cls is LLMReplyError else cls("boom")
        clone = pickle.loads(pickle.dumps(exc))
        assert type(clone) is cls and str(clone) == "boom", name
