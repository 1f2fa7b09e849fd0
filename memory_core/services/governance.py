"""Governance of one tenant: its policy, audit log, API keys, redaction and
retention. (Profile export for subject access is ``memory.profiles.export``;
erasure is every ``delete``.)"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from memory_core import validation
from memory_core.backends.base import Collection, Where
from memory_core.errors import NotFoundError, ValidationError
from memory_core.governance import audit as audit_log
from memory_core.governance import erasure, screening
from memory_core.governance.access import IssuedKey, new_key
from memory_core.governance.policy import Policy
from memory_core.governance.retention import expire
from memory_core.models import (
    AccessRole,
    ApiKey,
    AuditEvent,
    DeletionReceipt,
    PolicyRecord,
    utcnow,
)
from memory_core.services._base import Service

if TYPE_CHECKING:
    from memory_core.memory import Memory

__all__ = ["ApiKeys", "AuditLog", "Governance", "Policies", "run_retention"]


class Policies(Service):
    """The tenant's governance policy (what is remembered, redaction, retention)."""

    __slots__ = ()

    def get(self) -> Policy:
        """The tenant's policy: the one stored with :meth:`set`, else the settings'
        (``policies.<tenant>``, then ``policies."*"``), else the defaults."""
        return screening.load_policy(self._ctx, self._tenant)[0]

    def set(self, policy: Policy | Mapping[str, Any] | None) -> Policy:
        """Store the tenant's policy (``None``: remove it, so the settings apply
        again). Applies to what is written from now on; run
        ``memory.governance.gc()`` to apply a shorter retention to what is stored."""
        tenant = self._tenant
        if policy is not None and not isinstance(policy, Policy):
            try:
                policy = Policy.model_validate(dict(policy))
            except PydanticValidationError as exc:
                raise ValidationError(f"invalid policy: {validation.describe(exc)}") from exc
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"invalid policy: {exc}") from exc
        if policy is not None:  # what is stored must be clean JSON (no NUL, no lone surrogate)
            validation.json_value(policy.to_json(), "policy", max_bytes=1_000_000, max_depth=16)
        with self._backend.batch():
            if policy is None:
                self._backend.delete(
                    tenant, Collection.POLICIES, Where(eq={"id": screening.POLICY_ID})
                )
            else:
                record = PolicyRecord(
                    id=screening.POLICY_ID,
                    tenant=tenant,
                    policy=policy.to_json(),
                    updated_by=audit_log.current_actor(),
                )
                self._backend.upsert(tenant, Collection.POLICIES, [record])
            self._ctx.audit(
                tenant, "set_policy", f"tenant:{tenant}", {"cleared": int(policy is None)}
            )
        self._ctx.forget_policy(tenant)
        return self.get()


class AuditLog(Service):
    """The tenant's audit log: every mutation, who, what, when (ids and counts, no content)."""

    __slots__ = ()

    def list(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        target: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """The tenant's audit events, oldest first, filtered."""
        return audit_log.query(
            self._ctx,
            self._tenant,
            since=since,
            until=until,
            action=action,
            target=target,
            actor=actor,
            limit=limit,
        )

    def export(
        self,
        path: str | Path,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
    ) -> int:
        """Write the tenant's audit events to ``path`` as JSON lines; returns how many."""
        target = validation.path(path, "path")
        events = self.list(since=since, until=until, action=action)
        try:
            return audit_log.write_jsonl(events, target)
        except OSError as exc:
            raise ValidationError(
                f"cannot write the audit log to {target}: {exc.strerror or exc}"
            ) from exc


class ApiKeys(Service):
    """Bearer keys for this tenant (MCP over HTTP, the REST API), with roles."""

    __slots__ = ()

    def add(
        self, role: AccessRole | str, name: str, *, expires_at: datetime | None = None
    ) -> IssuedKey:
        """Issue a key with ``role`` (read, write or admin), valid until ``expires_at``
        (a future time; default: until revoked). The returned secret is the bearer
        token; it is not stored and cannot be shown again."""
        validation.text(name, "name", 100, required=True, single_line=True)
        expires_at = validation.optional_timestamp(expires_at, "expires_at")
        tenant = self._tenant
        record, token = new_key(tenant, role, name, audit_log.current_actor(), expires_at)
        details: dict[str, int | str] = {"role": record.role}
        if record.expires_at is not None:
            details["expires_at"] = record.expires_at.isoformat()
        with self._backend.batch():
            self._backend.upsert(tenant, Collection.API_KEYS, [record])
            self._ctx.audit(tenant, "create_api_key", f"api_key:{record.id}", details)
        return IssuedKey(record.id, token)

    def list(self, *, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """The tenant's keys, oldest first (digests only; secrets are never stored)."""
        validation.flag(include_revoked, "include_revoked")
        keys = self._backend.find(self._tenant, Collection.API_KEYS, order_by="created_at")
        return [k for k in keys if include_revoked or k.revoked_at is None]

    def get(self, key_id: str) -> ApiKey:
        """A key's record by id."""
        validation.record_id(key_id, "API key")
        tenant = self._tenant
        found = self._backend.get(tenant, Collection.API_KEYS, [key_id])
        if not found:
            raise NotFoundError(
                f"API key {key_id!r} does not exist in tenant {tenant!r}", kind="api_key"
            )
        return found[0]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key at once (idempotent); its record stays for the audit trail."""
        tenant = self._tenant
        key = self.get(key_id)
        if key.revoked_at is not None:
            return key
        key = key.model_copy(update={"revoked_at": utcnow()})
        with self._backend.batch():
            self._backend.upsert(tenant, Collection.API_KEYS, [key])
            self._ctx.audit(tenant, "revoke_api_key", f"api_key:{key.id}")
        return key


class Governance(Service):
    """Policy, audit log, API keys, redaction and retention of this tenant."""

    __slots__ = ("audit", "keys", "policy")

    def __init__(self, memory: Memory) -> None:
        super().__init__(memory)
        self.policy = Policies(memory)
        self.audit = AuditLog(memory)
        self.keys = ApiKeys(memory)

    def redact(self, text: str) -> str:
        """``text`` as the tenant's redaction policy would store it."""
        limits = self._ctx.settings.limits
        validation.text(text, "text", limits.message_chars, limit="message_chars")
        return self._ctx.policy(self._tenant).redactor.redact(text)

    def gc(self, *, now: datetime | None = None) -> DeletionReceipt:
        """Delete what this tenant's retention policy says has expired at ``now``
        (default: the current time). Expired records go like any deletion
        (cascades, caches, index purge) and the run is audited. It also finishes
        file purges earlier deletions left pending (the receipt's ``purged``)."""
        tenant = self._tenant
        return run_retention(self._m, [tenant], now, label=tenant)


def run_retention(
    memory: Memory, tenants: builtins.list[str], now: datetime | None, *, label: str
) -> DeletionReceipt:
    """Expire records in ``tenants`` (one receipt named ``label``, counts summed)."""
    ctx = memory._ctx
    when = validation.optional_timestamp(now, "now") or utcnow()
    total: Counter[str] = Counter()
    for name in tenants:
        counts = expire(ctx, name, when)
        if counts:
            ctx.audit(name, "gc", f"tenant:{name}", dict(counts))
        total.update(counts)
    if total:
        erasure.forget_cached(ctx)
    purged = erasure.purge(ctx)  # also finishes purges earlier deletions left pending
    return DeletionReceipt(
        tenant=label,
        target="retention",
        deleted=dict(total),
        at=when,
        purged=purged,
    )
