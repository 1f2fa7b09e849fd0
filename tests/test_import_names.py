"""The import names this distribution installs sit beside anything a user has.

The folders ``mcp_server/`` and ``integrations/`` install as ``convmem_mcp``
and ``convmem_integrations`` (setuptools ``package-dir``), so an application
with its own ``integrations`` or ``mcp_server`` package, first on its path,
neither shadows ours nor is shadowed by it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("memory_core", "mcp_server", "integrations", "api_server")


def _setuptools_config() -> dict[str, object]:
    config: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]
    return config


@pytest.mark.slow
def test_an_apps_own_integrations_and_mcp_server_do_not_shadow_ours(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core", reason="needs the langchain extra")
    pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")
    pytest.importorskip("mcp", reason="needs the mcp extra")
    app = tmp_path / "app"
    for name in ("integrations", "mcp_server"):
        (app / name).mkdir(parents=True)
        (app / name / "__init__.py").write_text(f"OWNER = 'app:{name}'\n")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(app)!r})

        import convmem_integrations.langchain
        import convmem_integrations.llamaindex
        import convmem_mcp.server
        import convmem_mcp.cli
        from convmem_integrations.langchain import ConversationMemoryRetriever
        from convmem_integrations.llamaindex import ConversationChatMemory
        from convmem_mcp import create_server

        import integrations
        import mcp_server
        assert integrations.OWNER == "app:integrations", integrations.__file__
        assert mcp_server.OWNER == "app:mcp_server", mcp_server.__file__
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONSAFEPATH"}}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_no_generic_top_level_import_names_are_installed() -> None:
    config = _setuptools_config()
    packages = config["packages"]
    assert isinstance(packages, list)
    top_level = {name.split(".")[0] for name in packages}
    assert top_level == {"memory_core", "convmem_mcp", "convmem_integrations", "convmem_api"}
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for group in scripts.get("entry-points", {}).values():
        for target in group.values():
            assert target.split(".")[0].split(":")[0] in top_level, target


def test_every_folder_with_python_files_is_a_listed_package() -> None:
    """Discovery does not follow package-dir, so pyproject lists packages by hand."""
    config = _setuptools_config()
    package_dir = config["package-dir"]
    packages = config["packages"]
    assert isinstance(package_dir, dict)
    assert isinstance(packages, list)
    folder_to_name = {folder: name for name, folder in package_dir.items() if name}

    def import_name(folder: Path) -> str:
        top, *rest = folder.relative_to(REPO).parts
        return ".".join([folder_to_name.get(top, top), *rest])

    on_disk = {
        import_name(path.parent)
        for top in FOLDERS
        for path in (REPO / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sorted(on_disk) == sorted(packages)
