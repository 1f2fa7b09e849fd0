"""Observations and extraction: the service that turns transcripts into a profile
(``memory.observations``).

Extraction runs when a conversation ends (``Settings.auto_extract``), on
demand (:meth:`Observations.extract`, :meth:`~Observations.extract_profile`)
and as a back-fill batch (:meth:`~Observations.extract_all`). The configured
extractor (an LLM through LiteLLM when ``Settings.llm_model`` is set, a local
GGUF model when ``Settings.llm_gguf`` is, else the heuristic rules) proposes;
policy and the reconciler decide (:mod:`memory_core.extraction.reconcile`);
this module writes, atomically per conversation, and records which extractor
ran over which messages so that re-running changes nothing. A slow extractor
runs as a background job (:meth:`~Observations.extract_in_background`). See
``docs/extraction.md``.
"""

from __future__ import annotations

import builtins
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime

from memory_core.backends.base import Collection, Where, require
from memory_core.context import ProfileRef
from memory_core.errors import ModelError, NotFoundError, ValidationError
from memory_core.extraction.background import ExtractionJob
from memory_core.extraction.base import ExtractionInput, Extractor, ProposedObservation
from memory_core.extraction.reconcile import Reconciler, RuleReconciler, sensitive
from memory_core.extraction.reports import BatchReport, Explanation, ExtractionReport
from memory_core.extraction.store import ProfileObservations
from memory_core.extraction.writing import ExtractionWriter, forget_messages, trait_updates
from memory_core.governance.audit import concerning
from memory_core.governance.screening import screen_extraction, screen_observation
from memory_core.models import (
    Conversation,
    ConversationStatus,
    DeletionReceipt,
    ExtractionRecord,
    ExtractionStatus,
    Observation,
    ObservationKind,
    ObservationStatus,
    Revision,
    Usage,
    utcnow,
)
from memory_core.services._base import Service
from memory_core.validation import (
    callback,
    choice,
    flag,
    number,
    optional_text,
    optional_timestamp,
    record_id,
    source_name,
    strings,
)
from memory_core.validation import text as check_text

__all__ = ["Observations", "Progress"]

