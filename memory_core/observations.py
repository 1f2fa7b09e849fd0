"""Observations, summaries and extracted traits: the part of
:class:`memory_core.memory.Memory` that turns transcripts into a profile.

Extraction runs when a conversation ends (``Settings.auto_extract``), on
demand (:meth:`ObservationsMixin.extract`, :meth:`~ObservationsMixin.extract_profile`)
and as a back-fill batch (:meth:`~ObservationsMixin.extract_all`). The
configured extractor (an LLM through LiteLLM when ``Settings.llm_model`` is
set, else the heuristic rules) proposes; policy and the reconciler decide
(:mod:`memory_core.extraction.reconcile`); this module writes, atomically per
conversation, and records which extractor ran over which messages so that
re-running changes nothing. See ``docs/extraction.md``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from memory_core._engine import ProfileRef
from memory_core.backends.base import Collection, Where
from memory_core.config import DEFAULT_TENANT
from memory_core.errors import ModelError, NotFoundError, ValidationError
from memory_core.extraction.base import ExtractionInput, Extractor, ProposedObservation
from memory_core.extraction.heuristic import HeuristicExtractor
from memory_core.extraction.llm import LLMExtractor
from memory_core.extraction.profile_traits import TraitsMixin
from memory_core.extraction.recalling import recall_observations, recall_summaries
from memory_core.extraction.reconcile import (
    LLMReconciler,
    Reconciler,
    RuleReconciler,
    sensitive,
)
from memory_core.extraction.reports import (
    BatchReport,
    Explanation,
    ExtractionReport,
)
from memory_core.extraction.store import ProfileObservations
from memory_core.extraction.writing import (
    ExtractionWriter,
    forget_messages,
    summary_id,
    trait_updates,
)
from memory_core.governance.audit import concerning
from memory_core.governance.audit import record as audit_record
from memory_core.governance.erasure import finish as finish_erasure
from memory_core.governance.screening import screen_extraction, screen_observation
from memory_core.models import (
    Conversation,
    ConversationStatus,
    DeletionReceipt,
    ExtractionRecord,
    ExtractionStatus,
    Message,
    Observation,
    ObservationKind,
    ObservationStatus,
    Revision,
    Summary,
    Usage,
    utcnow,
)
from memory_core.recall import RecallItem, RecallQuery

__all__ = ["ObservationsMixin", "Progress"]

log = logging.getLogger("memory_core.extraction")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` by batch extraction."""


