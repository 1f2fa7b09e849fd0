"""Profiles, identifiers and traits: identity resolution across channels,
merges, and typed profile attributes. A part of :class:`memory_core.memory.Memory`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from memory_core._engine import EngineBase, ProfileRef, embedding_texts
from memory_core.backends.base import COLLECTIONS, Collection, Vectors, Where
from memory_core.config import DEFAULT_TENANT
from memory_core.errors import NotFoundError, ValidationError
from memory_core.identity import normalize
from memory_core.models import (
    DeletionReceipt,
    Identifier,
    IdentifierKind,
    IdentifierLink,
    MergeRecord,
    Message,
    Profile,
    Record,
    Trait,
    new_id,
    utcnow,
)

__all__ = ["ProfilesMixin", "trait_id"]


def trait_id(profile_id: str, key: str, source: str) -> str:
    return f"{profile_id}:{key}:{source}"


class ProfilesMixin(EngineBase):
    """Profile lookup, identity resolution, merges and traits."""

    # -- identity ---------------------------------------------------------------
    def identifier(self, kind: IdentifierKind | str, value: str) -> Identifier:
        """Normalise an identifier with the configured default region."""
        return normalize(kind, value, default_region=self.settings.default_region)

    def find_profile(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> Profile | None:
        """The profile a profile id or identifier points to, or None."""
        try:
            return self.get_profile(ref, tenant=tenant)
        except NotFoundError:
            return None

    def get_profile(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> Profile:
        """The live profile for an id (merged ids resolve to the survivor) or identifier."""
        self._tenant(tenant)
        if isinstance(ref, str) and ref.startswith("prf_"):
            return self._live_profile(tenant, ref)
        ident = self._parse(ref)
        link = self._get_record(tenant, Collection.IDENTIFIERS, ident.key)
        if not isinstance(link, IdentifierLink):
            raise NotFoundError(f"no profile with identifier {ident} in tenant {tenant!r}")
        return self._live_profile(tenant, link.profile_id)

    def list_profiles(
        self, *, tenant: str = DEFAULT_TENANT, limit: int = 100, offset: int = 0
    ) -> list[Profile]:
        """Live (not merged-away) profiles, oldest first."""
        self._tenant(tenant)
        found = self.backend.find(
            tenant,
            Collection.PROFILES,
            Where(eq={"merged_into": None}),
            order_by="created_at",
            limit=limit,
            offset=offset,
        )
        return [p for p in found if isinstance(p, Profile)]

    def identifiers(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> list[Identifier]:
        """The identifiers linked to a profile."""
        profile = self.get_profile(ref, tenant=tenant)
        links = self.backend.find(
            tenant, Collection.IDENTIFIERS, Where(eq={"profile_id": profile.id}), order_by="id"
        )
        return [link.identifier for link in links if isinstance(link, IdentifierLink)]

    def create_profile(
        self,
        identifiers: Iterable[str | Identifier] = (),
        *,
        tenant: str = DEFAULT_TENANT,
        display_name: str | None = None,
    ) -> Profile:
        """Resolve these identifiers to a profile, creating one if none matches
        (and merging profiles if they match several)."""
        idents = [self._parse(i) for i in identifiers]
        with self._resolve_lock, self.backend.batch():
            profile, _ = self._resolve(tenant, idents, create=True)
            assert profile is not None
            if display_name and profile.display_name != display_name:
                profile = profile.model_copy(
                    update={"display_name": display_name, "updated_at": utcnow()}
                )
                self.backend.upsert(tenant, Collection.PROFILES, [profile])
        return profile

    def link_identifier(
        self, ref: ProfileRef, identifier: str | Identifier, *, tenant: str = DEFAULT_TENANT
    ) -> Profile:
        """Link an identifier to a profile. If it already belongs to another
        profile, the two are merged; the returned profile is the survivor."""
        ident = self._parse(identifier)
        with self._resolve_lock, self.backend.batch():
            profile = self.get_profile(ref, tenant=tenant)
            survivor, _ = self._resolve(tenant, [ident], create=False, anchor=profile)
            assert survivor is not None
        return survivor

    def merge_profiles(
        self, a: ProfileRef, b: ProfileRef, *, tenant: str = DEFAULT_TENANT, reason: str = "manual"
    ) -> Profile:
        """Merge two profiles; the older one survives. Returns the survivor."""
        with self._resolve_lock, self.backend.batch():
            pa = self.get_profile(a, tenant=tenant)
            pb = self.get_profile(b, tenant=tenant)
            if pa.id == pb.id:
                return pa
            return self._merge(tenant, [pa, pb], reason)

    def _resolve(
        self,
        tenant: str,
        idents: Sequence[Identifier],
        *,
        create: bool,
        anchor: Profile | None = None,
    ) -> tuple[Profile | None, list[str]]:
        """Find (or create) the one profile these identifiers belong to, merging
        profiles they split across. Must run under the resolve lock in a batch."""
        self._tenant(tenant)
        keys = sorted({i.key for i in idents})
        links = [
            link
            for link in self.backend.get(tenant, Collection.IDENTIFIERS, keys)
            if isinstance(link, IdentifierLink)
        ]
        candidates: dict[str, Profile] = {}
        if anchor is not None:
            candidates[anchor.id] = anchor
        for link in links:
            live = self._live_profile(tenant, link.profile_id)
            candidates[live.id] = live
        merged: list[str] = []
        if not candidates:
            if not create:
                return None, []
            profile = Profile(id=new_id("prf"), tenant=tenant)
            self.backend.upsert(tenant, Collection.PROFILES, [profile])
        elif len(candidates) == 1:
            profile = next(iter(candidates.values()))
        else:
            ordered = sorted(candidates.values(), key=lambda p: (p.created_at, p.id))
            merged = [p.id for p in ordered[1:]]
            profile = self._merge(tenant, ordered, "identifiers matched several profiles")
        known = {link.id for link in links if link.profile_id == profile.id}
        fresh = [
            IdentifierLink(
                id=i.key, tenant=tenant, kind=i.kind, value=i.value, profile_id=profile.id
            )
            for i in {i.key: i for i in idents}.values()
            if i.key not in known
        ]
        if fresh:
            self.backend.upsert(tenant, Collection.IDENTIFIERS, fresh)
        return profile, merged

    def _merge(self, tenant: str, profiles: Sequence[Profile], reason: str) -> Profile:
        """Merge profiles into the oldest (ties: smallest id). Every record of the
        others moves to the survivor; the others stay as tombstones that resolve."""
        ordered = sorted(profiles, key=lambda p: (p.created_at, p.id))
        survivor, others = ordered[0], ordered[1:]
        other_ids = [p.id for p in others]
        now = utcnow()
        for collection, spec in COLLECTIONS.items():
            if "profile_id" not in spec.filter_fields:
                continue
            moving = self.backend.find(tenant, collection, Where(any_of={"profile_id": other_ids}))
            if not moving:
                continue
            if collection is Collection.TRAITS:
                moving = self._merge_traits(tenant, survivor.id, moving)
            moved = [r.model_copy(update={"profile_id": survivor.id}) for r in moving]
            if spec.searchable and moved:
                texts = self._reembedding_texts(collection, moved)
                vectors = Vectors(self.embedder.model_id, self.embedder.embed_batch(texts))
                self.backend.upsert(tenant, collection, moved, vectors)
            elif moved:
                self.backend.upsert(tenant, collection, moved)
        tombstones: list[Record] = [
            p.model_copy(update={"merged_into": survivor.id, "updated_at": now}) for p in others
        ]
        chained = self.backend.find(
            tenant, Collection.PROFILES, Where(any_of={"merged_into": other_ids})
        )
        tombstones += [
            p.model_copy(update={"merged_into": survivor.id, "updated_at": now}) for p in chained
        ]
        survivor = survivor.model_copy(
            update={
                "updated_at": now,
                "display_name": survivor.display_name
                or next((p.display_name for p in others if p.display_name), None),
            }
        )
        self.backend.upsert(tenant, Collection.PROFILES, [survivor, *tombstones])
        self.backend.upsert(
            tenant,
            Collection.MERGES,
            [
                MergeRecord(id=pid, tenant=tenant, survivor_id=survivor.id, reason=reason)
                for pid in other_ids
            ],
        )
        return survivor

    def _reembedding_texts(self, collection: Collection, records: list[Record]) -> list[str]:
        """The texts whose embeddings ``records`` had, to embed them again."""
        spec = COLLECTIONS[collection]
        assert spec.text_field is not None
        if collection is not Collection.MESSAGES:
            return [str(getattr(r, spec.text_field)) for r in records]
        out: dict[str, str] = {}
        conversations = sorted({r.conversation_id for r in records if isinstance(r, Message)})
        for conv_id in conversations:
            everything = [
                m
                for m in self.backend.find(
                    records[0].tenant,
                    Collection.MESSAGES,
                    Where(eq={"conversation_id": conv_id}),
                    order_by="seq",
                )
                if isinstance(m, Message)
            ]
            texts = embedding_texts(
                [m.text for m in everything], None, self.settings.embed_context_turns
            )
            out.update({m.id: t for m, t in zip(everything, texts, strict=True)})
        return [out.get(r.id, str(getattr(r, spec.text_field))) for r in records]

    def _merge_traits(self, tenant: str, survivor_id: str, moving: list[Record]) -> list[Record]:
        """Traits moving onto the survivor keep the newest value per (key, source)."""
        existing = {
            (t.key, t.source): t
            for t in self.backend.find(
                tenant, Collection.TRAITS, Where(eq={"profile_id": survivor_id})
            )
            if isinstance(t, Trait)
        }
        out: list[Record] = []
        stale: list[str] = []
        for t in moving:
            if not isinstance(t, Trait):
                continue
            mine = existing.get((t.key, t.source))
            if mine is not None and mine.updated_at >= t.updated_at:
                stale.append(t.id)
                continue
            if mine is not None:
                stale.append(mine.id)
            out.append(t.model_copy(update={"id": trait_id(survivor_id, t.key, t.source)}))
        if stale:
            self.backend.delete(tenant, Collection.TRAITS, Where(any_of={"id": stale}))
        self.backend.delete(tenant, Collection.TRAITS, Where(any_of={"id": [t.id for t in moving]}))
        return out

    # -- traits -----------------------------------------------------------------
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
        """Set a trait on a profile (one value per key and source)."""
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", key):
            raise ValidationError(f"invalid trait key {key!r}: lower-case snake_case, e.g. 'tier'")
        if not 0.0 <= confidence <= 1.0:
            raise ValidationError("confidence must be within [0, 1]")
        profile = self.get_profile(ref, tenant=tenant)
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
        self.backend.upsert(tenant, Collection.TRAITS, [trait])
        return trait

    def traits(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> list[Trait]:
        profile = self.get_profile(ref, tenant=tenant)
        found = self.backend.find(
            tenant, Collection.TRAITS, Where(eq={"profile_id": profile.id}), order_by="key"
        )
        return [t for t in found if isinstance(t, Trait)]

    def delete_trait(
        self, ref: ProfileRef, key: str, *, tenant: str = DEFAULT_TENANT, source: str | None = None
    ) -> DeletionReceipt:
        profile = self.get_profile(ref, tenant=tenant)
        where = Where(eq={"profile_id": profile.id, "key": key})
        if source is not None:
            where = where.and_(Where(eq={"source": source}))
        n = self.backend.delete(tenant, Collection.TRAITS, where)
        return DeletionReceipt(
            tenant=tenant, target=f"trait:{profile.id}:{key}", deleted={"traits": n}
        )
