"""Profiles and identity: resolution of identifiers across channels, links,
merges, subject access export and erasure of a customer."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence

from memory_core.backends.base import COLLECTIONS, Collection, Vectors, Where
from memory_core.context import ProfileRef
from memory_core.embedding.texts import embedding_texts
from memory_core.errors import NotFoundError
from memory_core.extraction.traits import trait_id
from memory_core.governance.export import ProfileExport, build_export
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
from memory_core.services._base import Service
from memory_core.validation import MAX_COUNT, integer, items, optional_text, record_id, text

__all__ = ["Profiles"]


class Profiles(Service):
    """Profile lookup, identity resolution, merges, export and erasure, in this
    handle's tenant. Creating, linking and merging are audited."""

    __slots__ = ()

    # -- identity ---------------------------------------------------------------
    def identifier(self, kind: IdentifierKind | str, value: str) -> Identifier:
        """Normalise an identifier with the configured default region."""
        settings = self._ctx.settings
        return normalize(
            kind,
            value,
            default_region=settings.default_region,
            max_chars=settings.limits.identifier_chars,
        )

    def find(self, ref: ProfileRef) -> Profile | None:
        """The profile a profile id or identifier points to, or None."""
        try:
            return self.get(ref)
        except NotFoundError:
            return None

    def get(self, ref: ProfileRef) -> Profile:
        """The live profile for an id (merged ids resolve to the survivor) or identifier."""
        tenant = self._tenant
        if isinstance(ref, str) and ref.startswith("prf_"):
            return self._ctx.live_profile(tenant, record_id(ref, "profile"))
        ident = self._ctx.parse(ref)
        found = self._backend.get(tenant, Collection.IDENTIFIERS, [ident.key])
        link = found[0] if found else None
        if not isinstance(link, IdentifierLink):
            raise NotFoundError(
                f"no profile with identifier {ident} in tenant {tenant!r}", kind="profile"
            )
        return self._ctx.live_profile(tenant, link.profile_id)

    def list(self, *, limit: int = 100, offset: int = 0) -> builtins.list[Profile]:
        """Live (not merged-away) profiles, oldest first."""
        limit, offset = (
            integer(limit, "limit", 0, MAX_COUNT),
            integer(offset, "offset", 0, MAX_COUNT),
        )
        found = self._backend.find(
            self._tenant,
            Collection.PROFILES,
            Where(eq={"merged_into": None}),
            order_by="created_at",
            limit=limit,
            offset=offset,
        )
        return [p for p in found if isinstance(p, Profile)]

    def identifiers(self, ref: ProfileRef) -> builtins.list[Identifier]:
        """The identifiers linked to a profile."""
        profile = self.get(ref)
        links = self._backend.find(
            self._tenant,
            Collection.IDENTIFIERS,
            Where(eq={"profile_id": profile.id}),
            order_by="id",
        )
        return [link.identifier for link in links if isinstance(link, IdentifierLink)]

    # -- audited mutations ------------------------------------------------------
    def add(
        self,
        identifiers: Iterable[str | Identifier] = (),
        *,
        display_name: str | None = None,
    ) -> Profile:
        """Resolve these identifiers to a profile, creating one if none matches
        (and merging profiles if they match several). Audited (``create_profile``)."""
        limits = self._ctx.settings.limits
        display_name = optional_text(
            display_name, "display_name", limits.name_chars, limit="name_chars", single_line=True
        )
        given = items(identifiers, "identifiers", limits.list_items)
        idents = [self._ctx.parse(i) for i in given]
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            profile, _ = self._resolve(idents, create=True)
            assert profile is not None
            if display_name and profile.display_name != display_name:
                profile = profile.model_copy(
                    update={"display_name": display_name, "updated_at": utcnow()}
                )
                self._backend.upsert(tenant, Collection.PROFILES, [profile])
            self._ctx.audit(tenant, "create_profile", f"profile:{profile.id}")
        return profile

    def link(self, ref: ProfileRef, identifier: str | Identifier) -> Profile:
        """Link an identifier to a profile. If it already belongs to another
        profile, the two are merged; the returned profile is the survivor.
        Audited (``link_identifier``)."""
        ident = self._ctx.parse(identifier)
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            profile = self.get(ref)
            survivor, _ = self._resolve([ident], create=False, anchor=profile)
            assert survivor is not None
            self._ctx.audit(
                tenant, "link_identifier", f"profile:{survivor.id}", {"kind": ident.kind.value}
            )
        return survivor

    def merge(self, a: ProfileRef, b: ProfileRef, *, reason: str = "manual") -> Profile:
        """Merge two profiles; the older one survives. Returns the survivor.
        Audited (``merge_profiles``) unless both refs name the same profile."""
        limits = self._ctx.settings.limits
        text(reason, "reason", limits.description_chars, limit="description_chars")
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            pa = self.get(a)
            pb = self.get(b)
            if pa.id == pb.id:  # merging a profile with itself changes nothing
                return pa
            survivor = self._merge([pa, pb], reason)
            merged = ",".join(sorted({pa.id, pb.id} - {survivor.id}))
            self._ctx.audit(tenant, "merge_profiles", f"profile:{survivor.id}", {"merged": merged})
        return survivor

    def delete(self, ref: ProfileRef) -> DeletionReceipt:
        """Erase a customer: the profile, its identifiers, traits, conversations,
        messages and everything derived from them, from every index; profiles
        merged into it and their merge records go too. Audited (``delete_profile``)."""
        tenant = self._tenant
        backend = self._backend
        with self._ctx.resolve_lock, backend.batch():
            profile = self.get(ref)
            merged = [
                p.id
                for p in backend.find(
                    tenant, Collection.PROFILES, Where(eq={"merged_into": profile.id})
                )
            ]
            ids = [profile.id, *merged]
            counts: dict[str, int] = {}
            for collection, spec in COLLECTIONS.items():
                if "profile_id" in spec.filter_fields:
                    counts[collection.value] = backend.delete(
                        tenant, collection, Where(any_of={"profile_id": ids})
                    )
            counts[Collection.MERGES.value] = backend.delete(
                tenant, Collection.MERGES, Where(eq={"survivor_id": profile.id})
            )
            counts[Collection.PROFILES.value] = backend.delete(
                tenant, Collection.PROFILES, Where(any_of={"id": ids})
            )
        receipt = DeletionReceipt(tenant=tenant, target=f"profile:{profile.id}", deleted=counts)
        return self._ctx.erased(receipt, "delete_profile")

    # -- subject access -----------------------------------------------------------
    def export(self, ref: ProfileRef) -> ProfileExport:
        """Everything held about a customer (by profile id or any identifier), as one
        document (``.model_dump(mode="json")`` for JSON). Audited (``export_profile``)."""
        tenant = self._tenant
        profile = self.get(ref)
        document = build_export(self._ctx, tenant, profile)
        self._ctx.audit(tenant, "export_profile", f"profile:{profile.id}", document.counts())
        return document

    # -- resolution (used by the conversations service) -----------------------------
    def _resolve(
        self,
        idents: Sequence[Identifier],
        *,
        create: bool,
        anchor: Profile | None = None,
    ) -> tuple[Profile | None, builtins.list[str]]:
        """Find (or create) the one profile these identifiers belong to, merging
        profiles they split across; also the ids merged away. Must run under
        ``self._ctx.resolve_lock`` in a backend batch."""
        tenant = self._tenant
        backend = self._backend
        keys = sorted({i.key for i in idents})
        links = [
            link
            for link in backend.get(tenant, Collection.IDENTIFIERS, keys)
            if isinstance(link, IdentifierLink)
        ]
        candidates: dict[str, Profile] = {}
        if anchor is not None:
            candidates[anchor.id] = anchor
        for link in links:
            live = self._ctx.live_profile(tenant, link.profile_id)
            candidates[live.id] = live
        merged: list[str] = []
        if not candidates:
            if not create:
                return None, []
            profile = Profile(id=new_id("prf"), tenant=tenant)
            backend.upsert(tenant, Collection.PROFILES, [profile])
        elif len(candidates) == 1:
            profile = next(iter(candidates.values()))
        else:
            ordered = sorted(candidates.values(), key=lambda p: (p.created_at, p.id))
            merged = [p.id for p in ordered[1:]]
            profile = self._merge(ordered, "identifiers matched several profiles")
        known = {link.id for link in links if link.profile_id == profile.id}
        fresh = [
            IdentifierLink(
                id=i.key, tenant=tenant, kind=i.kind, value=i.value, profile_id=profile.id
            )
            for i in {i.key: i for i in idents}.values()
            if i.key not in known
        ]
        if fresh:
            backend.upsert(tenant, Collection.IDENTIFIERS, fresh)
        return profile, merged

    def _merge(self, profiles: Sequence[Profile], reason: str) -> Profile:
        """Merge profiles into the oldest (ties: smallest id). Every record of the
        others moves to the survivor; the others stay as tombstones that resolve.
        Not audited here (callers audit); runs under the resolve lock in a batch."""
        tenant = self._tenant
        backend = self._backend
        embedder = self._ctx.embedder
        ordered = sorted(profiles, key=lambda p: (p.created_at, p.id))
        survivor, others = ordered[0], ordered[1:]
        other_ids = [p.id for p in others]
        now = utcnow()
        for collection, spec in COLLECTIONS.items():
            if "profile_id" not in spec.filter_fields:
                continue
            moving = backend.find(tenant, collection, Where(any_of={"profile_id": other_ids}))
            if not moving:
                continue
            if collection is Collection.TRAITS:
                moving = self._merge_traits(survivor.id, moving)
            moved = [r.model_copy(update={"profile_id": survivor.id}) for r in moving]
            if spec.searchable and moved:
                texts = self._reembedding_texts(collection, moved)
                vectors = Vectors(embedder.model_id, embedder.embed_batch(texts))
                backend.upsert(tenant, collection, moved, vectors)
            elif moved:
                backend.upsert(tenant, collection, moved)
        tombstones: list[Record] = [
            p.model_copy(update={"merged_into": survivor.id, "updated_at": now}) for p in others
        ]
        chained = backend.find(
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
        backend.upsert(tenant, Collection.PROFILES, [survivor, *tombstones])
        backend.upsert(
            tenant,
            Collection.MERGES,
            [
                MergeRecord(id=pid, tenant=tenant, survivor_id=survivor.id, reason=reason)
                for pid in other_ids
            ],
        )
        return survivor

    def _reembedding_texts(
        self, collection: Collection, records: builtins.list[Record]
    ) -> builtins.list[str]:
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
                for m in self._backend.find(
                    records[0].tenant,
                    Collection.MESSAGES,
                    Where(eq={"conversation_id": conv_id}),
                    order_by="seq",
                )
                if isinstance(m, Message)
            ]
            texts = embedding_texts(
                [m.text for m in everything], None, self._ctx.settings.embed_context_turns
            )
            out.update({m.id: t for m, t in zip(everything, texts, strict=True)})
        return [out.get(r.id, str(getattr(r, spec.text_field))) for r in records]

    def _merge_traits(
        self, survivor_id: str, moving: builtins.list[Record]
    ) -> builtins.list[Record]:
        """Traits moving onto the survivor keep the newest value per (key, source)."""
        tenant = self._tenant
        existing = {
            (t.key, t.source): t
            for t in self._backend.find(
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
            self._backend.delete(tenant, Collection.TRAITS, Where(any_of={"id": stale}))
        self._backend.delete(
            tenant, Collection.TRAITS, Where(any_of={"id": [t.id for t in moving]})
        )
        return out
