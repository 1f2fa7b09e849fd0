"""Tenant administration: the calls that span tenants (create, list, delete,
authorize a key of any tenant, the system audit log, retention everywhere)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING

from memory_core.context import check_tenant_name
from memory_core.governance import audit as audit_log
from memory_core.governance.access import Principal, authorize
from memory_core.models import AccessRole, AuditEvent, DeletionReceipt
from memory_core.services._base import Service
from memory_core.services.governance import run_retention
from memory_core.validation import choice

if TYPE_CHECKING:
    from memory_core.memory import Memory

__all__ = ["Tenants"]


class Tenants(Service):
    """Tenants of the store. Each is a hard partition; ``default`` always exists."""

    __slots__ = ()

    def add(self, name: str) -> Memory:
        """Create a tenant (idempotent) and return its handle."""
        check_tenant_name(name)
        ctx = self._ctx
        if name not in ctx.backend.list_tenants():
            ctx.backend.ensure_tenant(name)
            ctx.audit(audit_log.SYSTEM_TENANT, "create_tenant", f"tenant:{name}")
        ctx.tenants.known(name)
        return self._m.tenant(name)

    def list(self) -> builtins.list[str]:
        """The tenants' names."""
        return [t for t in self._ctx.backend.list_tenants() if t != audit_log.SYSTEM_TENANT]

    def delete(self, name: str) -> DeletionReceipt:
        """Delete a tenant and everything in it, from every index."""
        check_tenant_name(name)
        ctx = self._ctx
        ctx.tenants.require(name)
        counts = ctx.backend.drop_tenant(name)
        ctx.tenants.forget(name)
        receipt = DeletionReceipt(tenant=name, target=f"tenant:{name}", deleted=counts)
        return ctx.erased(receipt, "delete_tenant")

    def authorize(
        self,
        token: str,
        *,
        tenant: str | None = None,
        role: AccessRole | str | None = None,
    ) -> Principal:
        """The tenant and role a bearer token grants; raises
        :class:`~memory_core.errors.AccessDenied` if it is invalid, revoked, for
        another ``tenant`` (when given) or lacks ``role``."""
        if tenant is not None:
            check_tenant_name(tenant)
        if role is not None:
            role = choice(AccessRole, role, "role")
        return authorize(self._ctx, token, tenant=tenant, role=role)

    def audit(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Tenant-level events (creation and deletion of tenants), oldest first."""
        return audit_log.query(
            self._ctx,
            audit_log.SYSTEM_TENANT,
            since=since,
            until=until,
            action=action,
            limit=limit,
        )

    def gc(self, *, now: datetime | None = None) -> DeletionReceipt:
        """Run every tenant's retention policy (see ``memory.governance.gc``)."""
        return run_retention(self._m, self.list(), now, label="*")
