"""API key expiry on every backend: ``expires_at`` is stored with the key (in the
record's body, so no schema change), read back exactly, and checked by
``authorize`` on each request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import memory_core.governance.access as access
from memory_core.backends.base import Backend, Collection
from memory_core.config import load_settings
from memory_core.embedding import HashEmbedder
from memory_core.errors import AccessDenied
from memory_core.memory import Memory
from memory_core.models import AccessRole, ApiKey


def test_an_expiring_key_round_trips_and_is_refused_once_expired(
    backend: Backend, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = Memory(backend, HashEmbedder(), settings=load_settings(data_dir=tmp_path))
    keys = memory.tenant(tenant).governance.keys
    until = datetime.now(UTC).replace(microsecond=123456) + timedelta(days=7)
    key_id, token = keys.add("write", "agent", expires_at=until)
    forever_id, forever = keys.add("read", "dashboard")

    assert backend.get(tenant, Collection.API_KEYS, [key_id])[0].expires_at == until
    assert keys.get(forever_id).expires_at is None
    assert memory.tenants.authorize(token, tenant=tenant, role="write").key_id == key_id

    monkeypatch.setattr(access, "utcnow", lambda: until)  # the moment it expires
    with pytest.raises(AccessDenied, match="expired"):
        memory.tenants.authorize(token)
    assert memory.tenants.authorize(forever).key_id == forever_id


def test_a_key_record_without_expiry_reads_back_as_never_expiring(
    backend: Backend, tenant: str
) -> None:
    """(On SQLite, a body without the field at all -- a key stored before expiry
    existed -- is checked in tests/governance/test_access.py.)"""
    old = ApiKey(
        id="key_0", tenant=tenant, name="k", role=AccessRole.READ, salt="00", secret_hash="ff"
    )
    backend.upsert(tenant, Collection.API_KEYS, [old])
    (read,) = backend.get(tenant, Collection.API_KEYS, ["key_0"])
    assert read == old and read.expires_at is None
