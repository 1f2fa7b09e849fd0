"""Generate docs/api.md, the reference of the Python API, from the code.

    python scripts/api_docs.py            # rewrite docs/api.md
    python scripts/api_docs.py --check    # exit 1 if docs/api.md is stale

The surface is read from a live handle (every namespace of ``Memory``, their
public methods, signatures and the first paragraph of each docstring), so the
reference cannot drift from the code; ``tests/test_api_docs.py`` runs --check.
"""

from __future__ import annotations

import inspect
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

NAMESPACES = (
    "",
    "profiles",
    "traits",
    "conversations",
    "observations",
    "summaries",
    "knowledge",
    "knowledge.bases",
    "knowledge.sources",
    "governance",
    "governance.policy",
    "governance.audit",
    "governance.keys",
    "tenants",
)

HEADER = """\
# Python API reference

Generated from the code by `python scripts/api_docs.py` (a test keeps it current).

`Memory` is a handle bound to one tenant: `Memory.open(...)` or `Memory(backend, embedder)`
gives the handle of `settings.tenant` (`"default"` unless configured), and
`memory.tenant("acme")` the handle of another tenant over the same store. No method
takes a tenant argument: the handle decides, so a forgotten argument cannot read or
write another partition. Everything except `ingest` and `recall` lives in a namespace,
with one vocabulary: `get`, `list`, `add`, `update`, `delete`, and a few domain verbs
(`link`, `merge`, `export`, `explain`, `history`, `retract`, `search`, `refresh`, `set`,
`end`). `AsyncMemory` mirrors every namespace and method, awaitable
(`await amem.profiles.get(ref)`).

A profile reference (`ref`) is a profile id (`prf_...`), an `Identifier`, or
`kind:value` text such as `phone:+16175550142` or `email:dana@example.com`.

Errors derive from `memory_core.MemoryCoreError` (see docs/architecture.md for the tree):
`NotFoundError` (with `.kind`), `ValidationError`, `ConflictError`, `PolicyDenied`,
`AccessDenied`, `ConfigError`, `StorageError`, `ModelError`.
"""


_MODULES = re.compile(
    r"\b(?:memory_core|collections\.abc|typing|datetime|pathlib)(?:\.\w+)*\.(?=[A-Za-z_])"
)


class _Raw:
    """An annotation shown as written (one that could not be evaluated)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    para = doc.split("\n\n", 1)[0]
    return " ".join(para.split())


def _signature(name: str, fn: object) -> str:
    try:
        try:
            sig = inspect.signature(fn, eval_str=True)  # type: ignore[arg-type]
        except NameError:
            sig = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = [
        p.replace(annotation=_Raw(p.annotation)) if isinstance(p.annotation, str) else p
        for p in sig.parameters.values()
        if p.name not in ("self", "cls")
    ]
    ret = sig.return_annotation
    shown = sig.replace(
        parameters=params, return_annotation=_Raw(ret) if isinstance(ret, str) else ret
    )
    return name + _MODULES.sub("", str(shown))


def render() -> str:
    from memory_core import Memory
    from memory_core.backends.sqlite import SQLiteBackend
    from memory_core.config import load_settings
    from memory_core.embedding import HashEmbedder

    with tempfile.TemporaryDirectory() as tmp:
        memory = Memory(
            SQLiteBackend(Path(tmp) / "api.db"),
            HashEmbedder(),
            settings=load_settings(data_dir=Path(tmp)),
        )
        try:
            parts = [HEADER]
            for path in NAMESPACES:
                obj: object = memory
                for part in filter(None, path.split(".")):
                    obj = getattr(obj, part)
                title = f"memory.{path}" if path else "Memory (the tenant handle)"
                parts.append(f"\n## `{title}`\n")
                summary = _first_paragraph(type(obj))
                if summary:
                    parts.append(f"{summary}\n")
                for name, value in sorted(inspect.getmembers(type(obj))):
                    if name.startswith("_") or isinstance(value, type):
                        continue
                    if not callable(value) and not isinstance(value, property):
                        continue
                    kind = "property" if isinstance(value, property) else "method"
                    fn = value.fget if isinstance(value, property) else value
                    head = name if kind == "property" else _signature(name, fn)
                    parts.append(f"\n### `{head}`\n")
                    text = _first_paragraph(fn)
                    if text:
                        parts.append(f"\n{text}\n")
            return "".join(parts)
        finally:
            memory.close()


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print("docs/api.md is stale: run python scripts/api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
