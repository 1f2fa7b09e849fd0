"""Erasing a customer erases what the connectors keep about them: applied Segment
event ids, value versions, push digests and Twilio SMS thread keys (a digest of
the customer's number) -- nothing of the customer is left in the SQLite file; the
subject-access export lists that state while it exists."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import httpx
import respx

from memory_core.backends.base import Collection
from memory_core.connectors.segment import BATCH_URL, handle_events, push_profiles
from memory_core.connectors.twilio import twilio_webhook_app
from memory_core.memory import Memory
from tests.connectors.test_segment import IDENTIFY, TRACK
from tests.connectors.test_twilio import TOKEN, inbound, post_all

NUMBER = "+16175550142"
EMAIL = "peter@initech.com"
SEGMENT_USER = "97980cfea0067"


def checkpoint(memory: Memory) -> None:
    memory.backend._holder().conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]


def _raw(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def _rows_holding(db: Path, needle: str, *, skip: set[str]) -> list[str]:
    """Tables (other than ``skip``) with a row holding ``needle`` in any column."""
    conn = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] not in skip
        ]
        found = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if any(needle in str(v) for v in row if v is not None):
                    found.append(table)
                    break
        return found
    finally:
        conn.close()


async def _customer_everywhere(memory: Memory) -> str:
    """Segment events, a push to Segment and two SMS of the same customer and
    another customer's SMS; returns the customer's profile id."""
    identify = copy.deepcopy(IDENTIFY)
    identify["traits"] |= {"email": EMAIL, "phone": NUMBER}
    assert handle_events(memory, [identify, TRACK]).ok
    memory.traits.set(f"email:{EMAIL}", "tier", "gold", source="crm")
    with respx.mock(assert_all_called=True) as mock:
        mock.post(BATCH_URL).mock(return_value=httpx.Response(200, json={"success": True}))
        assert push_profiles(memory, "wk_test_123").updated == 1
    app = twilio_webhook_app(memory, TOKEN)
    answers = await post_all(
        app,
        "/messaging",
        [
            inbound("SM01", NUMBER, "Is my refund processed?"),
            inbound("SM02", NUMBER, "It was order 4471."),
            inbound("SM03", "+16175559999", "Another customer's question"),
        ],
    )
    assert all(a.status_code == 200 for a in answers)
    return memory.profiles.get(f"phone:{NUMBER}").id


async def test_deleting_a_profile_erases_its_connector_state(memory: Memory) -> None:
    db: Path = memory.backend.path  # type: ignore[attr-defined]
    profile_id = await _customer_everywhere(memory)
    state = memory.backend.find(memory.name, Collection.CONNECTOR_STATE)
    mine = [s for s in state if s.profile_id == profile_id]
    assert {(s.connector, s.kind) for s in mine} == {
        ("segment", "seen"),
        ("segment", "version"),
        ("segment", "pushed"),
        ("twilio", "thread"),
    }
    [thread] = [s for s in mine if s.kind == "thread"]
    digest = thread.key
    other_thread = [s for s in state if s.kind == "thread" and s.profile_id != profile_id]
    assert len(other_thread) == 1  # the other customer's thread names their profile

    exported = memory.profiles.export(profile_id)
    assert {s.id for s in exported.connector_state} == {s.id for s in mine}

    checkpoint(memory)
    needles = [profile_id, NUMBER, NUMBER[2:], EMAIL, digest, SEGMENT_USER, IDENTIFY["messageId"]]
    assert [n for n in needles if n.encode() not in _raw(db)] == []  # the scan sees them

    receipt = memory.profiles.delete(profile_id)
    assert receipt.deleted["connector_state"] == len(mine)
    left = memory.backend.find(memory.name, Collection.CONNECTOR_STATE)
    assert [s.id for s in left] == [other_thread[0].id]  # the other customer's is kept
    assert not [s for s in left if any(n in s.model_dump_json() for n in needles)]

    checkpoint(memory)
    raw = _raw(db)
    # the audit log keeps the deletion with the profile id (ids and counts only) ...
    assert [n for n in needles[1:] if n.encode() in raw] == []
    assert _rows_holding(db, profile_id, skip={"audit"}) == []
    deleted = memory.governance.audit.list(action="delete_profile")
    assert deleted[0].details["connector_state"] == len(mine)


async def test_a_dry_run_leaves_no_state_to_erase(memory: Memory) -> None:
    identify = copy.deepcopy(IDENTIFY)
    handle_events(memory, [identify])
    profile_id = memory.profiles.get(f"custom:segment_user={SEGMENT_USER}").id
    report = handle_events(memory, [TRACK], dry_run=True)
    assert report.created == 1
    seen = memory.backend.find(memory.name, Collection.CONNECTOR_STATE)
    assert {s.profile_id for s in seen} == {profile_id}  # only the real run's


async def test_connector_state_follows_a_merge_and_comes_back_with_an_unmerge(
    memory: Memory,
) -> None:
    app = twilio_webhook_app(memory, TOKEN)
    await post_all(
        app,
        "/messaging",
        [inbound("SM01", NUMBER, "Hello from Ann"), inbound("SM02", "+16175559999", "Hi, Bea")],
    )
    ann = memory.profiles.get(f"phone:{NUMBER}").id
    bea = memory.profiles.get("phone:+16175559999").id

    def threads() -> dict[str | None, int]:
        found = memory.backend.find(memory.name, Collection.CONNECTOR_STATE)
        return {p: sum(1 for s in found if s.profile_id == p) for p in (ann, bea)}

    assert threads() == {ann: 1, bea: 1}
    survivor = memory.profiles.merge(ann, bea, reason="same household, they said")
    merged_away = bea if survivor.id == ann else ann
    assert threads()[survivor.id] == 2  # erasing the survivor would erase both
    memory.profiles.unmerge(merged_away)
    assert threads() == {ann: 1, bea: 1}
    receipt = memory.profiles.delete(bea)
    assert receipt.deleted["connector_state"] == 1
    assert threads() == {ann: 1, bea: 0}
