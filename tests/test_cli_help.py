"""What a newcomer sees first: ``--version``, ``--log-level``, help that lists the
everyday commands first and shows flags without a type placeholder."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from memory_core import __version__
from memory_core.cli.app import FIRST_COMMANDS, app, load_plugins

runner = CliRunner(env={"COLUMNS": "100"})


def _all_help_pages() -> dict[str, str]:
    """``--help`` of the app and of every command and sub-command."""
    load_plugins()
    root = typer.main.get_command(app)
    pages: dict[str, str] = {}

    def walk(command: Any, path: list[str]) -> None:
        result = runner.invoke(app, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, (path, result.output)
        pages[" ".join(path) or "convmem"] = result.output
        for name, sub in getattr(command, "commands", {}).items():  # a group
            walk(sub, [*path, name])

    walk(root, [])
    return pages


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"convmem {__version__}\n"


def test_log_level_configures_logging_and_rejects_unknown_levels() -> None:
    root = logging.getLogger()
    before = root.level, list(root.handlers)
    try:
        root.handlers.clear()
        result = runner.invoke(app, ["--log-level", "DEBUG", "tenants", "list", "--help"])
        assert result.exit_code == 0, result.output
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]
    result = runner.invoke(app, ["--log-level", "loud", "demo", "--help"])
    assert result.exit_code == 2 and "expected one of debug, info" in result.output


def test_help_lists_the_everyday_commands_first() -> None:
    load_plugins()
    result = runner.invoke(app, ["--help"])
    listed = re.findall(r"^  ([a-z][a-z-]*)\s", result.output.split("Commands:")[1], re.M)
    present = [name for name in FIRST_COMMANDS if name in listed]
    assert listed[: len(present)] == present
    assert listed[:3] == ["demo", "ingest", "recall"]


def test_no_help_page_shows_a_placeholder_for_a_flag() -> None:
    pages = _all_help_pages()
    assert len(pages) > 30  # every command and sub-command was visited
    for name, text in pages.items():
        assert "<bool>" not in text, name
        assert "--help" in text


def test_eval_locomo_backend_help_speaks_of_the_eval() -> None:
    text = runner.invoke(app, ["eval", "locomo", "--help"]).output
    backend = " ".join(text.split("--backend", 1)[1].split("--", 1)[0].split())
    assert "eval" in backend and "bench" not in backend


def test_the_installed_script_prints_its_version() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "convmem"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == f"convmem {__version__}"


def test_eval_says_where_the_data_come_from(tmp_path: Path) -> None:
    from memory_core.errors import ValidationError

    help_text = " ".join(runner.invoke(app, ["eval", "locomo", "--help"]).output.split())
    assert "research/LoCoMo" in help_text and "CC BY-NC 4.0" in help_text
    with pytest.raises(ValidationError, match="snap-research/LoCoMo"):
        runner.invoke(app, ["eval", "locomo", "--data", str(tmp_path / "none.json")],
                      catch_exceptions=False)  # fmt: skip
    with pytest.raises(ValidationError, match="BEIR layout"):
        runner.invoke(app, ["eval", "beir", "--data", str(tmp_path / "none")],
                      catch_exceptions=False)  # fmt: skip
