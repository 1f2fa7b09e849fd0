"""API keys: hashed at rest, scoped to one tenant and one role, revocable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory_core.governance import AccessDenied, required_role
from memory_core.memory import Memory
from memory_core.models import AccessRole


@pytest.fixture
def acme(memory: Memory) -> Memory:
    """The handle of tenant ``acme`` (``globex`` exists too)."""
    memory.tenants.add("globex")
    return memory.tenants.add("acme")


def test_secrets_are_not_stored_only_salted_digests(acme: Memory, tmp_path: Path) -> None:
    key_id, token = acme.governance.keys.add("write", "mcp-prod")
    secret = token.rsplit(".", 1)[1]
    principal = acme.tenants.authorize(token)
    assert (principal.tenant, principal.role, principal.key_id) == (
        "acme",
        AccessRole.WRITE,
        key_id,
    )
    acme.backend._holder().conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("memory.db*"))
    assert secret.encode() not in raw and token.encode() not in raw
    listed = acme.governance.keys.list()
    assert [k.id for k in listed] == [key_id]
    assert secret not in repr(listed)
    event = acme.governance.audit.list(action="create_api_key")[0]
    assert event.target == f"api_key:{key_id}" and secret not in event.model_dump_json()


def test_a_token_of_one_tenant_is_refused_on_another(acme: Memory) -> None:
    _, token = acme.governance.keys.add("admin", "ops")
    assert acme.tenants.authorize(token, tenant="acme").tenant == "acme"
    with pytest.raises(AccessDenied, match="not valid for tenant 'globex'"):
        acme.tenants.authorize(token, tenant="globex")
    # Editing the tenant inside the token finds no key there.
    forged = token.replace("cmk.acme.", "cmk.globex.", 1)
    with pytest.raises(AccessDenied):
        acme.tenants.authorize(forged)
    with pytest.raises(AccessDenied):
        acme.tenants.authorize(token.replace("cmk.acme.", "cmk.nosuchtenant.", 1))


def test_roles_are_ordered_and_enforced(acme: Memory) -> None:
    _, reader = acme.governance.keys.add("read", "dashboard")
    _, writer = acme.governance.keys.add("write", "ingest")
    principal = acme.tenants.authorize(reader, role="read")
    assert principal.allows("read") and not principal.allows("write")
    with pytest.raises(AccessDenied, match="role 'read'; this needs 'write'"):
        acme.tenants.authorize(reader, role="write")
    assert acme.tenants.authorize(writer, role="write").allows(AccessRole.WRITE)
    with pytest.raises(AccessDenied):
        acme.tenants.authorize(writer, role="admin")
    assert required_role("recall") is AccessRole.READ
    assert required_role("search_knowledge") is AccessRole.READ
    assert required_role("get_profile") is AccessRole.READ
    assert required_role("remember") is AccessRole.WRITE
    assert required_role("update_profile") is AccessRole.WRITE
    assert required_role("forget") is AccessRole.ADMIN
    assert required_role("new_tool", read_only=True) is AccessRole.READ
    assert required_role("other_tool", destructive=True) is AccessRole.ADMIN


def test_revoked_wrong_and_malformed_tokens_are_refused(acme: Memory) -> None:
    key_id, token = acme.governance.keys.add("read", "temp")
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (wrong, "", "Bearer x", "cmk.acme.key_0000000000000000." + "x" * 43, token + "."):
        with pytest.raises(AccessDenied):
            acme.tenants.authorize(bad)
    revoked = acme.governance.keys.revoke(key_id)
    assert revoked.revoked_at is not None
    with pytest.raises(AccessDenied, match="revoked"):
        acme.tenants.authorize(token)
    assert acme.governance.keys.list() == []
    assert [k.id for k in acme.governance.keys.list(include_revoked=True)] == [key_id]
    assert acme.governance.keys.revoke(key_id) == revoked  # idempotent


def test_keys_go_with_their_tenant(acme: Memory) -> None:
    _, token = acme.tenant("globex").governance.keys.add("admin", "ops")
    acme.tenants.delete("globex")
    with pytest.raises(AccessDenied):
        acme.tenants.authorize(token)


def test_bad_roles_and_names_are_validation_errors(acme: Memory) -> None:
    from memory_core.errors import ValidationError

    with pytest.raises(ValidationError, match="unknown role"):
        acme.governance.keys.add("superuser", "x")
    with pytest.raises(ValidationError, match="name"):
        acme.governance.keys.add("read", "  ")


# -- expiry ------------------------------------------------------------------------------


def test_a_key_works_until_it_expires_and_is_refused_from_then_on(
    acme: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expiry is checked on every request against the stored key (the clock is
    moved forward instead of waiting)."""
    import memory_core.governance.access as access

    now = datetime.now(UTC)
    key_id, token = acme.governance.keys.add("read", "agent", expires_at=now + timedelta(hours=1))
    assert acme.tenants.authorize(token).key_id == key_id
    assert acme.governance.keys.get(key_id).expires_at == now + timedelta(hours=1)
    event = acme.governance.audit.list(action="create_api_key")[0]
    assert event.details["expires_at"] == (now + timedelta(hours=1)).isoformat()

    monkeypatch.setattr(access, "utcnow", lambda: now + timedelta(hours=1, seconds=1))
    with pytest.raises(AccessDenied, match="expired at") as refused:
        acme.tenants.authorize(token)
    assert "convmem keys create" in str(refused.value)
    assert [k.id for k in acme.governance.keys.list()] == [key_id]  # listed, with its expiry


