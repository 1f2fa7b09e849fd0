"""``convmem connect twilio-transcript FILE``: a Conversational Intelligence
transcript (shaped like Twilio's API answers) from a file into a real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from memory_core.cli.app import app
from memory_core.config import load_settings
from memory_core.errors import ValidationError
from memory_core.memory import Memory
from tests.connectors.test_twilio import SENTENCES, TRANSCRIPT, TRANSCRIPT_SID

runner = CliRunner(env={"COLUMNS": "200"})


def invoke(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["connect", "twilio-transcript", *args, "--db", str(db), "--embedder", "hash"]
    )
    return result.exit_code, result.stdout


def test_dry_run_then_ingest_then_a_repeat_is_skipped(tmp_path: Path) -> None:
    file = tmp_path / "transcript.json"
    file.write_text(json.dumps({**TRANSCRIPT, "sentences": SENTENCES}))
    db = tmp_path / "cli.db"

    code, out = invoke(db, str(file), "--dry-run", "--json")
    assert code == 0, out
    planned = json.loads(out)
    assert planned["dry_run"] and planned["created"] == 1
    assert any("voice conversation" in c["reason"] for c in planned["changes"])
    settings = load_settings(backend=f"sqlite:///{db}", embedder="hash")
    with Memory.open(settings=settings) as memory:
        assert memory.conversations.list() == []

    code, out = invoke(db, str(file))
    assert code == 0, out
    assert "twilio: 1 created, 0 updated, 0 skipped, 0 failed" in out
    with Memory.open(settings=settings) as memory:
        conv = memory.conversations.get(TRANSCRIPT_SID)
        assert conv.channel.value == "voice" and conv.status.value == "ended"
        assert conv.profile_id == memory.profiles.get("phone:+16175550142").id
        [event] = memory.governance.audit.list(action="connector_run")
        assert event.actor == "connector:twilio"

    code, out = invoke(db, str(file), "--json")
    assert code == 0 and json.loads(out)["skipped"] == 1


def test_sentences_from_their_own_page_and_a_customer_given(tmp_path: Path) -> None:
    anonymous = {**TRANSCRIPT, "channel": {"participants": []}}
    file = tmp_path / "transcript.json"
    file.write_text(json.dumps(anonymous))
    page = tmp_path / "sentences.json"
    page.write_text(json.dumps({"sentences": SENTENCES, "meta": {"page": 0}}))
    db = tmp_path / "cli.db"

    code, out = invoke(db, str(file), "--sentences", str(page), "--json")
    assert code == 1  # the transcript names no customer: a failed record
    [failure] = json.loads(out)["failures"]
    assert "names no customer" in failure["reason"]

    code, out = invoke(db, str(file), "--sentences", str(page), "--customer", "phone:+16175550142")
    assert code == 0, out
    settings = load_settings(backend=f"sqlite:///{db}", embedder="hash")
    with Memory.open(settings=settings) as memory:
        roles = [m.role.value for m in memory.conversations.list_messages(TRANSCRIPT_SID)]
        assert roles == ["customer", "human_agent", "customer"]


def test_a_file_without_sentences_is_a_typed_error(tmp_path: Path) -> None:
    file = tmp_path / "transcript.json"
    file.write_text(json.dumps(TRANSCRIPT))
    result = runner.invoke(
        app, ["connect", "twilio-transcript", str(file), "--db", str(tmp_path / "x.db")]
    )
    assert isinstance(result.exception, ValidationError)
    assert "--sentences" in str(result.exception)
    file.write_text("{not json")
    result = runner.invoke(
        app, ["connect", "twilio-transcript", str(file), "--db", str(tmp_path / "x.db")]
    )
    assert isinstance(result.exception, ValidationError)
