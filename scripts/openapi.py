"""Generate docs/openapi.json, the OpenAPI 3.1 document of the REST API, from the app.

    python scripts/openapi.py            # rewrite docs/openapi.json
    python scripts/openapi.py --check    # exit 1 if docs/openapi.json is stale

The document is FastAPI's, generated from the routes and the engine's and the
agent tools' pydantic models (convmem_api.app.openapi_document); nothing in it
is written by hand. ``tests/api/test_openapi.py`` runs --check.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "openapi.json"


def render() -> str:
    """The document as committed: sorted keys, two-space indent, final newline."""
    from convmem_api.app import create_app, openapi_document
    from memory_core.config import Settings

    app = create_app(Settings(), mcp=False)  # building the app opens nothing
    return json.dumps(openapi_document(app), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python scripts/openapi.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
