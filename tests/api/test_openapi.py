"""The OpenAPI document: 3.1, generated from the app (docs/openapi.json is
current), every operation with its role, bearer security and problem+json
errors, and request bodies that are the engine's and the tools' own models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from starlette.testclient import TestClient

from convmem_api.models import ApiKeyOut, RecallBody
from memory_core import tools

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_document_is_current() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "openapi.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_the_served_document_is_openapi_3_1_with_roles_security_and_problems(
    client: TestClient,
) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "bearer" in doc["components"]["securitySchemes"]
    for path, operations in doc["paths"].items():
        assert path.startswith("/v1/")
        for method, operation in operations.items():
            where = f"{method} {path}"
            assert operation["x-required-role"] in ("read", "write", "admin"), where
            assert operation["security"] == [{"bearer": []}], where
            for status in ("401", "403", "404", "422"):
                content = operation["responses"][status]["content"]
                assert content == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, where
    schemas = doc["components"]["schemas"]
    assert {"Problem", "ConversationIn", "MessageIn", "RecallOutput", "Observation"} <= set(schemas)


def test_bodies_are_the_tools_models_without_what_the_path_names() -> None:
    fields = set(RecallBody.model_fields)
    assert fields == set(tools.RecallInput.model_fields) - {"customer"}
    for name in fields:
        assert (
            RecallBody.model_fields[name].description
            == tools.RecallInput.model_fields[name].description
        )
    assert "secret_hash" not in ApiKeyOut.model_fields and "salt" not in ApiKeyOut.model_fields