def test_an_expiry_must_be_a_future_time(acme: Memory) -> None:
    from memory_core.errors import ValidationError

    with pytest.raises(ValidationError, match="not in the future"):
        acme.governance.keys.add("read", "late", expires_at=datetime.now(UTC) - timedelta(1))
    with pytest.raises(ValidationError, match="expires_at must be a datetime"):
        acme.governance.keys.add("read", "vague", expires_at="tomorrow")  # type: ignore[arg-type]
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)  # taken as UTC
    key_id, _ = acme.governance.keys.add("read", "naive", expires_at=naive)
    assert acme.governance.keys.get(key_id).expires_at == naive.replace(tzinfo=UTC)
    assert [k.name for k in acme.governance.keys.list()] == ["naive"]


def test_keys_stored_before_expiry_existed_keep_working(acme: Memory) -> None:
    """The expiry lives in the record's JSON body (no column, no migration): a key
    written by an older version, whose body has no ``expires_at``, never expires."""
    key_id, token = acme.governance.keys.add("write", "old")
    conn = acme.backend._holder().conn  # type: ignore[attr-defined]
    conn.execute("UPDATE api_keys SET body = json_remove(body, '$.expires_at')")
    conn.commit()
    (body,) = conn.execute("SELECT body FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    assert "expires_at" not in body
    assert acme.governance.keys.get(key_id).expires_at is None
    assert acme.tenants.authorize(token, role="write").key_id == key_id


def test_keys_create_takes_an_expiry(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from memory_core.cli.app import app

    db = tmp_path / "keys.db"
    runner = CliRunner()
    create = ["keys", "create", "read", "bot", "--db", str(db), "--expires"]
    made = runner.invoke(app, [*create, "30d"])
    assert made.exit_code == 0, made.output
    with Memory.open(db, embedder="hash") as memory:
        (key,) = memory.governance.keys.list()
        assert key.expires_at is not None
        assert timedelta(days=29) < key.expires_at - key.created_at <= timedelta(days=30)
    listed = runner.invoke(app, ["keys", "list", "--json", "--db", str(db)])
    assert datetime.fromisoformat(json.loads(listed.output)[0]["expires_at"]) == key.expires_at
    bad = runner.invoke(app, [*create, "soon"])
    assert "--expires" in str(bad.exception)
