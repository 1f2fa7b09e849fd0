"""Writing reconciled observations: one profile's observations during one
extraction, loaded once and written through to the backend.

An observation's versions form a chain ordered by ``valid_from``: each
superseded version points to its successor (``superseded_by``, with
``valid_to`` = the successor's ``valid_from``) and each successor to its
predecessor (``supersedes``). A value learnt late but said earlier (history
back-filled out of order) is inserted into the chain at its place, so the
newest statement stays the active one whatever the order of extraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from memory_core.backends.base import Backend, Collection, SearchMode, Vectors, Where
from memory_core.embedding.base import Embedder
from memory_core.extraction.base import ProposedObservation
from memory_core.extraction.reconcile import Candidate, normalise_text, same_value
from memory_core.models import (
    Channel,
    Decision,
    Observation,
    ObservationStatus,
    Revision,
    new_id,
    utcnow,
)

__all__ = ["ProfileObservations"]

_ACTIVE = ObservationStatus.ACTIVE
_SUPERSEDED = ObservationStatus.SUPERSEDED


class ProfileObservations:
    """Every observation of one profile (any status), kept in step with the store."""

    def __init__(self, backend: Backend, embedder: Embedder, tenant: str, profile_id: str) -> None:
        self.backend = backend
        self.embedder = embedder
        self.tenant = tenant
        self.profile_id = profile_id
        found = backend.find(tenant, Collection.OBSERVATIONS, Where(eq={"profile_id": profile_id}))
        self.by_id: dict[str, Observation] = {o.id: o for o in found if isinstance(o, Observation)}

    # -- reading ---------------------------------------------------------------------
    def active(self) -> list[Observation]:
        return sorted(
            (o for o in self.by_id.values() if o.status is _ACTIVE), key=lambda o: o.valid_from
        )

    def known(self, p: ProposedObservation) -> Observation | None:
        """An observation (any status) already drawn from these messages saying this:
        re-running extraction finds it and changes nothing."""
        if not p.evidence:
            return None
        wanted = set(p.evidence)
        text = normalise_text(p.text)
        for o in self.by_id.values():
            if not wanted <= set(o.evidence):
                continue
            if p.trait_key and o.trait_key == p.trait_key and same_value(o.value, p.value):
                return o
            if normalise_text(o.text) == text:
                return o
        return None

    def vector(self, text: str) -> Vectors:
        return Vectors(self.embedder.model_id, self.embedder.embed_batch([text]))

    def candidates(self, p: ProposedObservation, vector: Vectors, k: int = 5) -> list[Candidate]:
        """Active observations in the proposal's slot, and the ``k`` nearest by meaning."""
        out = {
            o.id: Candidate(o, 1.0)
            for o in self.active()
            if p.trait_key is not None and o.trait_key == p.trait_key
        }
        hits = self.backend.search(
            self.tenant,
            Collection.OBSERVATIONS,
            mode=SearchMode.VECTOR,
            vector=vector,
            where=Where(eq={"profile_id": self.profile_id, "status": _ACTIVE.value}),
            limit=k,
        )
        for hit in hits:
            if isinstance(hit.record, Observation) and hit.record.id not in out:
                current = self.by_id.get(hit.record.id, hit.record)
                out[current.id] = Candidate(current, hit.score)
        return list(out.values())

    def chain(self, observation: Observation) -> list[Observation]:
        """Every version of this fact, oldest first."""
        first = observation
        seen = {first.id}
        while first.supersedes and first.supersedes in self.by_id and first.supersedes not in seen:
            first = self.by_id[first.supersedes]
            seen.add(first.id)
        out = [first]
        while out[-1].superseded_by and out[-1].superseded_by in self.by_id:
            nxt = self.by_id[out[-1].superseded_by]
            if nxt.id in {o.id for o in out}:
                break
            out.append(nxt)
        return out

    # -- writing ---------------------------------------------------------------------
    def _write(self, records: Sequence[Observation], vectors: Vectors | None = None) -> None:
        if vectors is None:
            texts = [o.text for o in records]
            vectors = Vectors(self.embedder.model_id, self.embedder.embed_batch(texts))
        self.backend.upsert(self.tenant, Collection.OBSERVATIONS, list(records), vectors)
        for o in records:
            self.by_id[o.id] = o

    def add(
        self,
        p: ProposedObservation,
        vector: Vectors,
        *,
        valid_from: datetime,
        conversation_id: str | None,
        channel: Channel | None,
        extractor: str,
        source: str,
        decision: Decision = Decision.ADD,
        note: str = "",
    ) -> Observation:
        now = utcnow()
        observation = Observation(
            id=new_id("obs"),
            tenant=self.tenant,
            profile_id=self.profile_id,
            kind=p.kind,
            text=p.text,
            confidence=p.confidence,
            evidence=p.evidence,
            conversation_id=conversation_id,
            channel=channel,
            trait_key=p.trait_key,
            value=p.value,
            valid_from=valid_from,
            created_at=now,
            updated_at=now,
            extractor=extractor,
            source=source,
            decision=decision,
            revisions=(
                Revision(
                    at=now,
                    decision=decision,
                    extractor=extractor,
                    conversation_id=conversation_id,
                    evidence=p.evidence,
                    note=note,
                ),
            ),
        )
        self._write([observation], vector)
        return observation

    def merge(
        self,
        target: Observation,
        p: ProposedObservation,
        *,
        conversation_id: str | None,
        extractor: str,
        note: str,
    ) -> Observation | None:
        """Merge the proposal's evidence into ``target``; None when it adds nothing."""
        fresh = tuple(e for e in p.evidence if e not in target.evidence)
        if not fresh:
            return None
        now = utcnow()
        merged = target.model_copy(
            update={
                "evidence": (*target.evidence, *fresh),
                "confidence": max(target.confidence, p.confidence),
                "updated_at": now,
                "revisions": (
                    *target.revisions,
                    Revision(
                        at=now,
                        decision=Decision.DUPLICATE,
                        extractor=extractor,
                        conversation_id=conversation_id,
                        evidence=fresh,
                        note=note,
                    ),
                ),
            }
        )
        self._write([merged], self.vector(merged.text))
        return merged

    def supersede(
        self,
        target: Observation,
        p: ProposedObservation,
        vector: Vectors,
        *,
        valid_from: datetime,
        conversation_id: str | None,
        channel: Channel | None,
        extractor: str,
        source: str,
        note: str,
    ) -> Observation:
        """Record ``p`` as a new version of ``target``'s fact, at its place in time."""
        versions = self.chain(target)
        later = [o for o in versions if o.valid_from > valid_from]
        earlier = [o for o in versions if o.valid_from <= valid_from]
        new = self.add(
            p,
            vector,
            valid_from=valid_from,
            conversation_id=conversation_id,
            channel=channel,
            extractor=extractor,
            source=source,
            decision=Decision.UPDATE,
            note=note,
        )
        changed: list[Observation] = []
        if later:  # said before a newer statement: it goes into history directly
            nxt = later[0]
            new = new.model_copy(
                update={
                    "status": _SUPERSEDED,
                    "valid_to": nxt.valid_from,
                    "superseded_by": nxt.id,
                    "supersedes": earlier[-1].id if earlier else None,
                }
            )
            changed += [new, nxt.model_copy(update={"supersedes": new.id})]
        else:
            new = new.model_copy(update={"supersedes": earlier[-1].id if earlier else None})
            changed.append(new)
        if earlier:
            prev = earlier[-1]
            changed.append(
                prev.model_copy(
                    update={
                        "status": _SUPERSEDED if prev.status is _ACTIVE else prev.status,
                        "valid_to": valid_from if prev.valid_to is None or later else prev.valid_to,
                        "superseded_by": new.id,
                        "updated_at": utcnow(),
                    }
                )
            )
        self._write(changed)
        return new

    def remove(self, observation: Observation) -> list[Observation]:
        """Delete one version and relink its neighbours; a deleted head hands the
        active status back to its predecessor. Returns the records rewritten."""
        prev = self.by_id.get(observation.supersedes or "")
        nxt = self.by_id.get(observation.superseded_by or "")
        self.backend.delete(self.tenant, Collection.OBSERVATIONS, Where(eq={"id": observation.id}))
        self.by_id.pop(observation.id, None)
        changed: list[Observation] = []
        if nxt is not None:
            nxt = nxt.model_copy(update={"supersedes": prev.id if prev else None})
            changed.append(nxt)
        if prev is not None:
            update: dict[str, object] = {"superseded_by": nxt.id if nxt else None}
            if nxt is not None:
                update["valid_to"] = nxt.valid_from
            elif observation.status is _ACTIVE:
                update.update({"status": _ACTIVE, "valid_to": None})
            changed.append(prev.model_copy(update=update))
        if changed:
            self._write(changed)
        return changed