log = logging.getLogger("memory_core.extraction")

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` by batch extraction."""


class Observations(Service):
    """What was learned about a tenant's customers: extraction, and the observations
    it (or an agent) recorded, with their history and provenance."""

    __slots__ = ()

    # -- configuration -----------------------------------------------------------
    @property
    def extractor(self) -> Extractor:
        """The extractor in use: an :class:`LLMExtractor` when ``settings.llm_model``
        is set, else the :class:`HeuristicExtractor`. Assign to replace it (for
        every handle over the same store)."""
        return self._ctx.extractor

    @extractor.setter
    def extractor(self, value: Extractor) -> None:
        self._ctx.extractor = value

    @property
    def reconciler(self) -> Reconciler:
        """Rules, or rules plus an LLM for close calls when the extractor is an LLM.
        Assign to replace it (for every handle over the same store)."""
        return self._ctx.reconciler

    @reconciler.setter
    def reconciler(self, value: Reconciler) -> None:
        self._ctx.reconciler = value

    # -- extraction --------------------------------------------------------------
    def extract(self, conversation_id: str, *, force: bool = False) -> ExtractionReport:
        """Extract observations, trait updates and a summary from one conversation.

        Idempotent: a conversation already extracted by the same extractor over
        the same messages is skipped (``force=True`` runs it again, and reconciliation
        still adds nothing already known). A model failure is recorded as pending
        (for :meth:`extract_all` to retry) and raised as ``ModelError``.
        """
        flag(force, "force")
        tenant = self._tenant
        conv = self._m.conversations.get(conversation_id)
        profile_id = self._ctx.live_profile(tenant, conv.profile_id).id
        messages = self._backend.find(
            tenant, Collection.MESSAGES, Where(eq={"conversation_id": conv.id}), order_by="seq"
        )
        extractor = self.extractor
        found = self._backend.get(tenant, Collection.EXTRACTIONS, [conv.id])
        previous = found[0] if found else None
        last = messages[-1].id if messages else None
        if (
            not force
            and previous is not None
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
        traits = self._m.traits
        known = ProfileObservations(self._backend, self._ctx.embedder, tenant, profile_id)
        data = ExtractionInput(
            conversation=conv,
            messages=messages,
            observations=known.active(),
            traits=traits._profile_traits(profile_id),
            time=conv.ended_at or (messages[-1].ts if messages else conv.started_at),
        )
        attempts = previous.attempts + 1 if previous is not None else 1
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
            self._backend.upsert(tenant, Collection.EXTRACTIONS, [record])
            raise
        output = screen_extraction(self._ctx, tenant, output)  # tenant policy: drop, redact
        with self._ctx.resolve_lock, self._backend.batch():
            writer = ExtractionWriter(
                ProfileObservations(self._backend, self._ctx.embedder, tenant, profile_id),
                self.reconciler,
                extractor.name,
                messages,
                conversation_id=conv.id,
                channel=conv.channel,
            )
            decisions = [writer.apply(p) for p in output.observations]
            traits_set, conflicts, rejected = trait_updates(
                self._backend,
                tenant,
                profile_id,
                data,
                output.traits,
                traits._schema(),
                traits._profile_traits(profile_id),
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
            self._backend.upsert(tenant, Collection.EXTRACTIONS, [record])
            written = Counter(d.decision.value for d in decisions)
            self._ctx.audit(  # ids and counts only (governance audit log)
                tenant,
                "extract",
                f"conversation:{conv.id}",
                {**written, "traits": len(traits_set), "summary": int(sid is not None)},
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

    def extract_profile(self, ref: ProfileRef, *, force: bool = False) -> BatchReport:
        """Extract every conversation of one profile (open ones too), oldest first."""
        flag(force, "force")
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        found = self._backend.find(
            tenant,
            Collection.CONVERSATIONS,
            Where(eq={"profile_id": profile.id}),
            order_by="started_at",
        )
        return self._extract_many(found, force)

    def extract_all(self, *, force: bool = False, progress: Progress | None = None) -> BatchReport:
        """Back-fill: extract every ended conversation of the tenant not yet extracted
        by the current extractor (and retry pending ones), oldest first. A model
        failure leaves that conversation pending and the batch goes on."""
        flag(force, "force")
        callback(progress, "progress")
        return self._extract_many(self._backlog(force), force, progress)

    def extract_in_background(self, *, force: bool = False) -> ExtractionJob:
        """:meth:`extract_all` as a background job: returns at once; the tenant's
        ended conversations not yet extracted by the current extractor are
        extracted one after another on the store's worker thread (one worker per
        store, jobs in the order queued). ``job.wait()``, ``job.done``/``job.total``,
        ``job.cancel()``, ``job.report``. Resumable: a cancelled or interrupted job
        leaves the rest for the next one. See docs/extraction.md."""
        flag(force, "force")
        ids = [c.id for c in self._backlog(force)]
        return self._queue(ids, force)

    def wait_background(self, timeout: float | None = None) -> bool:
        """Wait until every background extraction queued so far in this store has
        ended (:meth:`extract_in_background`, and conversations ended while the
        extractor runs in the background, e.g. a local GGUF model); False if
        ``timeout`` seconds passed first."""
        if timeout is not None:
            timeout = number(timeout, "timeout", 0.0, 1e9)
        return self._ctx.background.wait(timeout)

    def _backlog(self, force: bool) -> builtins.list[Conversation]:
        """Ended conversations, oldest first, less those the current extractor did."""
        tenant = self._tenant
        ended = self._backend.find(
            tenant,
            Collection.CONVERSATIONS,
            Where(eq={"status": ConversationStatus.ENDED.value}),
            order_by="started_at",
        )
        if not force:
            done = {
                r.id
                for r in self._backend.find(
                    tenant,
                    Collection.EXTRACTIONS,
                    Where(
                        eq={"status": ExtractionStatus.DONE.value, "extractor": self.extractor.name}
                    ),
                )
            }
            ended = [c for c in ended if c.id not in done]
        return ended

    def _queue(self, conversation_ids: Sequence[str], force: bool) -> ExtractionJob:
        def run(job: ExtractionJob) -> BatchReport:
            found = self._backend.get(self._tenant, Collection.CONVERSATIONS, job.conversation_ids)
            order = {cid: i for i, cid in enumerate(job.conversation_ids)}
            found.sort(key=lambda c: order[c.id])
            return self._extract_many(found, force, job.progress, job)

        return self._ctx.background.submit(ExtractionJob(conversation_ids, run))

    def _extract_many(
        self,
        conversations: Sequence[Conversation],
        force: bool,
        progress: Progress | None = None,
        job: ExtractionJob | None = None,
    ) -> BatchReport:
        tenant = self._tenant
        t0 = time.perf_counter()
        reports: builtins.list[ExtractionReport] = []
        messages = 0
        for i, conv in enumerate(conversations, start=1):
            if job is not None and job.cancelled:
                break
            messages += self._backend.count(
                tenant, Collection.MESSAGES, Where(eq={"conversation_id": conv.id})
            )
            try:
                reports.append(self.extract(conv.id, force=force))
            except ModelError as exc:
                reports.append(self._pending_report(conv, exc))
            except NotFoundError:
                if job is None:
                    raise
                continue  # a queued conversation deleted meanwhile
            if progress is not None:
                progress(i, len(conversations))
        return BatchReport.of(reports, messages, time.perf_counter() - t0)

    def _pending_report(self, conv: Conversation, exc: ModelError) -> ExtractionReport:
        return ExtractionReport(
            conversation_id=conv.id,
            profile_id=conv.profile_id,
            extractor=self.extractor.name,
            status="pending",
            usage=getattr(exc, "usage", Usage()),
            error=str(exc),
        )

    def _auto_extract(self, conv: Conversation) -> None:
        """Run after a conversation ends: extraction never makes ending it fail (an
        extractor marked ``background``, a local GGUF model, is queued instead)."""
        if not self._ctx.settings.auto_extract:
            return
        if getattr(self.extractor, "background", False):  # slow (a local model): queue it
            self._queue([conv.id], False)
            return
        try:
            self.extract(conv.id)
        except ModelError as exc:
            log.warning(
                "extraction of conversation %s is pending (%s); `convmem extract --all` "
                "or memory.observations.extract_all() retries it",
                conv.id,
                exc,
            )

    def extraction_status(self, conversation_id: str) -> ExtractionRecord | None:
        """Which extractor last ran on a conversation, its status, cost and error."""
        tenant = self._tenant
        self._m.conversations.get(conversation_id)
        found = self._backend.get(tenant, Collection.EXTRACTIONS, [conversation_id])
        return found[0] if found else None

    # -- observations ------------------------------------------------------------
    def list(
        self,
        ref: ProfileRef,
        *,
        include_superseded: bool = False,
        as_of: datetime | None = None,
        kind: ObservationKind | str | None = None,
    ) -> builtins.list[Observation]:
        """A profile's observations, oldest first: the active ones; with
        ``include_superseded`` every version; ``as_of`` those valid at that time."""
        flag(include_superseded, "include_superseded")
        as_of = optional_timestamp(as_of, "as_of")
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        where = Where(eq={"profile_id": profile.id})
        if kind is not None:
            kind = choice(ObservationKind, kind, "observation kind")
            where = where.and_(Where(eq={"kind": kind.value}))
        if as_of is None and not include_superseded:
            where = where.and_(Where(eq={"status": ObservationStatus.ACTIVE.value}))
        found = self._backend.find(tenant, Collection.OBSERVATIONS, where, order_by="valid_from")
        if as_of is not None:
            found = [o for o in found if o.valid_at(as_of)]
        return found

    def get(self, observation_id: str) -> Observation:
        """One observation (any status), by id."""
        record_id(observation_id, "observation")
        return require(self._backend, self._tenant, Collection.OBSERVATIONS, observation_id)

    def add(
        self,
        ref: ProfileRef,
        text: str,
        kind: ObservationKind | str = ObservationKind.CONTEXT,
        *,
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
        limits = self._ctx.settings.limits
        text = check_text(
            text, "text", limits.observation_chars, limit="observation_chars", required=True
        )
        kind = choice(ObservationKind, kind, "observation kind")
        evidence = strings(evidence, "evidence", max_items=limits.list_items, max_chars=200)
        source = source_name(source, limits)
        if trait_key is not None:
            self._m.traits._check_key(trait_key)
        value = optional_text(value, "value", limits.observation_chars, limit="observation_chars")
        confidence = number(confidence, "confidence", 0.0, 1.0)
        tenant = self._tenant
        profile = self._m.profiles.get(ref)
        try:
            proposal = ProposedObservation(
                kind=kind,
                text=" ".join(text.split()),
                confidence=confidence,
                evidence=tuple(dict.fromkeys(evidence)),
                trait_key=trait_key,
                value=value,
                note=f"recorded by {source}",
            )
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ValidationError(f"invalid observation: {exc}") from exc
        cited = self._backend.get(tenant, Collection.MESSAGES, list(proposal.evidence))
        mine = [m for m in cited if m.profile_id == profile.id]
        if len(mine) != len(proposal.evidence):
            raise ValidationError("evidence must be ids of this customer's messages")
        if why := sensitive(proposal.text):
            raise ValidationError(f"not remembered: the text {why}")
        proposal = screen_observation(self._ctx, tenant, proposal)  # tenant policy: deny, redact
        first = min(mine, key=lambda m: m.ts) if mine else None
        with self._ctx.resolve_lock, self._backend.batch():
            store = ProfileObservations(self._backend, self._ctx.embedder, tenant, profile.id)
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
            self._ctx.audit(  # ids and labels only, never the text
                tenant,
                "remember_observation",
                f"observation:{decision.observation_id}",
                {
                    "profile": profile.id,
                    "kind": proposal.kind.value,
                    "decision": decision.decision.value,
                    "source": source[:64],
                },
            )
        return self.get(decision.observation_id)

    def history(self, observation_id: str) -> builtins.list[Observation]:
        """Every version of this observation's fact, oldest first (superseded ones included)."""
        observation = self.get(observation_id)
        store = ProfileObservations(
            self._backend, self._ctx.embedder, self._tenant, observation.profile_id
        )
        return store.chain(observation)

    def explain(self, observation_id: str) -> Explanation:
        """The chain behind an observation: evidence messages, their conversations
        (channel, time), the extractor or model, the reconcile decisions, its versions,
        and the audit events about those versions and conversations."""
        tenant = self._tenant
        observation = self.get(observation_id)
        found = self._backend.get(tenant, Collection.MESSAGES, list(observation.evidence))
        messages = sorted(found, key=lambda m: m.ts)
        conv_ids = list(dict.fromkeys(m.conversation_id for m in messages))
        conversations = self._backend.get(tenant, Collection.CONVERSATIONS, conv_ids)
        present = {m.id for m in messages}
        history = self.history(observation_id)
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
            audit=tuple(concerning(self._ctx, tenant, about)),
        )

    def retract(self, observation_id: str, *, reason: str = "") -> Observation:
        """Mark an observation as no longer true (status ``deleted``, ``valid_to`` now);
        it leaves recall but stays in its history. To erase it, :meth:`delete`."""
        limits = self._ctx.settings.limits
        check_text(reason, "reason", limits.description_chars, limit="description_chars")
        tenant = self._tenant
        observation = self.get(observation_id)
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
        store = ProfileObservations(
            self._backend, self._ctx.embedder, tenant, observation.profile_id
        )
        with self._backend.batch():
            store._write([retracted])
            self._ctx.audit(tenant, "retract_observation", f"observation:{observation.id}")
        return retracted

    def delete(self, observation_id: str) -> DeletionReceipt:
        """Erase an observation and every version of it, from every index."""
        tenant = self._tenant
        observation = self.get(observation_id)
        ids = [o.id for o in self.history(observation_id)]
        n = self._backend.delete(tenant, Collection.OBSERVATIONS, Where(any_of={"id": ids}))
        receipt = DeletionReceipt(
            tenant=tenant, target=f"observation:{observation.id}", deleted={"observations": n}
        )
        return self._ctx.erased(receipt, "delete_observation")  # audit, caches, purge

    def _forget_derived(
        self,
        profile_id: str,
        message_ids: Sequence[str],
        conversation_ids: Sequence[str],
    ) -> dict[str, int]:
        """Before messages are deleted: drop them from evidence, delete what only they
        supported, and the summaries and extraction records of their conversations.
        Returns non-zero deletion counts per collection."""
        return forget_messages(
            self._backend,
            self._ctx.embedder,
            self._tenant,
            profile_id,
            message_ids,
            conversation_ids,
        )
