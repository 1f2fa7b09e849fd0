"""Profiles and identity: resolution of identifiers across channels under the
tenant's identity policy (docs/identity.md), links, merges (confirmed when two
profiles with history meet), unmerges, subject access export and erasure of a
customer."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from memory_core.backends.base import COLLECTIONS, Collection, Vectors, Where, require
from memory_core.context import ProfileRef
from memory_core.embedding.texts import embedding_texts
from memory_core.errors import (
    ConflictError,
    IdentifierLimitError,
    NotFoundError,
    PolicyDenied,
)
from memory_core.extraction.traits import trait_id
from memory_core.governance.export import ProfileExport, build_export
from memory_core.governance.policy import IdentityPolicy
from memory_core.identity import normalize
from memory_core.models import (
    DeletionReceipt,
    Identifier,
    IdentifierKind,
    IdentifierLink,
    MergeRecord,
    MergeStatus,
    Message,
    PendingMerge,
    Profile,
    Record,
    Trait,
    new_id,
    utcnow,
)
from memory_core.services._base import Service
from memory_core.validation import (
    MAX_COUNT,
    choice,
    integer,
    items,
    optional_text,
    record_id,
    text,
)

__all__ = ["Profiles", "Resolution", "pending_merge_id"]

R = TypeVar("R", bound=Record)

_BOTH_HISTORY = "identifiers matched two profiles with history"
_OVER_CAP = "the merged profile would hold more identifiers than the cap"
_RECYCLED = "recycled number: a dormant number arrived with another person's details"


@dataclass(frozen=True)
class Resolution:
    """What identity resolution did: the profile (None: none matched and none was
    created), the ids merged into it, the pending merges it recorded, and whether
    it wrote anything."""

    profile: Profile | None
    merged: builtins.list[str] = field(default_factory=builtins.list)
    pending: builtins.list[str] = field(default_factory=builtins.list)
    wrote: bool = False


def pending_merge_id(a: str, b: str) -> str:
    """The id of the pending merge of two profiles (the same in either order)."""
    digest = hashlib.sha256("|".join(sorted((a, b))).encode()).hexdigest()
    return f"pmg_{digest[:32]}"


def _slot(ident: Identifier) -> str:
    """What an identifier fills: its kind (with the system, for custom ids)."""
    if ident.kind is IdentifierKind.CUSTOM:
        return f"custom:{ident.value.partition('=')[0]}"
    return ident.kind.value


def _contradicting_kind(ident: Identifier, rules: IdentityPolicy) -> bool:
    """Whether ``ident`` is of a kind that can contradict a profile: one person has
    one email, CRM id, custom id per system (not a recyclable number, not a chat id:
    every web session may bring a new one)."""
    return ident.kind not in rules.recyclable_kinds and ident.kind is not IdentifierKind.CHAT_ID


def _over_cap(cap: int, total: int, doing: str) -> IdentifierLimitError:
    return IdentifierLimitError(
        f"{doing} would give a profile {total} identifiers, more than the tenant's cap of "
        f"{cap} (policy identity.max_identifiers): remove identifiers that are not this "
        "customer's, or raise the cap",
        kind="profile",
    )


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
        """The live profile for an id (merged ids resolve to the survivor) or identifier
        (or, under the identity policy, an equivalent one: ``whatsapp:`` for ``phone:``).
        A shared identifier (a household phone, a switchboard) names no one profile:
        NotFoundError."""
        tenant = self._tenant
        if isinstance(ref, str) and ref.startswith("prf_"):
            return self._ctx.live_profile(tenant, record_id(ref, "profile"))
        ident = self._ctx.parse(ref)
        rules = self._rules()
        if rules.is_shared(ident):
            raise NotFoundError(
                f"identifier {ident} is shared by several people (the tenant's identity "
                "policy), so it names no one profile: use another identifier or the profile id",
                kind="profile",
            )
        link = self._link_of(ident, rules)
        if link is None:
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
        """Resolve these identifiers to a profile, creating one if none matches, under
        the tenant's identity policy (docs/identity.md): shared identifiers are
        ignored, profiles they split across are merged -- or, when two have
        history, a pending merge is recorded and the profile of the first
        identifier that matched is returned. Audited (``create_profile``).

        Raises IdentifierLimitError if the profile would hold more identifiers
        than the policy's ``max_identifiers`` (nothing is written)."""
        limits = self._ctx.settings.limits
        display_name = optional_text(
            display_name, "display_name", limits.name_chars, limit="name_chars", single_line=True
        )
        given = items(identifiers, "identifiers", limits.list_items)
        idents = [self._ctx.parse(i) for i in given]
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            profile = self._resolve(idents, create=True, strict=True).profile
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
        profile, the two are merged (a deliberate act: no confirmation is asked;
        ``unmerge`` undoes it); the returned profile is the survivor. Audited
        (``link_identifier``).

        Raises PolicyDenied for an identifier the tenant's identity policy marks
        shared, IdentifierLimitError beyond its ``max_identifiers``."""
        ident = self._ctx.parse(identifier)
        tenant = self._tenant
        if self._rules().is_shared(ident):
            raise PolicyDenied(
                f"{ident} is shared by several people (the tenant's identity policy: "
                "identity.shared, shared_patterns or the built-in noreply addresses); "
                "it cannot be linked to one profile"
            )
        with self._ctx.resolve_lock, self._backend.batch():
            profile = self.get(ref)
            survivor = self._resolve(
                [ident], create=False, anchor=profile, strict=True, explicit=True
            ).profile
            assert survivor is not None
            self._ctx.audit(
                tenant, "link_identifier", f"profile:{survivor.id}", {"kind": ident.kind.value}
            )
        return survivor

    def merge(self, a: ProfileRef, b: ProfileRef, *, reason: str = "manual") -> Profile:
        """Merge two profiles; the older one survives. Returns the survivor.
        Audited (``merge_profiles``) unless both refs name the same profile; the
        merge record keeps what ``unmerge`` needs to split them again.

        Raises IdentifierLimitError if the survivor would hold more identifiers
        than the identity policy's ``max_identifiers``."""
        limits = self._ctx.settings.limits
        text(reason, "reason", limits.description_chars, limit="description_chars")
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            pa = self.get(a)
            pb = self.get(b)
            if pa.id == pb.id:  # merging a profile with itself changes nothing
                return pa
            self._check_cap([pa, pb])
            survivor = self._merge([pa, pb], reason)
            merged = ",".join(sorted({pa.id, pb.id} - {survivor.id}))
            self._ctx.audit(tenant, "merge_profiles", f"profile:{survivor.id}", {"merged": merged})
        return survivor

    def _check_cap(self, profiles: Sequence[Profile]) -> None:
        cap = self._rules().max_identifiers
        if cap is not None:
            total = sum(self._link_count(p.id) for p in profiles)
            if total > cap:
                raise _over_cap(cap, total, "merging these profiles")

    # -- pending merges and unmerge ---------------------------------------------------
    def pending_merges(
        self,
        *,
        status: MergeStatus | str | None = MergeStatus.PENDING,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[PendingMerge]:
        """Merges identity resolution proposed instead of doing them (two profiles
        with history matched, a recycled number), oldest first; by default those
        still waiting (``status=None``: every one, decided ones too)."""
        limit, offset = (
            integer(limit, "limit", 0, MAX_COUNT),
            integer(offset, "offset", 0, MAX_COUNT),
        )
        where = Where()
        if status is not None:
            where = Where(eq={"status": choice(MergeStatus, status, "status").value})
        return self._backend.find(
            self._tenant,
            Collection.PENDING_MERGES,
            where,
            order_by="created_at",
            limit=limit,
            offset=offset,
        )

    def _pending(self, merge_id: str) -> PendingMerge:
        record = require(
            self._backend,
            self._tenant,
            Collection.PENDING_MERGES,
            record_id(merge_id, "pending merge"),
        )
        if record.status is not MergeStatus.PENDING:
            raise ConflictError(
                f"pending merge {record.id!r} was {record.status.value} already",
                kind="pending_merge",
            )
        return record

    def _decide(self, record: PendingMerge, status: MergeStatus, reason: str) -> PendingMerge:
        """Store the decision on a pending merge; returns the decided record."""
        decided = record.model_copy(
            update={"status": status, "decided_at": utcnow(), "decision_reason": reason}
        )
        self._backend.upsert(self._tenant, Collection.PENDING_MERGES, [decided])
        return decided

    def confirm_merge(self, merge_id: str, *, reason: str = "confirmed") -> Profile:
        """Confirm a pending merge: the two profiles merge (the older survives) and
        the survivor is returned. Audited (``confirm_merge``). ConflictError if it
        was decided already; IdentifierLimitError over the identifier cap."""
        limits = self._ctx.settings.limits
        text(reason, "reason", limits.description_chars, limit="description_chars")
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            record = self._pending(merge_id)
            a = self._ctx.live_profile(tenant, record.profile_a)
            b = self._ctx.live_profile(tenant, record.profile_b)
            survivor = a
            if a.id != b.id:
                self._check_cap([a, b])
                survivor = self._merge([a, b], f"pending merge {record.id} confirmed: {reason}")
            self._decide(record, MergeStatus.CONFIRMED, reason)
            merged = ",".join(sorted({a.id, b.id} - {survivor.id}))
            self._ctx.audit(
                tenant,
                "confirm_merge",
                f"profile:{survivor.id}",
                {"merge": record.id, "merged": merged},
            )
        return survivor

    def reject_merge(self, merge_id: str, *, reason: str = "rejected") -> PendingMerge:
        """Reject a pending merge: the profiles stay apart and resolution will not
        propose this pair again. Audited (``reject_merge``)."""
        limits = self._ctx.settings.limits
        text(reason, "reason", limits.description_chars, limit="description_chars")
        tenant = self._tenant
        with self._ctx.resolve_lock, self._backend.batch():
            record = self._pending(merge_id)
            decided = self._decide(record, MergeStatus.REJECTED, reason)
            self._ctx.audit(
                tenant,
                "reject_merge",
                f"profile:{record.profile_a}",
                {"merge": record.id, "other": record.profile_b},
            )
        return decided

    def unmerge(self, profile_id: str, *, reason: str = "manual") -> Profile:
        """Split a merged-away profile (its ``prf_`` id) back out of the profile it
        was merged into, by the merge's provenance: its identifiers, its
        conversations with their messages, summaries and extraction records, its
        observations (and those drawn later from its conversations) and its traits
        return to it as they were; records added after the merge stay with the
        survivor (docs/identity.md). Returns the restored profile. Audited
        (``unmerge_profile``).

        ConflictError if the profile is not merged, its merge predates unmerge
        (no provenance), or the survivor was merged again since (undo that first)."""
        limits = self._ctx.settings.limits
        text(reason, "reason", limits.description_chars, limit="description_chars")
        pid = record_id(profile_id, "profile")
        tenant = self._tenant
        backend = self._backend
        with self._ctx.resolve_lock, backend.batch():
            absorbed = require(backend, tenant, Collection.PROFILES, pid)
            found = backend.get(tenant, Collection.MERGES, [pid])
            if absorbed.merged_into is None or not found:
                raise ConflictError(
                    f"profile {pid!r} is not merged into another; there is nothing to unmerge",
                    kind="profile",
                )
            record = found[0]
            if record.profile is None:
                raise ConflictError(
                    f"the merge of profile {pid!r} was recorded before unmerge existed (it "
                    "has no provenance) and cannot be undone",
                    kind="merge",
                )
            survivor = require(backend, tenant, Collection.PROFILES, record.survivor_id)
            if survivor.merged_into is not None:
                raise ConflictError(
                    f"profile {survivor.id!r}, which absorbed {pid!r}, was merged into "
                    f"{survivor.merged_into!r} since: unmerge {survivor.id!r} first",
                    kind="merge",
                )
            counts = self._split(record, survivor.id)
            restored = record.profile
            chained = [
                p.model_copy(update={"merged_into": pid})
                for p in backend.get(tenant, Collection.PROFILES, builtins.list(record.chained))
                if p.merged_into == survivor.id
            ]
            took = record.took_display_name and survivor.display_name == restored.display_name
            survivor = survivor.model_copy(
                update={
                    "updated_at": utcnow(),
                    "display_name": None if took else survivor.display_name,
                }
            )
            backend.upsert(tenant, Collection.PROFILES, [survivor, restored, *chained])
            backend.delete(tenant, Collection.MERGES, Where(eq={"id": pid}))
            self._ctx.audit(
                tenant,
                "unmerge_profile",
                f"profile:{pid}",
                {"survivor": survivor.id, "chained": len(chained), **counts},
            )
        return restored

    def _split(self, record: MergeRecord, survivor_id: str) -> dict[str, int]:
        """Move what ``record`` says the merged profile brought back from the
        survivor to it; counts per kind of record."""
        tenant = self._tenant
        backend = self._backend
        pid = record.id
        on_survivor = Where(eq={"profile_id": survivor_id})

        def held(collection: Collection[R], ids: Sequence[str]) -> builtins.list[R]:
            found = backend.get(tenant, collection, builtins.list(ids))
            return [r for r in found if getattr(r, "profile_id", None) == survivor_id]

        links = held(Collection.IDENTIFIERS, record.identifiers)
        conversations = held(Collection.CONVERSATIONS, record.conversations)
        conv_ids = [c.id for c in conversations]
        self._move(Collection.IDENTIFIERS, links, pid)
        self._move(Collection.CONVERSATIONS, conversations, pid)
        of_conversations = on_survivor.and_(Where(any_of={"conversation_id": conv_ids}))
        counts = {"identifiers": len(links), "conversations": len(conversations)}
        for collection in (Collection.MESSAGES, Collection.SUMMARIES, Collection.EXTRACTIONS):
            moving = backend.find(tenant, collection, of_conversations) if conv_ids else []
            self._move(collection, moving, pid)
            counts[collection.value] = len(moving)
        state = held(Collection.CONNECTOR_STATE, record.connector_state)
        self._move(Collection.CONNECTOR_STATE, state, pid)
        if state:
            counts["connector_state"] = len(state)
        observations = {o.id: o for o in held(Collection.OBSERVATIONS, record.observations)}
        if conv_ids:
            observations |= {
                o.id: o for o in backend.find(tenant, Collection.OBSERVATIONS, of_conversations)
            }
        self._move(Collection.OBSERVATIONS, builtins.list(observations.values()), pid)
        counts["observations"] = len(observations)
        # Traits: its own come back as they were; a survivor's trait the merge replaced
        # comes back too, unless the survivor's value changed after the merge.
        replaced = {(t.key, t.source): t for t in record.replaced_traits}
        drop: list[str] = []
        restore: list[Trait] = builtins.list(record.traits)
        for trait in record.traits:
            now_id = trait_id(survivor_id, trait.key, trait.source)
            current = backend.get(tenant, Collection.TRAITS, [now_id])
            if current and _same_trait(current[0], trait):
                drop.append(now_id)
                if (trait.key, trait.source) in replaced:
                    restore.append(replaced[(trait.key, trait.source)])
        if drop:
            backend.delete(tenant, Collection.TRAITS, Where(any_of={"id": drop}))
        if restore:
            backend.upsert(tenant, Collection.TRAITS, restore)
        counts["traits"] = len(record.traits)
        return counts

    def delete(self, ref: ProfileRef) -> DeletionReceipt:
        """Erase a customer: the profile, its identifiers, traits, conversations,
        messages and everything derived from them, from every index; profiles
        merged into it, their merge records and the pending merges naming any of
        them go too. Audited (``delete_profile``)."""
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
                tenant, Collection.MERGES, Where(any_of={"survivor_id": ids})
            )
            counts[Collection.PENDING_MERGES.value] = sum(
                backend.delete(tenant, Collection.PENDING_MERGES, Where(any_of={side: ids}))
                for side in ("profile_a", "profile_b")
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
    def _rules(self) -> IdentityPolicy:
        """The identity part of this tenant's policy."""
        return self._ctx.policy(self._tenant).policy.identity

    def _link_of(self, ident: Identifier, rules: IdentityPolicy) -> IdentifierLink | None:
        """The link of ``ident``, else of an identifier equivalent to it, if any."""
        keys = [each.key for each in rules.equivalents(ident)]
        found = {
            link.id: link for link in self._backend.get(self._tenant, Collection.IDENTIFIERS, keys)
        }
        return next((found[k] for k in keys if k in found), None)

    def _has_history(self, profile_id: str) -> bool:
        """Whether a profile holds conversations or observations (is "established")."""
        mine = Where(eq={"profile_id": profile_id})
        return any(
            self._backend.count(self._tenant, c, mine) > 0
            for c in (Collection.CONVERSATIONS, Collection.OBSERVATIONS)
        )

    def _link_count(self, profile_id: str) -> int:
        return self._backend.count(
            self._tenant, Collection.IDENTIFIERS, Where(eq={"profile_id": profile_id})
        )

    def _resolve(
        self,
        idents: Sequence[Identifier],
        *,
        create: bool,
        anchor: Profile | None = None,
        at: datetime | None = None,
        strict: bool = False,
        explicit: bool = False,
    ) -> Resolution:
        """Find (or create) the profile these identifiers belong to, following the
        tenant's identity policy (docs/identity.md): shared values are ignored; the
        profile of ``anchor``, else of the first identifier that matches, is the
        one; other matching profiles merge into it, except (unless ``explicit``)
        a second profile with history, which becomes a pending merge; a dormant
        recyclable number that arrives (at time ``at``) with details contradicting
        its profile moves to the new person. Over the identifier cap, ``strict``
        raises IdentifierLimitError, otherwise the extra identifiers are not
        linked. Everything is checked before anything is written. Must run under
        ``self._ctx.resolve_lock`` in a backend batch."""
        tenant = self._tenant
        backend = self._backend
        rules = self._rules()
        given = list({i.key: i for i in idents}.values())
        usable = [i for i in given if not rules.is_shared(i)]
        shared = len(given) - len(usable)
        lookup = sorted({e.key for i in usable for e in rules.equivalents(i)})
        links = {link.id: link for link in backend.get(tenant, Collection.IDENTIFIERS, lookup)}
        matched: list[tuple[Identifier, Profile]] = []
        for ident in usable:
            link = next((links[e.key] for e in rules.equivalents(ident) if e.key in links), None)
            if link is not None:
                matched.append((ident, self._ctx.live_profile(tenant, link.profile_id)))
        recycled: list[tuple[Identifier, Profile]] = []
        if at is not None and anchor is None and rules.recycle_after is not None:
            matched, recycled = self._recycled(matched, usable, at, rules)

        candidates: dict[str, Profile] = {}
        if anchor is not None:
            candidates[anchor.id] = anchor
        for _, matched_profile in matched:
            candidates.setdefault(matched_profile.id, matched_profile)
        ordered = builtins.list(candidates.values())
        apart: dict[str, tuple[Profile, str]] = {}  # profiles left for a person to merge
        group = ordered[:1]
        if len(ordered) > 1:
            held = (
                [p for p in ordered if self._has_history(p.id)]
                if rules.confirm_merges and not explicit
                else []
            )
            if len(held) <= 1:
                group = ordered
            else:
                chosen = held[0]
                group = [p for p in ordered if p is chosen or p not in held]
                apart |= {p.id: (p, _BOTH_HISTORY) for p in held if p is not chosen}
        cap = rules.max_identifiers
        counts: dict[str, int] = {}  # identifiers per profile, read when the cap needs them
        if cap is not None and len(group) > 1:
            counts = {p.id: self._link_count(p.id) for p in group}
            if sum(counts.values()) > cap:
                if strict:
                    raise _over_cap(cap, sum(counts.values()), "merging these profiles")
                apart |= {p.id: (p, _OVER_CAP) for p in group[1:]}
                group = group[:1]
        fresh: dict[str, Identifier] = {}
        for ident in usable:
            owner = next((p for i, p in matched if i.key == ident.key), None)
            if owner is not None and owner.id in apart:
                continue  # stays with the profile it names (a pending merge)
            if ident.key not in links:  # links of group profiles are theirs already
                fresh[ident.key] = ident
        for ident, old in recycled:  # the number, in every kind linked, moves
            for each in rules.equivalents(ident):
                link = links.get(each.key)
                if link is None:
                    owned = each.key == ident.key
                else:
                    owned = self._ctx.live_profile(tenant, link.profile_id).id == old.id
                if owned:
                    fresh[each.key] = each
        linking = builtins.list(fresh.values())
        refused: list[Identifier] = []
        if cap is not None and linking:
            taken = sum(counts[p.id] if p.id in counts else self._link_count(p.id) for p in group)
            room = max(cap - taken, 0)
            if len(linking) > room:
                if strict:
                    raise _over_cap(cap, taken + len(linking), "linking them")
                linking, refused = linking[:room], linking[room:]

        # -- writes (everything above only read) --
        wrote = False
        merged: list[str] = []
        if not group:
            if not create:
                return Resolution(None, [], [], False)
            profile = Profile(id=new_id("prf"), tenant=tenant)
            backend.upsert(tenant, Collection.PROFILES, [profile])
            wrote = True
        elif len(group) > 1:
            profile = self._merge(group, "identifiers matched several profiles")
            merged = [p.id for p in group if p.id != profile.id]
            wrote = True
        else:
            profile = group[0]
        if linking:
            backend.upsert(
                tenant,
                Collection.IDENTIFIERS,
                [
                    IdentifierLink(
                        id=i.key, tenant=tenant, kind=i.kind, value=i.value, profile_id=profile.id
                    )
                    for i in linking
                ],
            )
            wrote = True
        pending: list[str] = []
        proposals = [
            (other, reason, [i.key for i, p in matched if p.id == other.id])
            for other, reason in apart.values()
        ] + [(old, _RECYCLED, [i.key]) for i, old in recycled]
        for other, reason, keys in proposals:
            if other.id != profile.id and (pid := self._propose(profile, other, reason, keys)):
                pending.append(pid)
                wrote = True
        if recycled:
            self._ctx.audit(
                tenant, "move_identifier", f"profile:{profile.id}", {"moved": len(recycled)}
            )
        if wrote and (shared or refused):
            self._ctx.audit(
                tenant,
                "skip_identifiers",
                f"profile:{profile.id}",
                {"shared": shared, "over_limit": len(refused)},
            )
        return Resolution(profile, merged, pending, wrote)

    def _recycled(
        self,
        matched: builtins.list[tuple[Identifier, Profile]],
        usable: Sequence[Identifier],
        at: datetime,
        rules: IdentityPolicy,
    ) -> tuple[
        builtins.list[tuple[Identifier, Profile]], builtins.list[tuple[Identifier, Profile]]
    ]:
        """``matched`` split into matches that stand and recycled numbers: a match
        by a recyclable kind to a profile that no other identifier given matched,
        with no conversation within ``rules.recycle_after`` before ``at``, and an
        identifier given of a kind the profile holds with another value."""
        assert rules.recycle_after is not None
        if not any(_contradicting_kind(i, rules) for i in usable):
            return matched, []  # nothing given could contradict a profile (the usual call)
        others = {p.id for i, p in matched if i.kind not in rules.recyclable_kinds}
        kept: list[tuple[Identifier, Profile]] = []
        recycled: list[tuple[Identifier, Profile]] = []
        for ident, profile in matched:
            if (
                ident.kind in rules.recyclable_kinds
                and profile.id not in others
                and self._dormant(profile.id, at, rules.recycle_after)
                and self._contradicted(profile.id, usable, rules)
            ):
                recycled.append((ident, profile))
            else:
                kept.append((ident, profile))
        return kept, recycled

    def _dormant(self, profile_id: str, at: datetime, after: timedelta) -> bool:
        """Whether the profile's last conversation before ``at`` started ``after`` or
        longer before it (a profile without conversations is not dormant)."""
        last = self._backend.find(
            self._tenant,
            Collection.CONVERSATIONS,
            Where(eq={"profile_id": profile_id}, lt={"started_at": at}),
            order_by="started_at",
            descending=True,
            limit=1,
        )
        return bool(last) and at - last[0].started_at >= after

    def _contradicted(
        self, profile_id: str, usable: Sequence[Identifier], rules: IdentityPolicy
    ) -> bool:
        """Whether an identifier given (not of a recyclable kind, nor a chat id) fills
        a slot the profile holds with another value: another email, CRM id or
        custom id of the same system."""
        held = {
            link.id: _slot(link.identifier)
            for link in self._backend.find(
                self._tenant, Collection.IDENTIFIERS, Where(eq={"profile_id": profile_id})
            )
        }
        slots = set(held.values())
        return any(
            _contradicting_kind(ident, rules) and _slot(ident) in slots and ident.key not in held
            for ident in usable
        )

    def _propose(self, a: Profile, b: Profile, reason: str, keys: Sequence[str]) -> str | None:
        """Record a pending merge of ``a`` and ``b`` (audited ``propose_merge``), unless
        the pair is pending or was rejected already. Returns its id if recorded."""
        tenant = self._tenant
        pid = pending_merge_id(a.id, b.id)
        found = self._backend.get(tenant, Collection.PENDING_MERGES, [pid])
        if found and found[0].status is not MergeStatus.CONFIRMED:
            return None
        record = PendingMerge(
            id=pid,
            tenant=tenant,
            profile_a=a.id,
            profile_b=b.id,
            reason=reason,
            identifiers=tuple(sorted(keys)),
        )
        self._backend.upsert(tenant, Collection.PENDING_MERGES, [record])
        self._ctx.audit(
            tenant,
            "propose_merge",
            f"profile:{a.id}",
            {"merge": pid, "other": b.id, "reason": reason},
        )
        return pid

    def _merge(self, profiles: Sequence[Profile], reason: str) -> Profile:
        """Merge profiles into the oldest (ties: smallest id), one at a time, each
        with a merge record holding its provenance. Not audited here (callers
        audit); runs under the resolve lock in a batch."""
        ordered = sorted(profiles, key=lambda p: (p.created_at, p.id))
        survivor = ordered[0]
        for other in ordered[1:]:
            survivor = self._absorb(survivor, other, reason)
        return survivor

    def _absorb(self, survivor: Profile, other: Profile, reason: str) -> Profile:
        """Move every record of ``other`` to ``survivor``; ``other`` (and the profiles
        merged into it before) stay as tombstones that resolve to the survivor."""
        tenant = self._tenant
        backend = self._backend
        now = utcnow()
        mine = Where(eq={"profile_id": other.id})
        record = MergeRecord(
            id=other.id,
            tenant=tenant,
            survivor_id=survivor.id,
            reason=reason,
            merged_at=now,
            profile=other,
            identifiers=tuple(r.id for r in backend.find(tenant, Collection.IDENTIFIERS, mine)),
            conversations=tuple(r.id for r in backend.find(tenant, Collection.CONVERSATIONS, mine)),
            observations=tuple(r.id for r in backend.find(tenant, Collection.OBSERVATIONS, mine)),
            traits=tuple(backend.find(tenant, Collection.TRAITS, mine, order_by="key")),
            chained=tuple(
                p.id
                for p in backend.find(
                    tenant, Collection.PROFILES, Where(eq={"merged_into": other.id})
                )
            ),
            took_display_name=survivor.display_name is None and other.display_name is not None,
            connector_state=tuple(
                r.id for r in backend.find(tenant, Collection.CONNECTOR_STATE, mine)
            ),
        )
        replaced: list[Trait] = []
        for collection, spec in COLLECTIONS.items():
            if "profile_id" not in spec.filter_fields:
                continue
            moving: Sequence[Record] = backend.find(tenant, collection, mine)
            if collection is Collection.TRAITS and moving:
                traits = [t for t in moving if isinstance(t, Trait)]
                moving, replaced = self._merge_traits(survivor.id, traits)
            self._move(collection, moving, survivor.id)
        tombstones = [
            p.model_copy(update={"merged_into": survivor.id, "updated_at": now})
            for p in [
                other,
                *backend.get(tenant, Collection.PROFILES, builtins.list(record.chained)),
            ]
        ]
        survivor = survivor.model_copy(
            update={"updated_at": now, "display_name": survivor.display_name or other.display_name}
        )
        backend.upsert(tenant, Collection.PROFILES, [survivor, *tombstones])
        proposed = backend.get(
            tenant, Collection.PENDING_MERGES, [pending_merge_id(survivor.id, other.id)]
        )
        if proposed and proposed[0].status is MergeStatus.PENDING:  # merged anyway: settled
            self._decide(proposed[0], MergeStatus.CONFIRMED, f"merged: {reason}")
        backend.upsert(
            tenant,
            Collection.MERGES,
            [record.model_copy(update={"replaced_traits": tuple(replaced)})],
        )
        return survivor

    def _move(self, collection: Collection[R], records: Sequence[R], profile_id: str) -> None:
        """Give ``records`` to ``profile_id`` (searchable ones are embedded again:
        a replaced record without vectors would lose its own)."""
        if not records:
            return
        moved = [r.model_copy(update={"profile_id": profile_id}) for r in records]
        if COLLECTIONS[collection].searchable:
            embedder = (
                self._ctx.message_embedder
                if collection is Collection.MESSAGES
                else self._ctx.embedder
            )
            texts = self._reembedding_texts(collection, builtins.list(moved))
            vectors = Vectors(embedder.model_id, embedder.embed_batch(texts))
            self._backend.upsert(self._tenant, collection, moved, vectors)
        else:
            self._backend.upsert(self._tenant, collection, moved)

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
        self, survivor_id: str, moving: Sequence[Trait]
    ) -> tuple[builtins.list[Trait], builtins.list[Trait]]:
        """Traits moving onto the survivor keep the newest value per (key, source).
        Returns the traits to move (with the survivor's trait ids) and the
        survivor's traits they replace."""
        tenant = self._tenant
        existing = {
            (t.key, t.source): t
            for t in self._backend.find(
                tenant, Collection.TRAITS, Where(eq={"profile_id": survivor_id})
            )
        }
        out: list[Trait] = []
        replaced: list[Trait] = []
        for t in moving:
            mine = existing.get((t.key, t.source))
            if mine is not None and mine.updated_at >= t.updated_at:
                continue  # the survivor's value is newer: this one is dropped
            if mine is not None:
                replaced.append(mine)
            out.append(t.model_copy(update={"id": trait_id(survivor_id, t.key, t.source)}))
        if replaced:
            self._backend.delete(
                tenant, Collection.TRAITS, Where(any_of={"id": [t.id for t in replaced]})
            )
        self._backend.delete(
            tenant, Collection.TRAITS, Where(any_of={"id": [t.id for t in moving]})
        )
        return out, replaced


def _same_trait(current: Trait, before: Trait) -> bool:
    """Whether ``current`` (on the survivor) is ``before`` moved, unchanged since."""
    return (
        current.value == before.value
        and current.source == before.source
        and current.updated_at == before.updated_at
        and current.confidence == before.confidence
        and current.evidence == before.evidence
    )
