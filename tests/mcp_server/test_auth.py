"""Bearer tokens bound to tenants, and the package's import hygiene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import convmem_mcp
from convmem_mcp.auth import TOKENS_ENV, TokenTable, digest
from convmem_mcp.bench import convmem_command
from memory_core.errors import ConfigError
from tests.mcp_server.conftest import child_env

TOKEN_A = "a" * 20 + "-tenant-a-secret"
TOKEN_B = "b" * 20 + "-tenant-b-secret"


def test_each_token_maps_to_its_tenant_only() -> None:
    table = TokenTable.from_mapping({TOKEN_A: "acme", f"sha256:{digest(TOKEN_B)}": "globex"})
    assert table.tenant_for(TOKEN_A) == "acme"
    assert table.tenant_for(TOKEN_B) == "globex"
    assert table.tenant_for(TOKEN_A + "x") is None
    assert table.tenant_for("") is None
    assert table.tenants == ["acme", "globex"]
    assert TOKEN_A not in repr(table) and digest(TOKEN_A) not in repr(table)


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({"short": "acme"}, "too weak"),
        ({f" {TOKEN_A}": "acme"}, "too weak"),
        ({TOKEN_A: "not a tenant"}, "invalid tenant name"),
        ({TOKEN_A: 3}, "must be strings"),
    ],
)
def test_bad_token_configuration_is_refused(mapping: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TokenTable.from_mapping(mapping)  # type: ignore[arg-type]


def test_tokens_load_from_the_environment_and_a_file(tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({f"sha256:{digest(TOKEN_B)}": "globex"}), encoding="utf-8")
    table = TokenTable.load(file, environ={TOKENS_ENV: json.dumps({TOKEN_A: "acme"})})
    assert (table.tenant_for(TOKEN_A), table.tenant_for(TOKEN_B)) == ("acme", "globex")
    assert len(TokenTable.load(None, environ={})) == 0


@pytest.mark.parametrize("text", ["{not json", '["a list"]'])
def test_unreadable_token_files_name_the_problem(tmp_path: Path, text: str) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="tokens.json"):
        TokenTable.load(file, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        TokenTable.load(tmp_path / "missing.json", environ={})


@pytest.mark.slow
def test_mcp_token_prints_a_token_and_its_digest_entry(tmp_path: Path) -> None:
    done = subprocess.run(
        [*convmem_command(), "mcp-token", "acme"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=child_env(),
        check=True,
    )
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    token = lines["token"].strip()
    config = json.loads(lines["config"])
    assert TokenTable.from_mapping(config).tenant_for(token) == "acme"
    assert token not in lines["config"]


@pytest.mark.slow
def test_importing_the_package_or_its_cli_does_not_load_the_sdk() -> None:
    code = (
        "import sys, convmem_mcp\n"
        "assert not [m for m in sys.modules if m.startswith('memory_core')]\n"
        "import convmem_mcp.cli\n"
        "assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=child_env())


def test_public_surface_is_pinned() -> None:
    assert sorted(convmem_mcp.__all__) == ["TOOLS", "TokenTable", "ToolSpec", "create_server"]
    for name in convmem_mcp.__all__:
        assert getattr(convmem_mcp, name) is not None
    with pytest.raises(AttributeError):
        _ = convmem_mcp.nothing_here
