"""The shared connector pieces: the run report, state kept in the store (per tenant,
erased with it), atomic items, dry runs and the audit actor, on a real SQLite store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from memory_core.backends.base import Collection
from memory_core.backends.sqlite import SQLiteBackend
from memory_core.config import load_settings
from memory_core.connectors import ConnectorRun, ConnectorStore, ItemOutcome, RunReport
from memory_core.embedding import HashEmbedder
from memory_core.errors import ValidationError
from memory_core.memory import Memory


def test_the_report_counts_lists_and_renders() -> None:
    report = RunReport("segment", dry_run=True)
    report.add("created", "identify:m1")
    report.add(ItemOutcome.UPDATED, "track:m2")
    report.add("skipped", "track:m3", "already applied")
    report.add("failed", "line 4", "invalid JSON")
    report.change("created", "identify:m1", "trait plan = 'premium' (segment)")
    assert report.counts() == {"created": 1, "updated": 1, "skipped": 1, "failed": 1}
    assert report.total == 4 and not report.ok
    data = report.to_dict()
    assert data["failures"] == [{"outcome": "failed", "ref": "line 4", "reason": "invalid JSON"}]
    assert data["changes"][0]["reason"] == "trait plan = 'premium' (segment)"
    out = io.StringIO()
    Console(file=out, width=120).print(report)
    text = out.getvalue()
    assert "segment (dry run): 1 created, 1 updated, 1 skipped, 1 failed" in text
    assert "planned changes (nothing written)" in text and "invalid JSON" in text
    with pytest.raises(ValueError):
        report.add("exploded", "x")


def open_store(path: Path) -> Memory:
    return Memory(SQLiteBackend(path), HashEmbedder(), settings=load_settings(data_dir=path.parent))


def test_state_survives_a_restart_and_stays_in_its_tenant(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    memory = open_store(db)
    acme = memory.tenants.add("acme")
    state = ConnectorStore(memory, "salesforce")
    state.set_cursor("2026-11-30T10:00:00.000+0000", "Contact")
    state.mark_seen("msg:1")
    ConnectorStore(acme, "salesforce").set_cursor("acme-cursor", "Contact")
    memory.close()

    memory = open_store(db)
    state = ConnectorStore(memory, "salesforce")
    assert state.cursor("Contact") == "2026-11-30T10:00:00.000+0000"
    assert state.cursor("Case") is None and state.seen("msg:1") and not state.seen("msg:2")
    assert ConnectorStore(memory, "segment").cursor("Contact") is None  # per connector
    acme = memory.tenant("acme")
    assert ConnectorStore(acme, "salesforce").cursor("Contact") == "acme-cursor"
    assert not ConnectorStore(acme, "salesforce").seen("msg:1")  # per tenant

    memory.tenants.delete("acme")  # erasing a tenant erases its connector state
    acme = memory.tenants.add("acme")
    assert ConnectorStore(acme, "salesforce").cursor("Contact") is None
    assert memory.backend.count("acme", Collection.CONNECTOR_STATE) == 0
    assert state.clear() == 2 and state.cursor("Contact") is None
    memory.close()


def test_versions_tell_a_stale_value(memory: Memory) -> None:
    from datetime import UTC, datetime

    state = ConnectorStore(memory, "segment")
    t1, t2 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)
    assert state.is_stale("trait:x", t1) is None
    state.set_version("trait:x", t2)
    assert state.is_stale("trait:x", t1) == t2
    assert state.is_stale("trait:x", t2) is None and state.is_stale("trait:x", None) is None


def test_a_failing_item_is_rolled_back_and_the_run_goes_on(memory: Memory) -> None:
    with ConnectorRun(memory, "crm_test") as run:
        with run.item("contact:1") as item:
            profile = run.resolve(item, ["email:ann@example.com"])
            run.set_trait(item, profile, "tier", "gold", source="crm")
            run.state.mark_seen("contact:1")
            raise ValidationError("the record's owner field is not an email")
        with run.item("contact:2") as item:
            profile = run.resolve(item, ["email:bob@example.com"])
            run.set_trait(item, profile, "tier", "silver", source="crm")
    report = run.report
    assert report.counts() == {"created": 1, "updated": 0, "skipped": 0, "failed": 1}
    assert report.failures[0].reason == "the record's owner field is not an email"
    assert memory.profiles.find("email:ann@example.com") is None  # nothing half-written
    assert not run.state.seen("contact:1")
    assert memory.traits.list("email:bob@example.com")[0].value == "silver"
    [event] = memory.governance.audit.list(action="connector_run")
    assert event.actor == "connector:crm_test" and event.details["failed"] == 1


def test_unchanged_values_are_skipped_and_changed_ones_updated(memory: Memory) -> None:
    def run_once(tier: str) -> RunReport:
        with ConnectorRun(memory, "crm_test") as run, run.item("contact:1") as item:
            profile = run.resolve(item, ["email:ann@example.com"])
            run.set_trait(item, profile, "tier", tier, source="crm")
        return run.report

    assert run_once("gold").created == 1
    assert run_once("gold").skipped == 1
    again = run_once("platinum")
    assert again.updated == 1 and again.changes[0].reason == "trait tier = 'platinum' (crm)"


def test_a_dry_run_writes_nothing_but_sees_its_own_progress(memory: Memory) -> None:
    memory.profiles.list()
    before = {c.value: memory.backend.count(memory.name, c) for c in Collection}
    with ConnectorRun(memory, "crm_test", dry_run=True) as run:
        for ref in ("contact:1", "contact:1"):
            with run.item(ref) as item:
                if run.state.seen(ref):
                    item.skip("already applied")
                    continue
                profile = run.resolve(item, ["email:ann@example.com"])
                run.set_trait(item, profile, "tier", "gold", source="crm")
                run.add_observation(item, profile, "Renews every March", "behaviour", source="crm")
                run.state.mark_seen(ref)
                run.state.set_cursor("1")
    assert run.report.created == 1 and run.report.skipped == 1
    reasons = [c.reason for c in run.report.changes]
    assert reasons[:3] == [
        "profile with email identifier",
        "trait tier = 'gold' (crm)",
        "behaviour observation 'Renews every March'",
    ]
    after = {c.value: memory.backend.count(memory.name, c) for c in Collection}
    assert after == before  # not even an audit event
    assert ConnectorStore(memory, "crm_test").cursor() is None


def test_connector_names_are_checked(memory: Memory) -> None:
    with pytest.raises(ValidationError):
        ConnectorStore(memory, "Sales Force")
