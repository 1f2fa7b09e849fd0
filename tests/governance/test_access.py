"""API keys: hashed at rest, scoped to one tenant and one role, revocable."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_core.governance import AccessDenied, required_role
from memory_core.governance.access import authorize
from memory_core.memory import Memory
from memory_core.models import AccessRole


@pytest.fixture
def tenants(memory: Memory) -> Memory:
    memory.create_tenant("acme")
    memory.create_tenant("globex")
    return memory


def test_secrets_are_not_stored_only_salted_digests(tenants: Memory, tmp_path: Path) -> None:
    key_id, token = tenants.create_api_key("write", "mcp-prod", tenant="acme")
    secret = token.rsplit(".", 1)[1]
    principal = tenants.authorize(token)
    assert (principal.tenant, principal.role, principal.key_id) == (
        "acme",
        AccessRole.WRITE,
        key_id,
    )
    tenants.backend._holder().conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("memory.db*"))
    assert secret.encode() not in raw and token.encode() not in raw
    listed = tenants.list_api_keys(tenant="acme")
    assert [k.id for k in listed] == [key_id]
    assert secret not in repr(listed)
    event = tenants.audit(tenant="acme", action="create_api_key")[0]
    assert event.target == f"api_key:{key_id}" and secret not in event.model_dump_json()


def test_a_token_of_one_tenant_is_refused_on_another(tenants: Memory) -> None:
    _, token = tenants.create_api_key("admin", "ops", tenant="acme")
    assert tenants.authorize(token, tenant="acme").tenant == "acme"
    with pytest.raises(AccessDenied, match="not valid for tenant 'globex'"):
        tenants.authorize(token, tenant="globex")
    # Editing the tenant inside the token finds no key there.
    forged = token.replace("cmk.acme.", "cmk.globex.", 1)
    with pytest.raises(AccessDenied):
        tenants.authorize(forged)
    with pytest.raises(AccessDenied):
        tenants.authorize(token.replace("cmk.acme.", "cmk.nosuchtenant.", 1))


def test_roles_are_ordered_and_enforced(tenants: Memory) -> None:
    _, reader = tenants.create_api_key("read", "dashboard", tenant="acme")
    _, writer = tenants.create_api_key("write", "ingest", tenant="acme")
    principal = tenants.authorize(reader, role="read")
    assert principal.allows("read") and not principal.allows("write")
    with pytest.raises(AccessDenied, match="role 'read'; this needs 'write'"):
        tenants.authorize(reader, role="write")
    assert tenants.authorize(writer, role="write").allows(AccessRole.WRITE)
    with pytest.raises(AccessDenied):
        tenants.authorize(writer, role="admin")
    assert required_role("recall") is AccessRole.READ
    assert required_role("search_knowledge") is AccessRole.READ
    assert required_role("get_profile") is AccessRole.READ
    assert required_role("remember") is AccessRole.WRITE
    assert required_role("update_profile") is AccessRole.WRITE
    assert required_role("forget") is AccessRole.ADMIN
    assert required_role("new_tool", read_only=True) is AccessRole.READ
    assert required_role("other_tool", destructive=True) is AccessRole.ADMIN


def test_revoked_wrong_and_malformed_tokens_are_refused(tenants: Memory) -> None:
    key_id, token = tenants.create_api_key("read", "temp", tenant="acme")
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (wrong, "", "Bearer x", "cmk.acme.key_0000000000000000." + "x" * 43, token + "."):
        with pytest.raises(AccessDenied):
            authorize(tenants, bad)
    revoked = tenants.revoke_api_key(key_id, tenant="acme")
    assert revoked.revoked_at is not None
    with pytest.raises(AccessDenied, match="revoked"):
        tenants.authorize(token)
    assert tenants.list_api_keys(tenant="acme") == []
    assert [k.id for k in tenants.list_api_keys(tenant="acme", include_revoked=True)] == [key_id]
    assert tenants.revoke_api_key(key_id, tenant="acme") == revoked  # idempotent


def test_keys_go_with_their_tenant(tenants: Memory) -> None:
    _, token = tenants.create_api_key("admin", "ops", tenant="globex")
    tenants.delete_tenant("globex")
    with pytest.raises(AccessDenied):
        tenants.authorize(token)


def test_bad_roles_and_names_are_validation_errors(tenants: Memory) -> None:
    from memory_core.errors import ValidationError

    with pytest.raises(ValidationError, match="unknown role"):
        tenants.create_api_key("superuser", "x", tenant="acme")
    with pytest.raises(ValidationError, match="name"):
        tenants.create_api_key("read", "  ", tenant="acme")
