"""API keys: hashed at rest, scoped to one tenant and one role, revocable."""

from __future__ import annotations

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
