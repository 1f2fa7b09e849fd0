"""Trait schema and precedence on the engine: a part of :class:`memory_core.Memory`
(through :class:`memory_core.observations.ObservationsMixin`).

See :mod:`memory_core.extraction.traits` for the rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from memory_core._engine import ProfileRef
from memory_core.backends.base import Collection, Where
from memory_core.config import DEFAULT_TENANT
from memory_core.errors import ValidationError
from memory_core.extraction.traits import (
    BUILTIN_TRAITS,
    TraitView,
    coerce_trait_value,
    effective_traits,
)
from memory_core.governance.audit import record as audit_record
from memory_core.models import Trait, TraitDefinition, TraitType
from memory_core.profiles import ProfilesMixin

__all__ = ["TraitsMixin"]

_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


class TraitsMixin(ProfilesMixin):
    """Declared trait keys, schema-checked ``set_trait``, effective values and conflicts."""

    # -- traits: schema and precedence -------------------------------------------
    def declare_trait(
        self,
        key: str,
        type: TraitType | str,  # noqa: A002 - the natural name for a declaration
        *,
        tenant: str = DEFAULT_TENANT,
        description: str = "",
        values: Sequence[str] = (),
    ) -> TraitDefinition:
        """Declare a custom trait key with a type (``str``, ``int``, ``float``,
        ``bool``, ``enum`` with ``values``); values set later are checked against it
        (and screened by the tenant's policy, see ``set_trait``). Audited
        (``declare_trait``)."""
        self._tenant(tenant)
        if not _KEY.fullmatch(key):
            raise ValidationError(f"invalid trait key {key!r}: lower-case snake_case, e.g. 'tier'")
        try:
            kind = TraitType(type)
        except ValueError:
            allowed = ", ".join(t.value for t in TraitType)
            raise ValidationError(f"unknown trait type {type!r}; use one of: {allowed}") from None
        if (kind is TraitType.ENUM) != bool(values):
            raise ValidationError("give values for an enum trait, and only for an enum trait")
        definition = TraitDefinition(
            id=key, tenant=tenant, type=kind, description=description, values=tuple(values)
        )
        with self.backend.batch():
            self.backend.upsert(tenant, Collection.TRAIT_SCHEMA, [definition])
            audit_record(
                self, tenant, "declare_trait", f"trait_schema:{key}", details={"type": kind.value}
            )
        return definition

    def trait_schema(self, *, tenant: str = DEFAULT_TENANT) -> list[TraitDefinition]:
        """The built-in trait keys and those declared in this tenant (declared ones win)."""
        return sorted(self._schema(tenant).values(), key=lambda d: d.id)

    def _schema(self, tenant: str) -> dict[str, TraitDefinition]:
        self._tenant(tenant)
        declared = self.backend.find(tenant, Collection.TRAIT_SCHEMA)
        return {
            **BUILTIN_TRAITS,
            **{d.id: d for d in declared if isinstance(d, TraitDefinition)},
        }

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
        """Set a trait on a profile (one value per key and source), checked against
        the trait schema. Sources rank: systems of record (``api``, ``crm``, ...) >
        ``agent`` > ``extracted``; see :meth:`trait_views`."""
        checked = coerce_trait_value(self._schema(tenant).get(key), key, value)
        return super().set_trait(
            ref,
            key,
            checked,
            tenant=tenant,
            source=source,
            confidence=confidence,
            evidence=evidence,
        )

    def trait_views(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> list[TraitView]:
        """The effective value of each trait key (highest-ranked source, then newest),
        with the differing values of other sources as visible ``conflicts``."""
        profile = self.get_profile(ref, tenant=tenant)
        return effective_traits(self._profile_traits(tenant, profile.id))

    def trait_conflicts(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> list[TraitView]:
        """The trait keys whose sources disagree (e.g. the CRM and the conversation)."""
        return [v for v in self.trait_views(ref, tenant=tenant) if v.conflicts]

    def _profile_traits(self, tenant: str, profile_id: str) -> list[Trait]:
        found = self.backend.find(
            tenant, Collection.TRAITS, Where(eq={"profile_id": profile_id}), order_by="key"
        )
        return [t for t in found if isinstance(t, Trait)]
