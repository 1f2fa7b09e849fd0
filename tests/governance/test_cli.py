"""``convmem gc``, ``export``, ``audit``, ``keys`` and ``policy``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from memory_core.cli.app import app
from memory_core.memory import Memory

runner = CliRunner()


def seeded(tmp_path: Path) -> Path:
    db = tmp_path / "cli.db"
    with Memory.open(db, embedder="hash") as memory:
        memory.ingest(
            {
                "channel": "sms",
                "customer": ["phone:+16175550142"],
                "messages": [
                    {
                        "role": "customer",
                        "text": "Please text me, card 4111 1111 1111 1111",
                        "ts": datetime(2024, 1, 1, tzinfo=UTC),
                    }
                ],
            }
        )
    return db


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_export_audit_and_gc(tmp_path: Path) -> None:
    db = seeded(tmp_path)
    out = tmp_path / "ann.json"
    run("export", "phone:+16175550142", "-o", str(out), "--db", str(db))
    doc = json.loads(out.read_text())
    texts = [m["text"] for c in doc["conversations"] for m in c["messages"]]
    assert texts == ["Please text me, card [REDACTED:card]"]
    printed = json.loads(run("export", "phone:+16175550142", "--db", str(db)))
    assert printed["profile"]["id"] == doc["profile"]["id"]

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"retention": {"messages": "30d"}}))
    run("policy", "set", str(policy), "--db", str(db))
    shown = json.loads(run("policy", "show", "--db", str(db)))
    assert shown["retention"]["messages"] == "P30D"
    receipt = json.loads(
        run(
            "gc",
            "--now",
            "2024-03-01T00:00:00+00:00",
            "--json",
            "--db",
            str(db),
            "--embedder",
            "hash",
        )
    )
    assert receipt["deleted"]["messages"] == 1

    lines = run("audit", "--jsonl", "--db", str(db)).splitlines()
    actions = [json.loads(line)["action"] for line in lines]
    assert actions == ["ingest", "export_profile", "export_profile", "set_policy", "gc"]
    audit_text = "\n".join(lines)
    assert "4111 1111" not in audit_text and "4111111111111111" not in audit_text
    assert "Please text me" not in audit_text
    assert "delete_tenant" not in run("audit", "--system", "--db", str(db))
    target = tmp_path / "audit.jsonl"
    assert "wrote 5 events" in run("audit", "-o", str(target), "--db", str(db))


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    db = seeded(tmp_path)
    created = run("keys", "create", "read", "dashboard", "--db", str(db))
    token = next(line for line in created.splitlines() if line.startswith("cmk."))
    key_id = token.split(".")[2]
    listed = json.loads(run("keys", "list", "--json", "--db", str(db)))
    assert [k["id"] for k in listed] == [key_id]
    assert "secret_hash" not in listed[0] and token.rsplit(".", 1)[1] not in json.dumps(listed)
    with Memory.open(db, embedder="hash") as memory:
        assert memory.tenants.authorize(token).role.value == "read"
    run("keys", "revoke", key_id, "--db", str(db))
    assert json.loads(run("keys", "list", "--json", "--db", str(db))) == []


def test_tenants_create_then_keys_list_and_delete(tmp_path: Path) -> None:
    db = str(seeded(tmp_path))
    refused = runner.invoke(app, ["keys", "create", "read", "bot", "--db", db, "--tenant", "acme"])
    assert "convmem tenants create acme" in str(refused.exception)  # main() prints it

    assert "tenant 'acme' ready" in run("tenants", "create", "acme", "--db", db)
    run("keys", "create", "read", "bot", "--db", db, "--tenant", "acme")
    assert json.loads(run("tenants", "list", "--db", db, "--json")) == ["acme", "default"]

    unconfirmed = runner.invoke(app, ["tenants", "delete", "default", "--db", db])
    assert "--yes" in str(unconfirmed.exception)
    receipt = json.loads(run("tenants", "delete", "default", "--yes", "--db", db, "--json"))
    assert receipt["target"] == "tenant:default" and receipt["deleted"]["messages"] == 1
    with Memory.open(db, embedder="hash") as memory:
        assert memory.tenants.list() == ["acme"]  # acme and its key untouched
        assert [k.name for k in memory.tenant("acme").governance.keys.list()] == ["bot"]
