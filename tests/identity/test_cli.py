"""``convmem profiles pending | confirm | reject | unmerge`` on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memory_core.cli.app import app
from memory_core.config import load_settings
from memory_core.errors import ConflictError, NotFoundError
from memory_core.memory import Memory
from tests.identity._scenes import ANN_PHONE, JON_EMAIL, typo_collision

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


def open_db(db: Path) -> Memory:
    return Memory.open(settings=load_settings(backend=f"sqlite:///{db}", embedder="hash"))


def cli(db: Path, *args: str) -> str:
    result = runner.invoke(app, ["profiles", *args, "--db", str(db), "--embedder", "hash"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_pending_lists_the_proposed_merge_then_reject_keeps_them_apart(db: Path) -> None:
    with open_db(db) as memory:
        ann, jon, merge_id = typo_collision(memory)
    listed = cli(db, "pending")
    assert merge_id in listed and ann in listed and jon in listed
    [record] = json.loads(cli(db, "pending", "--json"))
    assert record["id"] == merge_id and record["status"] == "pending"
    assert JON_EMAIL in record["identifiers"]

    out = cli(db, "reject", merge_id, "--reason", "different people, checked")
    assert f"rejected {merge_id}" in out and "stay apart" in out
    assert "no merges are waiting" in cli(db, "pending")
    [decided] = json.loads(cli(db, "pending", "--all", "--json"))
    assert decided["status"] == "rejected"
    assert decided["decision_reason"] == "different people, checked"
    with open_db(db) as memory:
        assert memory.profiles.get(ANN_PHONE).id == ann
        assert memory.profiles.get(JON_EMAIL).id == jon
        [event] = memory.governance.audit.list(action="reject_merge")
        assert event.actor == "api"


def test_confirm_merges_and_unmerge_splits_them_back(db: Path) -> None:
    with open_db(db) as memory:
        ann, jon, merge_id = typo_collision(memory)
    done = json.loads(cli(db, "confirm", merge_id, "--json"))
    assert done["survivor"]["id"] == ann and done["merge"]["status"] == "confirmed"
    with open_db(db) as memory:
        assert memory.profiles.get(JON_EMAIL).id == ann

    out = cli(db, "unmerge", jon, "--reason", "the typo was Ann's")
    assert f"unmerged {jon}" in out and f"from {ann}" in out
    with open_db(db) as memory:
        assert memory.profiles.get(JON_EMAIL).id == jon
        assert [e.action for e in memory.governance.audit.list(action="unmerge_profile")] == [
            "unmerge_profile"
        ]


def test_deciding_twice_or_unmerging_what_is_not_merged_is_a_typed_error(db: Path) -> None:
    with open_db(db) as memory:
        ann, _, merge_id = typo_collision(memory)
    cli(db, "confirm", merge_id)
    again = runner.invoke(app, ["profiles", "reject", merge_id, "--db", str(db)])
    assert isinstance(again.exception, ConflictError)
    assert "confirmed already" in str(again.exception)
    alone = runner.invoke(app, ["profiles", "unmerge", ann, "--db", str(db)])
    assert isinstance(alone.exception, ConflictError)
    missing = runner.invoke(app, ["profiles", "confirm", "pmg_missing", "--db", str(db)])
    assert isinstance(missing.exception, NotFoundError)
