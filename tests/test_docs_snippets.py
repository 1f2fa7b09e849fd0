"""Every Python snippet in README.md and docs/*.md runs as written.

Blocks of one file run in order in one namespace (a later block may use what an
earlier one defined), in a fresh directory, with the offline hash embedder. A
block that is deliberately a fragment (a signature, a config excerpt) is marked
with ``<!-- fragment -->`` on the line before its fence and is only compiled.
Async snippets are written as scripts (``asyncio.run(main())``), so they run too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"(?P<marker><!-- fragment -->\s*\n)?```python\n(?P<code>.*?)```", re.S)

# Files whose snippets need the optional extras; each is skipped without them.
_NEEDS = {"integrations.md": ("langchain_core", "llama_index.core")}


def blocks(path: Path) -> list[tuple[str, bool]]:
    """(code, is_fragment) for each ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(m["code"], m["marker"] is not None) for m in _BLOCK.finditer(text)]


def test_fragments_are_rare_and_still_compile() -> None:
    total = fragments = 0
    for path in DOCS:
        for code, fragment in blocks(path):
            total += 1
            fragments += fragment
            compile(code, str(path), "exec")  # every block is at least valid Python
    assert total >= 20
    assert fragments <= total // 4, "most snippets must run, not just compile"


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in DOCS if blocks(p)], ids=lambda p: p.name)
def test_snippets_run(path: Path, tmp_path: Path) -> None:
    for module in _NEEDS.get(path.name, ()):
        pytest.importorskip(module)
    runnable = [code for code, fragment in blocks(path) if not fragment]
    if not runnable:
        pytest.skip("only fragments")
    # One script per file: blocks joined in order, each under a marker comment so a
    # failure's traceback names the block.
    parts = [f"# --- block {i} of {path.name}\n{code}" for i, code in enumerate(runnable)]
    script = tmp_path / f"{path.stem}_snippets.py"
    script.write_text("\n".join(parts), encoding="utf-8")
    env = {
        # the venv's scripts (convmem) first, as after `. .venv/bin/activate`
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
        ),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "CONVMEM_EMBEDDER": "hash",
        "REPO": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert out.returncode == 0, f"{path.name}:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
