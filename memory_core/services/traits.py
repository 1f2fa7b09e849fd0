"""Traits: typed profile attributes, one value per key and source, checked
against the trait schema and screened by the tenant's policy.

See :mod:`memory_core.extraction.traits` for the schema and precedence rules.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from typing import Any

from memory_core.backends.base import Collection, Where
from memory_core.context import ProfileRef
from memory_core.errors import ValidationError
from memory_core.extraction.traits import (
    BUILTIN_TRAITS,
    TraitView,
    coerce_trait_value,
    effective_traits,
    trait_id,
)
from memory_core.governance import screening
from memory_core.models import DeletionReceipt, Trait, TraitDefinition, TraitType
from memory_core.services._base import Service
from memory_core.validation import (
    choice,
    json_value,
    number,
    optional_text,
    source_name,
    strings,
    text,
)

__all__ = ["Traits", "trait_id"]

_KEY = re.compile(r"[a-z][a-z0-9_]*")


class Traits(Service):
    """Profile traits, their schema (declared keys), effective values and conflicts,
    in this handle's tenant. Setting, deleting and declaring are audited."""

    __slots__ = ()

    # -- values -------------------------------------------------------------------
    def set(
        self,
        ref: ProfileRef,
        key: str,
        value: Any,
        *,
        source: str = "api",
        confidence: float = 1.0,
        evidence: Sequence[str] = (),
    ) -> Trait:
        """Set a trait on a profile (one value per key and source).

        The value is screened by the tenant's policy (a denied key is refused,
        strings are redacted), then checked against the trait schema. Sources
        rank: systems of record (``api``, ``crm``, ...) > ``agent`` >
        ``extracted``; see :meth:`views`. Audited (``set_trait``).
        """
        limits = self._ctx.settings.limits
        self._check_key(key)
        json_value(
            value,
            f"the value of trait {key!r}",
            max_bytes=limits.trait_value_bytes,
            max_depth=limits.metadata_depth,
            limit="trait_value_bytes",
        )
        source_name(source, limits)
        confidence = number(confidence, "confidence", 0.0, 1.0)
        evidence = strings(evidence, "evidence", max_items=limits.list_items, max_chars=200)
        tenant = self._tenant
        value = screening.screen_trait(self._ctx, tenant, key, value)
        with self._backend.batch():
            value = coerce_trait_value(self._schema().get(key), key, value)
            profile = self._m.profiles.get(ref)
            trait = Trait(
                id=trait_id(profile.id, key, source),
                tenant=tenant,
                profile_id=profile.id,
                key=key,
                value=value,
                source=source,
                confidence=confidence,
                evidence=tuple(evidence),
            )
            self._backend.upsert(tenant, Collection.TRAITS, [trait])
            details = {"key": key, "source": source}
            self._ctx.audit(tenant, "set_trait", f"profile:{trait.profile_id}", details)
        return trait

    def list(self, ref: ProfileRef) -> builtins.list[Trait]:
        """Every trait record of a profile (each source's value), by key."""
        profile = self._m.profiles.get(ref)
        return self._profile_traits(profile.id)

    def views(self, ref: ProfileRef) -> builtins.list[TraitView]:
        """The effective value of each trait key (highest-ranked source, then newest),
        with the differing values of other sources as visible ``conflicts``."""
        profile = self._m.profiles.get(ref)
        return effective_traits(self._profile_traits(profile.id))

    def conflicts(self, ref: ProfileRef) -> builtins.list[TraitView]:
        """The trait keys whose sources disagree (e.g. the CRM and the conversation)."""
        return [v for v in self.views(ref) if v.conflicts]

    def delete(self, ref: ProfileRef, key: str, *, source: str | None = None) -> DeletionReceipt:
        """Erase a trait key of a profile (every source's value, or only ``source``'s).
        Audited (``delete_trait``)."""
        limits = self._ctx.settings.limits
        text(key, "key", limits.trait_key_chars, limit="trait_key_chars", single_line=True)
        optional_text(source, "source", limits.source_chars, limit="source_chars", single_line=True)
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        where = Where(eq={"profile_id": profile.id, "key": key})
        if source is not None:
            where = where.and_(Where(eq={"source": source}))
        n = self._backend.delete(tenant, Collection.TRAITS, where)
        receipt = DeletionReceipt(
            tenant=tenant, target=f"trait:{profile.id}:{key}", deleted={"traits": n}
        )
        return self._ctx.erased(receipt, "delete_trait")

    # -- schema -------------------------------------------------------------------
    def declare(
        self,
        key: str,
        type: TraitType | str,  # noqa: A002 - the natural name for a declaration
        *,
        description: str = "",
        values: Sequence[str] = (),
    ) -> TraitDefinition:
        """Declare a custom trait key with a type (``str``, ``int``, ``float``,
        ``bool``, ``enum`` with ``values``); values set later are checked against it
        (and screened by the tenant's policy, see :meth:`set`). Audited
        (``declare_trait``)."""
        limits = self._ctx.settings.limits
        self._check_key(key)
        kind = choice(TraitType, type, "trait type")
        text(description, "description", limits.description_chars, limit="description_chars")
        values = strings(values, "values", max_items=limits.list_items, max_chars=200)
        tenant = self._tenant
        if (kind is TraitType.ENUM) != bool(values):
            raise ValidationError("give values for an enum trait, and only for an enum trait")
        definition = TraitDefinition(
            id=key, tenant=tenant, type=kind, description=description, values=tuple(values)
        )
        with self._backend.batch():
            self._backend.upsert(tenant, Collection.TRAIT_SCHEMA, [definition])
            self._ctx.audit(tenant, "declare_trait", f"trait_schema:{key}", {"type": kind.value})
        return definition

    def schema(self) -> builtins.list[TraitDefinition]:
        """The built-in trait keys and those declared in this tenant (declared ones win)."""
        return sorted(self._schema().values(), key=lambda d: d.id)

    def _check_key(self, key: object) -> str:
        """``key`` if it can be a trait key (lower-case snake_case, within the limit)."""
        limits = self._ctx.settings.limits
        key = text(key, "trait key", limits.trait_key_chars, limit="trait_key_chars")
        if not _KEY.fullmatch(key):
            raise ValidationError(f"invalid trait key {key!r}: lower-case snake_case, e.g. 'tier'")
        return key

    # -- used by the extraction service ---------------------------------------------
    def _schema(self) -> dict[str, TraitDefinition]:
        """Every known trait key's definition (built-in, overridden by declared)."""
        declared = self._backend.find(self._tenant, Collection.TRAIT_SCHEMA)
        return {
            **BUILTIN_TRAITS,
            **{d.id: d for d in declared if isinstance(d, TraitDefinition)},
        }

    def _profile_traits(self, profile_id: str) -> builtins.list[Trait]:
        """The trait records of a (live, resolved) profile id, by key."""
        found = self._backend.find(
            self._tenant, Collection.TRAITS, Where(eq={"profile_id": profile_id}), order_by="key"
        )
        return [t for t in found if isinstance(t, Trait)]