class ObservationsMixin(TraitsMixin):
    """Extraction, observations, summaries, trait schema and precedence."""

    _extractor: Extractor | None = None
    _reconciler: Reconciler | None = None

    def _conversation(self, tenant: str, conversation_id: str) -> Conversation:
        self._tenant(tenant)
        found = self._get_record(tenant, Collection.CONVERSATIONS, conversation_id)
        if not isinstance(found, Conversation):
            raise NotFoundError(
                f"conversation {conversation_id!r} does not exist in tenant {tenant!r}"
            )
        return found

    # -- configuration -----------------------------------------------------------
    @property
    def extractor(self) -> Extractor:
        """The extractor in use: an :class:`LLMExtractor` when ``settings.llm_model``
        is set, else the :class:`HeuristicExtractor`. Assign to replace it."""
        if self._extractor is None:
            model = self.settings.llm_model
            self._extractor = (
                LLMExtractor(
                    model,
                    api_base=self.settings.llm_api_base,
                    timeout=self.settings.llm_timeout,
                )
                if model
                else HeuristicExtractor(default_region=self.settings.default_region)
            )
        return self._extractor

    @extractor.setter
    def extractor(self, value: Extractor) -> None:
        self._extractor = value
        self._reconciler = None

    @property
    def reconciler(self) -> Reconciler:
        """Rules, or rules plus an LLM for close calls when the extractor is an LLM."""
        if self._reconciler is None:
            ex = self.extractor
            self._reconciler = (
                LLMReconciler(ex.client) if isinstance(ex, LLMExtractor) else RuleReconciler()
            )
        return self._reconciler

    @reconciler.setter
    def reconciler(self, value: Reconciler) -> None:
        self._reconciler = value

    # -- extraction --------------------------------------------------------------
    def extract(
        self, conversation_id: str, *, tenant: str = DEFAULT_TENANT, force: bool = False
    ) -> ExtractionReport:
        """Extract observations, trait updates and a summary from one conversation.

        Idempotent: a conversation already extracted by the same extractor over
        the same messages is skipped (``force=True`` runs it again, and reconciliation
        still adds nothing already known). A model failure is recorded as pending
        (for :meth:`extract_all` to retry) and raised as ``ModelError``.
        """
        conv = self._conversation(tenant, conversation_id)
        profile_id = self._live_profile(tenant, conv.profile_id).id
        messages = [
            m
            for m in self.backend.find(
                tenant, Collection.MESSAGES, Where(eq={"conversation_id": conv.id}), order_by="seq"
            )
            if isinstance(m, Message)
        ]
        extractor = self.extractor
        previous = self._get_record(tenant, Collection.EXTRACTIONS, conv.id)
        last = messages[-1].id if messages else None
        if (
            not force
            and isinstance(previous, ExtractionRecord)
            and previous.status is ExtractionStatus.DONE
            and previous.extractor == extractor.name
            and (previous.messages, previous.last_message_id) == (len(messages), last)
        ):
            return ExtractionReport(
                conversation_id=conv.id,
                profile_id=profile_id,
                extractor=extractor.name,
                status="skipped",
            )
        known = ProfileObservations(self.backend, self.embedder, tenant, profile_id)
        data = ExtractionInput(
            conversation=conv,
            messages=messages,
            observations=known.active(),
            traits=self._profile_traits(tenant, profile_id),
            time=conv.ended_at or (messages[-1].ts if messages else conv.started_at),
        )
        attempts = previous.attempts + 1 if isinstance(previous, ExtractionRecord) else 1
        try:
            output = extractor.extract(data)
        except ModelError as exc:
            usage = getattr(exc, "usage", Usage())
            record = ExtractionRecord(
                id=conv.id,
                tenant=tenant,
                conversation_id=conv.id,
                profile_id=profile_id,
                status=ExtractionStatus.PENDING,
                extractor=extractor.name,
                messages=len(messages),
                last_message_id=last,
                attempts=attempts,
                error=str(exc),
                usage=usage,
            )
            self.backend.upsert(tenant, Collection.EXTRACTIONS, [record])
            raise
        output = screen_extraction(self, tenant, output)  # tenant policy: drop, redact
        with self._resolve_lock, self.backend.batch():
            writer = ExtractionWriter(
                ProfileObservations(self.backend, self.embedder, tenant, profile_id),
                self.reconciler,
                extractor.name,
                messages,
                conversation_id=conv.id,
                channel=conv.channel,
            )
            decisions = [writer.apply(p) for p in output.observations]
            traits_set, conflicts, rejected = trait_updates(
                self.backend,
                tenant,
                profile_id,
                data,
                output.traits,
                self._schema(tenant),
                self._profile_traits(tenant, profile_id),
            )
            sid = writer.write_summary(data, output.summary)
            usage = output.usage + writer.usage
            record = ExtractionRecord(
                id=conv.id,
                tenant=tenant,
                conversation_id=conv.id,
                profile_id=profile_id,
                status=ExtractionStatus.DONE,
                extractor=extractor.name,
                messages=len(messages),
                last_message_id=last,
                attempts=attempts,
                usage=usage,
            )
            self.backend.upsert(tenant, Collection.EXTRACTIONS, [record])
            written = Counter(d.decision.value for d in decisions)
            audit_record(  # ids and counts only (governance audit log)
                self,
                tenant,
                "extract",
                f"conversation:{conv.id}",
                details={**written, "traits": len(traits_set), "summary": int(sid is not None)},
            )
        return ExtractionReport(
            conversation_id=conv.id,
            profile_id=profile_id,
            extractor=extractor.name,
            status="done",
            decisions=tuple(decisions),
            traits_set=tuple(traits_set),
            trait_conflicts=tuple(conflicts),
            summary_id=sid,
            usage=usage,
            rejected=tuple([*output.rejected, *rejected]),
        )

    def extract_profile(
        self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT, force: bool = False
    ) -> BatchReport:
        """Extract every conversation of one profile (open ones too), oldest first."""
        profile = self.get_profile(ref, tenant=tenant)
        found = self.backend.find(
            tenant,
            Collection.CONVERSATIONS,
            Where(eq={"profile_id": profile.id}),
            order_by="started_at",
        )
        return self._extract_many(tenant, [c for c in found if isinstance(c, Conversation)], force)

    def extract_all(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        force: bool = False,
        progress: Progress | None = None,
    ) -> BatchReport:
        """Back-fill: extract every ended conversation of the tenant not yet extracted
        by the current extractor (and retry pending ones), oldest first. A model
        failure leaves that conversation pending and the batch goes on."""
        self._tenant(tenant)
        ended = [
            c
            for c in self.backend.find(
                tenant,
                Collection.CONVERSATIONS,
                Where(eq={"status": ConversationStatus.ENDED.value}),
                order_by="started_at",
            )
            if isinstance(c, Conversation)
        ]
        if not force:
            done = {
                r.id
                for r in self.backend.find(
                    tenant,
                    Collection.EXTRACTIONS,
                    Where(
                        eq={"status": ExtractionStatus.DONE.value, "extractor": self.extractor.name}
                    ),
                )
            }
            ended = [c for c in ended if c.id not in done]
        return self._extract_many(tenant, ended, force, progress)

    def _extract_many(
        self,
        tenant: str,
        conversations: Sequence[Conversation],
        force: bool,
        progress: Progress | None = None,
    ) -> BatchReport:
        t0 = time.perf_counter()
        reports: list[ExtractionReport] = []
        messages = 0
        for i, conv in enumerate(conversations, start=1):
            messages += self.backend.count(
                tenant, Collection.MESSAGES, Where(eq={"conversation_id": conv.id})
            )
            try:
                reports.append(self.extract(conv.id, tenant=tenant, force=force))
            except ModelError as exc:
                reports.append(self._pending_report(tenant, conv, exc))
            if progress is not None:
                progress(i, len(conversations))
        return BatchReport.of(reports, messages, time.perf_counter() - t0)

    def _pending_report(self, tenant: str, conv: Conversation, exc: ModelError) -> ExtractionReport:
        return ExtractionReport(
            conversation_id=conv.id,
            profile_id=conv.profile_id,
            extractor=self.extractor.name,
            status="pending",
            usage=getattr(exc, "usage", Usage()),
            error=str(exc),
        )

    def _auto_extract(self, tenant: str, conv: Conversation) -> None:
        """Run after a conversation ends: extraction never makes ending it fail."""
        if not self.settings.auto_extract:
            return
        try:
            self.extract(conv.id, tenant=tenant)
        except ModelError as exc:
            log.warning(
                "extraction of conversation %s is pending (%s); `convmem extract --all` "
                "or Memory.extract_all() retries it",
                conv.id,
                exc,
            )

    def extraction_status(
        self, conversation_id: str, *, tenant: str = DEFAULT_TENANT
    ) -> ExtractionRecord | None:
        """Which extractor last ran on a conversation, its status, cost and error."""
        self._conversation(tenant, conversation_id)
        found = self._get_record(tenant, Collection.EXTRACTIONS, conversation_id)
        return found if isinstance(found, ExtractionRecord) else None

    # -- observations ------------------------------------------------------------
    def observations(
        self,
        ref: ProfileRef,
        *,
        tenant: str = DEFAULT_TENANT,
        include_superseded: bool = False,
        as_of: datetime | None = None,
        kind: ObservationKind | str | None = None,
    ) -> list[Observation]:
        """A profile's observations, oldest first: the active ones; with
        ``include_superseded`` every version; ``as_of`` those valid at that time."""
        profile = self.get_profile(ref, tenant=tenant)
        where = Where(eq={"profile_id": profile.id})
        if kind is not None:
            where = where.and_(Where(eq={"kind": ObservationKind(kind).value}))
        if as_of is None and not include_superseded:
            where = where.and_(Where(eq={"status": ObservationStatus.ACTIVE.value}))
        found = [
            o
            for o in self.backend.find(
                tenant, Collection.OBSERVATIONS, where, order_by="valid_from"
            )
            if isinstance(o, Observation)
        ]
        if as_of is not None:
            found = [o for o in found if o.valid_at(as_of)]
        return found

    def get_observation(self, observation_id: str, *, tenant: str = DEFAULT_TENANT) -> Observation:
        self._tenant(tenant)
        found = self._get_record(tenant, Collection.OBSERVATIONS, observation_id)
        if not isinstance(found, Observation):
            raise NotFoundError(
                f"observation {observation_id!r} does not exist in tenant {tenant!r}"
            )
        return found

    def remember_observation(
        self,
        ref: ProfileRef,
        text: str,
        kind: ObservationKind | str = ObservationKind.CONTEXT,
        *,
        tenant: str = DEFAULT_TENANT,
        evidence: Sequence[str] = (),
        source: str = "agent",
        trait_key: str | None = None,
        value: str | None = None,
        confidence: float = 1.0,
    ) -> Observation:
        """Record an observation directly (an agent noting "prefers morning calls").

        It is screened by the tenant's policy like extraction output: a denied
        kind, trait key or topic raises :class:`~memory_core.governance.PolicyDenied`
        (a ValidationError) and nothing is written; text and value are redacted.
        Text holding a card number, password or SSN is refused (ValidationError).
        It is then reconciled like an extracted one: the same statement merges into
        the known observation, a new value for ``trait_key`` supersedes the old one.
        ``evidence`` are ids of this customer's messages. The write is audited
        (``remember_observation``). Returns the observation now holding the statement.
        """
        profile = self.get_profile(ref, tenant=tenant)
        try:
            proposal = ProposedObservation(
                kind=ObservationKind(kind),
                text=" ".join(text.split()),
                confidence=confidence,
                evidence=tuple(dict.fromkeys(evidence)),
                trait_key=trait_key,
                value=value,
                note=f"recorded by {source}",
            )
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ValidationError(f"invalid observation: {exc}") from exc
        cited = [m for m in self.backend.get(tenant, Collection.MESSAGES, list(proposal.evidence))]
        mine = [m for m in cited if isinstance(m, Message) and m.profile_id == profile.id]
        if len(mine) != len(proposal.evidence):
            raise ValidationError("evidence must be ids of this customer's messages")
        if why := sensitive(proposal.text):
            raise ValidationError(f"not remembered: the text {why}")
        proposal = screen_observation(self, tenant, proposal)  # tenant policy: deny, redact
        first = min(mine, key=lambda m: m.ts) if mine else None
        with self._resolve_lock, self.backend.batch():
            store = ProfileObservations(self.backend, self.embedder, tenant, profile.id)
            writer = ExtractionWriter(
                store,
                RuleReconciler(),
                source,
                mine,
                source=source,
                conversation_id=first.conversation_id if first else None,
                channel=first.channel if first else None,
            )
            decision = writer.apply(proposal, checked=True)
            assert decision.observation_id is not None
            audit_record(  # ids and labels only, never the text
                self,
                tenant,
                "remember_observation",
                f"observation:{decision.observation_id}",
                details={
                    "profile": profile.id,
                    "kind": proposal.kind.value,
                    "decision": decision.decision.value,
                    "source": source[:64],
                },
            )
        return self.get_observation(decision.observation_id, tenant=tenant)

    def history(self, observation_id: str, *, tenant: str = DEFAULT_TENANT) -> list[Observation]:
        """Every version of this observation's fact, oldest first (superseded ones included)."""
        observation = self.get_observation(observation_id, tenant=tenant)
        store = ProfileObservations(self.backend, self.embedder, tenant, observation.profile_id)
        return store.chain(observation)

    def explain(self, observation_id: str, *, tenant: str = DEFAULT_TENANT) -> Explanation:
        """The chain behind an observation: evidence messages, their conversations
        (channel, time), the extractor or model, the reconcile decisions, its versions,
        and the audit events about those versions and conversations."""
        observation = self.get_observation(observation_id, tenant=tenant)
        found = self.backend.get(tenant, Collection.MESSAGES, list(observation.evidence))
        messages = sorted((m for m in found if isinstance(m, Message)), key=lambda m: m.ts)
        conv_ids = list(dict.fromkeys(m.conversation_id for m in messages))
        conversations = [
            c
            for c in self.backend.get(tenant, Collection.CONVERSATIONS, conv_ids)
            if isinstance(c, Conversation)
        ]
        present = {m.id for m in messages}
        history = self.history(observation_id, tenant=tenant)
        about = [f"observation:{o.id}" for o in history]
        about += [f"conversation:{c}" for c in conv_ids]
        if observation.conversation_id is not None:
            about.append(f"conversation:{observation.conversation_id}")
        return Explanation(
            observation=observation,
            messages=tuple(messages),
            conversations=tuple(conversations),
            missing_evidence=tuple(e for e in observation.evidence if e not in present),
            history=tuple(history),
            audit=tuple(concerning(self, tenant, about)),
        )

    def retract_observation(
        self, observation_id: str, *, tenant: str = DEFAULT_TENANT, reason: str = ""
    ) -> Observation:
        """Mark an observation as no longer true (status ``deleted``, ``valid_to`` now);
        it leaves recall but stays in its history. To erase it, :meth:`delete_observation`."""
        observation = self.get_observation(observation_id, tenant=tenant)
        if observation.status is not ObservationStatus.ACTIVE:
            return observation
        now = utcnow()
        retracted = observation.model_copy(
            update={
                "status": ObservationStatus.DELETED,
                "valid_to": now,
                "updated_at": now,
                "revisions": (
                    *observation.revisions,
                    Revision(
                        at=now,
                        decision=observation.decision,
                        extractor="retract",
                        note=f"retracted: {reason}" if reason else "retracted",
                    ),
                ),
            }
        )
        store = ProfileObservations(self.backend, self.embedder, tenant, observation.profile_id)
        with self.backend.batch():
            store._write([retracted])
            audit_record(self, tenant, "retract_observation", f"observation:{observation.id}")
        return retracted

    def delete_observation(
        self, observation_id: str, *, tenant: str = DEFAULT_TENANT
    ) -> DeletionReceipt:
        """Erase an observation and every version of it, from every index."""
        observation = self.get_observation(observation_id, tenant=tenant)
        ids = [o.id for o in self.history(observation_id, tenant=tenant)]
        n = self.backend.delete(tenant, Collection.OBSERVATIONS, Where(any_of={"id": ids}))
        receipt = DeletionReceipt(
            tenant=tenant, target=f"observation:{observation.id}", deleted={"observations": n}
        )
        return finish_erasure(self, receipt, "delete_observation")  # audit, caches, purge

    def _forget_derived(
        self,
        tenant: str,
        profile_id: str,
        message_ids: Sequence[str],
        conversation_ids: Sequence[str],
    ) -> dict[str, int]:
        """Before messages are deleted: drop them from evidence, delete what only they
        supported, and the summaries and extraction records of their conversations.
        Returns non-zero deletion counts per collection."""
        return forget_messages(
            self.backend, self.embedder, tenant, profile_id, message_ids, conversation_ids
        )

    # -- summaries ---------------------------------------------------------------
    def summaries(
        self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT, limit: int | None = 20
    ) -> list[Summary]:
        """A profile's conversation summaries, newest first."""
        profile = self.get_profile(ref, tenant=tenant)
        found = self.backend.find(
            tenant,
            Collection.SUMMARIES,
            Where(eq={"profile_id": profile.id}),
            order_by="ts",
            descending=True,
            limit=limit,
        )
        return [s for s in found if isinstance(s, Summary)]

    def get_summary(self, conversation_id: str, *, tenant: str = DEFAULT_TENANT) -> Summary:
        """The summary of one conversation."""
        self._conversation(tenant, conversation_id)
        found = self._get_record(tenant, Collection.SUMMARIES, summary_id(conversation_id))
        if not isinstance(found, Summary):
            raise NotFoundError(
                f"conversation {conversation_id!r} has no summary yet; run extract() on it"
            )
        return found

    # -- recall hooks ------------------------------------------------------------
    def _recall_observations(self, q: RecallQuery) -> list[RecallItem]:
        return recall_observations(self.backend, q)

    def _recall_summaries(self, q: RecallQuery) -> list[RecallItem]:
        return recall_summaries(self.backend, q)
