"""The governance part of :class:`memory_core.Memory`: policies, redaction, audit,
retention, erasure, subject access export and API keys.

Profile mutations defined by :class:`~memory_core.profiles.ProfilesMixin` are
wrapped here so that each is audited (and trait values are screened by the
policy); the engine's own mutations call :meth:`GovernanceMixin._audit` and
the erasure helpers directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from memory_core._engine import ProfileRef
from memory_core.backends.base import Collection, Where
from memory_core.config import DEFAULT_TENANT
from memory_core.errors import NotFoundError, ValidationError
from memory_core.governance import audit as _audit_log
from memory_core.governance import erasure, screening
from memory_core.governance.access import IssuedKey, Principal, authorize, new_key
from memory_core.governance.export import build_export
from memory_core.governance.policy import Policy
from memory_core.governance.retention import expire
from memory_core.governance.screening import IngestScreen
from memory_core.models import (
    AccessRole,
    ApiKey,
    AuditEvent,
    ConversationIn,
    DeletionReceipt,
    Identifier,
    Message,
    PolicyRecord,
    Profile,
    Trait,
    as_utc,
    utcnow,
)
from memory_core.profiles import ProfilesMixin

__all__ = ["GovernanceMixin"]


class GovernanceMixin(ProfilesMixin):
    """Policies, audit, retention, erasure, export and access keys."""

    # -- policies -----------------------------------------------------------------
    def get_policy(self, *, tenant: str = DEFAULT_TENANT) -> Policy:
        """The tenant's policy: the one set with :meth:`set_policy`, else the
        settings' (``policies.<tenant>``, then ``policies."*"``), else the defaults."""
        self._tenant(tenant)
        return screening.load_policy(self, tenant)[0]

    def set_policy(
        self, policy: Policy | Mapping[str, Any] | None, *, tenant: str = DEFAULT_TENANT
    ) -> Policy:
        """Store the tenant's policy (``None``: remove it, so the settings apply
        again). Applies to what is written from now on; run :meth:`gc` to apply a
        shorter retention to what is stored."""
        self._tenant(tenant)
        if policy is not None and not isinstance(policy, Policy):
            try:
                policy = Policy.model_validate(dict(policy))
            except PydanticValidationError as exc:
                raise ValidationError(f"invalid policy: {exc}") from exc
        with self.backend.batch():
            if policy is None:
                self.backend.delete(
                    tenant, Collection.POLICIES, Where(eq={"id": screening.POLICY_ID})
                )
            else:
                record = PolicyRecord(
                    id=screening.POLICY_ID,
                    tenant=tenant,
                    policy=policy.to_json(),
                    updated_by=_audit_log.current_actor(),
                )
                self.backend.upsert(tenant, Collection.POLICIES, [record])
            self._audit(tenant, "set_policy", f"tenant:{tenant}", {"cleared": int(policy is None)})
        screening.invalidate(self, tenant)
        return self.get_policy(tenant=tenant)

    def redact(self, text: str, *, tenant: str = DEFAULT_TENANT) -> str:
        """``text`` as the tenant's redaction policy would store it."""
        self._tenant(tenant)
        return screening.tenant_policy(self, tenant).redactor.redact(text)

    def _screen_ingest(
        self, tenant: str, conversation: ConversationIn
    ) -> tuple[ConversationIn, IngestScreen]:
        return screening.screen_conversation(self, tenant, conversation)

    # -- audit --------------------------------------------------------------------
    def _audit(
        self,
        tenant: str,
        action: str,
        target: str,
        details: Mapping[str, int | str] | None = None,
    ) -> None:
        _audit_log.record(self, tenant, action, target, details=details)

    def audit(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        target: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """The tenant's audit events, oldest first. ``tenant="_system"`` holds the
        creation and deletion of tenants."""
        if tenant != _audit_log.SYSTEM_TENANT:
            self._tenant(tenant)
        return _audit_log.query(
            self,
            tenant,
            since=since,
            until=until,
            action=action,
            target=target,
            actor=actor,
            limit=limit,
        )

    def export_audit(
        self,
        path: str | Path,
        *,
        tenant: str = DEFAULT_TENANT,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
    ) -> int:
        """Write the tenant's audit events to ``path`` as JSON lines; returns how many."""
        events = self.audit(tenant=tenant, since=since, until=until, action=action)
        return _audit_log.write_jsonl(events, path)

    # -- erasure (used by the engine's deletions) ---------------------------------
    def _erased(
        self, receipt: DeletionReceipt, action: str, *, following: Sequence[Message] = ()
    ) -> DeletionReceipt:
        """Complete a committed deletion: audit it, re-embed the turns after deleted
        messages (``following``), clear caches, purge the backend's files."""
        if action == "delete_tenant":
            screening.invalidate(self, receipt.tenant)
            self._forget_tenant_caches(receipt.tenant)
        return erasure.finish(self, receipt, action, following=following)

    # -- retention ----------------------------------------------------------------
    def gc(self, *, tenant: str | None = None, now: datetime | None = None) -> DeletionReceipt:
        """Delete what the retention policies say has expired at ``now`` (default:
        the current time), in one tenant or all. Expired records go like any
        deletion (cascades, caches, index purge) and each tenant's run is audited."""
        when = as_utc(now) if now is not None else utcnow()
        tenants = (
            [self._tenant(tenant)]
            if tenant is not None
            else [t for t in self.backend.list_tenants() if t != _audit_log.SYSTEM_TENANT]
        )
        total: Counter[str] = Counter()
        for name in tenants:
            counts = expire(self, name, when)
            if counts:
                self._audit(name, "gc", f"tenant:{name}", dict(counts))
            total.update(counts)
        if total:
            erasure.forget_cached(self)
            erasure.purge(self)
        return DeletionReceipt(
            tenant=tenant if tenant is not None else "*",
            target="retention",
            deleted=dict(total),
            at=when,
        )

    # -- subject access -----------------------------------------------------------
    def export_profile(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        """Everything held about a customer (by profile id or any identifier), as one
        JSON-ready document; see :class:`memory_core.governance.export.ProfileExport`."""
        profile = self.get_profile(ref, tenant=tenant)
        document = build_export(self, tenant, profile)
        self._audit(tenant, "export_profile", f"profile:{profile.id}", document.counts())
        return document.model_dump(mode="json")

    # -- access keys --------------------------------------------------------------
    def create_api_key(
        self, role: AccessRole | str, name: str, *, tenant: str = DEFAULT_TENANT
    ) -> IssuedKey:
        """Issue a key for ``tenant`` with ``role`` (read, write or admin). The
        returned secret is the bearer token; it is not stored and cannot be shown again."""
        self._tenant(tenant)
        record, token = new_key(tenant, role, name, _audit_log.current_actor())
        with self.backend.batch():
            self.backend.upsert(tenant, Collection.API_KEYS, [record])
            self._audit(tenant, "create_api_key", f"api_key:{record.id}", {"role": record.role})
        return IssuedKey(record.id, token)

    def list_api_keys(
        self, *, tenant: str = DEFAULT_TENANT, include_revoked: bool = False
    ) -> list[ApiKey]:
        """The tenant's keys, oldest first (digests only; secrets are never stored)."""
        self._tenant(tenant)
        keys = self.backend.find(tenant, Collection.API_KEYS, order_by="created_at")
        return [
            k for k in keys if isinstance(k, ApiKey) and (include_revoked or k.revoked_at is None)
        ]

    def revoke_api_key(self, key_id: str, *, tenant: str = DEFAULT_TENANT) -> ApiKey:
        """Revoke a key at once (idempotent); its record stays for the audit trail."""
        self._tenant(tenant)
        found = self.backend.get(tenant, Collection.API_KEYS, [key_id])
        if not found or not isinstance(found[0], ApiKey):
            raise NotFoundError(f"API key {key_id!r} does not exist in tenant {tenant!r}")
        key = found[0]
        if key.revoked_at is not None:
            return key
        key = key.model_copy(update={"revoked_at": utcnow()})
        with self.backend.batch():
            self.backend.upsert(tenant, Collection.API_KEYS, [key])
            self._audit(tenant, "revoke_api_key", f"api_key:{key.id}")
        return key

    def authorize(
        self,
        token: str,
        *,
        tenant: str | None = None,
        role: AccessRole | str | None = None,
    ) -> Principal:
        """The tenant and role a bearer token grants; raises
        :class:`~memory_core.governance.access.AccessDenied` if it is invalid,
        revoked, for another ``tenant`` or lacks ``role``."""
        return authorize(self, token, tenant=tenant, role=role)

    # -- audited profile mutations --------------------------------------------------
    def create_profile(
        self,
        identifiers: Iterable[str | Identifier] = (),
        *,
        tenant: str = DEFAULT_TENANT,
        display_name: str | None = None,
    ) -> Profile:
        with self.backend.batch():
            profile = super().create_profile(identifiers, tenant=tenant, display_name=display_name)
            self._audit(tenant, "create_profile", f"profile:{profile.id}")
        return profile

    def link_identifier(
        self, ref: ProfileRef, identifier: str | Identifier, *, tenant: str = DEFAULT_TENANT
    ) -> Profile:
        with self.backend.batch():
            profile = super().link_identifier(ref, identifier, tenant=tenant)
            kind = self._parse(identifier).kind.value
            self._audit(tenant, "link_identifier", f"profile:{profile.id}", {"kind": kind})
        return profile

    def merge_profiles(
        self, a: ProfileRef, b: ProfileRef, *, tenant: str = DEFAULT_TENANT, reason: str = "manual"
    ) -> Profile:
        with self.backend.batch():
            before = {self.get_profile(a, tenant=tenant).id, self.get_profile(b, tenant=tenant).id}
            survivor = super().merge_profiles(a, b, tenant=tenant, reason=reason)
            merged = ",".join(sorted(before - {survivor.id}))
            if merged:  # merging a profile with itself changes nothing
                self._audit(tenant, "merge_profiles", f"profile:{survivor.id}", {"merged": merged})
        return survivor

    def set_trait(
        self,
        ref: ProfileRef,
        key: str,
        value: Any,
        *,
        tenant: str = DEFAULT_TENANT,
        source: str = "api",
        confidence: float = 1.0,
        evidence: Sequence[str] = (),
    ) -> Trait:
        self._tenant(tenant)
        value = screening.screen_trait(self, tenant, key, value)
        with self.backend.batch():
            trait = super().set_trait(
                ref,
                key,
                value,
                tenant=tenant,
                source=source,
                confidence=confidence,
                evidence=evidence,
            )
            details = {"key": key, "source": source}
            self._audit(tenant, "set_trait", f"profile:{trait.profile_id}", details)
        return trait

    def delete_trait(
        self, ref: ProfileRef, key: str, *, tenant: str = DEFAULT_TENANT, source: str | None = None
    ) -> DeletionReceipt:
        receipt = super().delete_trait(ref, key, tenant=tenant, source=source)
        return self._erased(receipt, "delete_trait")
