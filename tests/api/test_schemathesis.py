"""Property-based tests of the REST API from its committed OpenAPI document
(schemathesis), against a live ``convmem serve --http`` (uvicorn on 127.0.0.1
and a free port, a real SQLite store): for a bounded number of generated
requests per operation, no response is a server error, and every response's
status, content type and body conform to the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.specs.openapi import checks as openapi_checks  # noqa: E402

from convmem_mcp.bench import HttpServerProcess  # noqa: E402
from memory_core.memory import Memory  # noqa: E402
from tests.api.conftest import first_conversation  # noqa: E402
from tests.mcp_server.conftest import child_env  # noqa: E402

pytestmark = pytest.mark.slow

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
TOKEN = "schemathesis-token-0123456789abcdef"
EXAMPLES = 8  # per operation: bounded, so the run stays minutes, not hours

schema = schemathesis.openapi.from_path(str(DOCUMENT))

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("schemathesis")
    db = root / "api.db"
    with Memory.open(db, embedder="hash") as memory:  # something to find
        acme = memory.tenants.add("acme")
        acme.ingest(first_conversation(ended=True))
        acme.knowledge.bases.add("help")
        acme.knowledge.sources.add("help", content="Refunds take five days.", title="Refunds")
    environ = child_env(XDG_DATA_HOME=str(root / "data"))
    with HttpServerProcess(db, {TOKEN: "acme"}, environ=environ) as server:
        yield server.url.removesuffix("/mcp")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_document(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(
        base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS
    )
