"""Conversations and messages: ingest (with identity resolution), append, end,
read and delete. Ending a conversation runs extraction (see
:mod:`memory_core.services.observations`)."""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from memory_core.backends.base import Collection, Vectors, Where
from memory_core.context import Context, ProfileRef, check_external_id
from memory_core.embedding.texts import embedding_texts
from memory_core.errors import ConflictError, MemoryCoreError, NotFoundError, ValidationError
from memory_core.governance import screening
from memory_core.models import (
    Channel,
    Conversation,
    ConversationIn,
    ConversationStatus,
    DeletionReceipt,
    Identifier,
    Message,
    MessageIn,
    Profile,
    Role,
    new_id,
    utcnow,
)
from memory_core.services._base import Service
from memory_core.validation import (
    MAX_COUNT,
    check_conversation,
    choice,
    describe,
    integer,
    items,
    optional_integer,
    optional_timestamp,
    record_id,
)

__all__ = ["Conversations", "IngestResult"]


@dataclass(frozen=True)
class IngestResult:
    """What an ingest call did: the conversation, the profile, the new messages,
    how many were already stored (``skipped``), any profiles merged into this one
    while resolving the customer; ``dropped`` and ``redacted`` count messages the
    tenant's policy excluded or redacted."""

    conversation: Conversation
    profile: Profile
    messages: builtins.list[Message]
    skipped: int
    merged_profile_ids: builtins.list[str] = field(default_factory=list)
    dropped: int = 0
    redacted: int = 0

    def __repr__(self) -> str:
        return (
            f"IngestResult(conversation={self.conversation.id!r}, profile={self.profile.id!r}, "
            f"messages={len(self.messages)}, skipped={self.skipped}, "
            f"merged={self.merged_profile_ids!r})"
        )


class Conversations(Service):
    """Conversations and their messages, in this handle's tenant."""

    __slots__ = ()

    # -- writing ------------------------------------------------------------------
    def add(
        self,
        channel: Channel | str,
        customer: Iterable[str | Identifier] = (),
        *,
        profile_id: str | None = None,
        conversation_id: str | None = None,
        started_at: datetime | None = None,
        subject: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Conversation:
        """Open a conversation for a customer given by identifiers or a profile id."""
        given = items(customer, "customer", self._ctx.settings.limits.list_items)
        try:
            conv_in = ConversationIn(
                channel=choice(Channel, channel, "channel"),
                customer=[str(c) for c in given],
                profile_id=profile_id,
                id=conversation_id,
                started_at=started_at,
                subject=subject,
                ended=False,
                metadata=metadata or {},
            )
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid conversation: {describe(exc)}") from exc
        return self._ingest(conv_in).conversation

    def add_messages(
        self, conversation_id: str, messages: Sequence[MessageIn | dict[str, Any]]
    ) -> builtins.list[Message]:
        """Append messages to an open conversation (ids already stored are skipped)."""
        conv = self.get(conversation_id)
        given = items(
            messages, "messages", self._ctx.settings.limits.messages_per_call, "messages_per_call"
        )
        try:
            parsed = [m if isinstance(m, MessageIn) else MessageIn.model_validate(m) for m in given]
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid message: {describe(exc)}") from exc
        result = self._ingest(
            ConversationIn(channel=conv.channel, id=conv.id, messages=parsed, ended=False)
        )
        return result.messages

    def add_message(
        self,
        conversation_id: str,
        role: Role | str,
        text: str,
        *,
        ts: datetime | None = None,
        message_id: str | None = None,
        author: str | None = None,
    ) -> Message:
        """Append one message to an open conversation."""
        role = choice(Role, role, "role")
        try:
            item = MessageIn(role=role, text=text, ts=ts, id=message_id, author=author)
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid message: {describe(exc)}") from exc
        added = self.add_messages(conversation_id, [item])
        if not added:
            return self.get_message(message_id or "")
        return added[0]

    def end(self, conversation_id: str, *, ended_at: datetime | None = None) -> Conversation:
        """Close a conversation (idempotent); extraction then runs on it
        (``Settings.auto_extract``) and never fails the end."""
        ended_at = optional_timestamp(ended_at, "ended_at")
        tenant = self._tenant
        with self._backend.batch():
            conv = self.get(conversation_id)
            if conv.status is ConversationStatus.ENDED:
                return conv
            conv = conv.model_copy(
                update={
                    "status": ConversationStatus.ENDED,
                    "ended_at": ended_at or utcnow(),
                }
            )
            self._backend.upsert(tenant, Collection.CONVERSATIONS, [conv])
            self._ctx.audit(tenant, "end_conversation", f"conversation:{conv.id}")
        self._m.observations._auto_extract(conv)
        return conv

    # -- reading ------------------------------------------------------------------
    def get(self, conversation_id: str) -> Conversation:
        """A conversation by id (NotFoundError if it is not in this tenant)."""
        tenant = self._tenant
        record_id(conversation_id, "conversation")
        found = self._backend.get(tenant, Collection.CONVERSATIONS, [conversation_id])
        if not found:
            raise NotFoundError(
                f"conversation {conversation_id!r} does not exist in tenant {tenant!r}",
                kind="conversation",
            )
        return found[0]

    def list(
        self, ref: ProfileRef | None = None, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[Conversation]:
        """Conversations, newest first; of one profile when ``ref`` is given."""
        limit, offset = (
            integer(limit, "limit", 0, MAX_COUNT),
            integer(offset, "offset", 0, MAX_COUNT),
        )
        tenant = self._tenant
        where = Where()
        if ref is not None:
            where = Where(eq={"profile_id": self._m.profiles.get(ref).id})
        return self._backend.find(
            tenant,
            Collection.CONVERSATIONS,
            where,
            order_by="started_at",
            descending=True,
            limit=limit,
            offset=offset,
        )

    def get_message(self, message_id: str) -> Message:
        """A message by id."""
        tenant = self._tenant
        record_id(message_id, "message")
        found = self._backend.get(tenant, Collection.MESSAGES, [message_id])
        if not found:
            raise NotFoundError(
                f"message {message_id!r} does not exist in tenant {tenant!r}", kind="message"
            )
        return found[0]

    def list_messages(
        self, conversation_id: str, *, limit: int | None = None, offset: int = 0
    ) -> builtins.list[Message]:
        """A conversation's messages in order."""
        limit = optional_integer(limit, "limit", 0, MAX_COUNT)
        offset = integer(offset, "offset", 0, MAX_COUNT)
        conv = self.get(conversation_id)
        return self._backend.find(
            self._tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conv.id}),
            order_by="seq",
            limit=limit,
            offset=offset,
        )

    # -- deleting -----------------------------------------------------------------
    def delete_message(self, message_id: str) -> DeletionReceipt:
        """Erase one message and what was derived from it (from every index)."""
        tenant = self._tenant
        msg = self.get_message(message_id)
        with self._backend.batch():
            derived = self._m.observations._forget_derived(
                msg.profile_id, [msg.id], [msg.conversation_id]
            )
            n = self._backend.delete(tenant, Collection.MESSAGES, Where(eq={"id": msg.id}))
        receipt = DeletionReceipt(
            tenant=tenant, target=f"message:{msg.id}", deleted={"messages": n, **derived}
        )
        return self._ctx.erased(receipt, "delete_message", following=[msg])

    def delete(self, conversation_id: str) -> DeletionReceipt:
        """Erase a conversation, its messages and what was derived from them."""
        tenant = self._tenant
        conv = self.get(conversation_id)
        mine = Where(eq={"conversation_id": conv.id})
        with self._backend.batch():
            ids = [m.id for m in self._backend.find(tenant, Collection.MESSAGES, mine)]
            derived = self._m.observations._forget_derived(conv.profile_id, ids, [conv.id])
            n_msgs = self._backend.delete(tenant, Collection.MESSAGES, mine)
            n_conv = self._backend.delete(
                tenant, Collection.CONVERSATIONS, Where(eq={"id": conv.id})
            )
        receipt = DeletionReceipt(
            tenant=tenant,
            target=f"conversation:{conv.id}",
            deleted={"conversations": n_conv, "messages": n_msgs, **derived},
        )
        return self._ctx.erased(receipt, "delete_conversation")

    # -- ingest -------------------------------------------------------------------
    #
    # An ingest call goes through three steps, so that what can be checked is
    # checked before anything is written, by the same code everywhere:
    #   _check   validates and normalises the call alone (no store read);
    #   _plan    decides against stored state what would be written, raising on
    #            a conflict (reads only; a _StoreView, or a _PendingView that also
    #            sees the lines of an import planned before, for `convmem ingest`);
    #   _ingest  plans again under the resolve lock and writes in one batch.
    # Re-ingesting what is stored writes nothing (and audits nothing), so a
    # re-run of an import, or the resumption of an interrupted one, is harmless.

    def _ingest(
        self, conversation: ConversationIn | dict[str, Any], prepared: _Prepared | None = None
    ) -> IngestResult:
        """:meth:`memory_core.Memory.ingest` (``prepared``: checked, planned and embedded
        ahead, by :meth:`_ingest_many`)."""
        # Checked on its own first: a bad call neither writes nor creates the tenant.
        checked_alone = self._check(conversation) if prepared is None else None
        tenant = self._tenant
        ctx = self._ctx
        view = _StoreView(ctx, tenant)
        if prepared is None:
            assert checked_alone is not None
            prepared = self._prepare(checked_alone, view)
            prepared.vectors.update(self._embed(prepared.texts, prepared.rows))
        checked, texts, vectors = prepared.checked, prepared.texts, prepared.vectors
        with ctx.resolve_lock, self._backend.batch():
            plan = self._plan(checked, view)  # again under the lock: the store may have moved
            if missing := [row for row in plan.rows if row not in vectors]:
                vectors |= self._embed(texts, missing)
            profile, merged, resolved = self._customer(checked, plan)
            conv = plan.conv.model_copy(update={"profile_id": profile.id})
            screen = checked.screen
            if plan.existing == conv and not plan.messages and not resolved:
                # Everything given is stored already: nothing to write or audit.
                return IngestResult(
                    conv, profile, [], plan.skipped, [], screen.dropped, screen.redacted
                )
            new_msgs = [m.model_copy(update={"profile_id": profile.id}) for m in plan.messages]
            self._backend.upsert(tenant, Collection.CONVERSATIONS, [conv])
            if new_msgs:
                matrix = np.stack([vectors[row] for row in plan.rows])
                self._backend.upsert(
                    tenant,
                    Collection.MESSAGES,
                    new_msgs,
                    Vectors(ctx.message_embedder.model_id, np.ascontiguousarray(matrix)),
                )
            details: dict[str, int | str] = {"messages": len(new_msgs), "skipped": plan.skipped}
            details |= {"profile": profile.id, "merged": len(merged)}
            details |= {"dropped": screen.dropped, "redacted": screen.redacted}
            ctx.audit(tenant, "ingest", f"conversation:{conv.id}", details)
        return IngestResult(
            conv, profile, new_msgs, plan.skipped, merged, screen.dropped, screen.redacted
        )

    def _prepare(self, checked: _Checked, view: _StoreView) -> _Prepared:
        """Plan ``checked`` against ``view`` (conflicts fail here, before embedding)
        and the texts its new messages are embedded as (not embedded yet)."""
        conv_in = checked.conv
        ahead = self._plan(checked, view)
        last = view.last_message(conv_in.id) if conv_in.id else None
        texts = embedding_texts(
            [m.text for m in conv_in.messages],
            last.text if last is not None else None,
            self._ctx.settings.embed_context_turns,
        )
        if isinstance(view, _PendingView):
            view.add(ahead)
        return _Prepared(checked, texts, ahead.rows, {})

    def _ingest_many(
        self,
        conversations: Sequence[ConversationIn | dict[str, Any]],
        *,
        stop_on_error: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[IngestResult | MemoryCoreError]:
        """Ingest conversations in order, as :meth:`_ingest` one by one would, with the
        new messages of many conversations embedded in shared batches (fewer, fuller
        model calls) while the previous batch is written, on a worker thread.

        One result per conversation: its :class:`IngestResult`, or the typed error it
        raised (nothing of it written). ``stop_on_error``: stop at the first error
        (the list ends there; what came before it is written). ``progress(k)``: k more
        conversations done."""
        from concurrent.futures import Future, ThreadPoolExecutor

        view = _PendingView(self._ctx, self._tenant)
        results: builtins.list[IngestResult | MemoryCoreError] = []
        chunks = _ingest_chunks(conversations, _BULK_MESSAGES)

        def prepare(chunk: Sequence[ConversationIn | dict[str, Any]]) -> builtins.list[Any]:
            out: builtins.list[Any] = []
            for conversation in chunk:
                try:
                    out.append(self._prepare(self._check(conversation), view))
                except MemoryCoreError as exc:
                    out.append(exc)
            return out

        def embed(items: builtins.list[Any]) -> None:
            wanted = [(p, row) for p in items if isinstance(p, _Prepared) for row in p.rows]
            if not wanted:
                return
            matrix = self._ctx.message_embedder.embed_batch([p.texts[row] for p, row in wanted])
            for (p, row), vector in zip(wanted, matrix, strict=True):
                p.vectors[row] = vector

        def write(items: builtins.list[Any]) -> bool:
            for item in items:
                if isinstance(item, _Prepared):
                    try:
                        item = self._ingest(item.checked.conv, item)
                    except MemoryCoreError as exc:
                        item = exc
                results.append(item)
                if progress is not None:
                    progress(1)
                if stop_on_error and isinstance(item, MemoryCoreError):
                    return False
            return True

        with ThreadPoolExecutor(1, thread_name_prefix="convmem-embed") as pool:
            pending: tuple[builtins.list[Any], Future[None]] | None = None
            for chunk in chunks:
                items = prepare(chunk)  # plans see the chunks before (a pending view)
                job = pool.submit(embed, items)
                if pending is not None:  # written while this chunk is embedded
                    pending[1].result()
                    if not write(pending[0]):
                        job.result()
                        return results
                pending = (items, job)
            if pending is not None:
                pending[1].result()
                write(pending[0])
        return results

    def _check_import(
        self, conversations: Sequence[ConversationIn | dict[str, Any]]
    ) -> builtins.list[MemoryCoreError | None]:
        """The error each ingest call of an import would raise (``None``: it would
        succeed), each checked against the store as the calls before it that
        succeed would leave it. Reads only: ``convmem ingest`` writes nothing
        until every line passes (or, with ``--continue-on-error``, writes the
        lines that pass)."""
        view = _PendingView(self._ctx, self._tenant)
        errors: builtins.list[MemoryCoreError | None] = []
        for conversation in conversations:
            try:
                plan = self._plan(self._check(conversation), view)
            except MemoryCoreError as exc:
                errors.append(exc)
                continue
            view.add(plan)
            errors.append(None)
        return errors

    def _check(self, conversation: ConversationIn | dict[str, Any]) -> _Checked:
        """Validate and normalise one ingest call on its own (no store read)."""
        try:
            conv_in = (
                conversation
                if isinstance(conversation, ConversationIn)
                else ConversationIn.model_validate(conversation)
            )
        except PydanticValidationError as exc:
            raise ValidationError(f"invalid conversation: {describe(exc)}") from exc
        check_conversation(conv_in, self._ctx.settings.limits)  # sizes, before screening
        conv_in, screen = screening.screen_conversation(self._ctx, self._tenant, conv_in)
        idents = [self._ctx.parse(c) for c in conv_in.customer]
        if not idents and conv_in.profile_id is None and conv_in.id is None:
            raise ValidationError(
                "a conversation needs the customer: give 'customer' identifiers "
                "(e.g. ['phone:+16175550142']) or a 'profile_id'"
            )
        if conv_in.id is not None:
            check_external_id(conv_in.id, "conversation")
        given = [m.id for m in conv_in.messages if m.id is not None]
        for mid in given:
            check_external_id(mid, "message")
        if len(set(given)) != len(given):
            twice = sorted(mid for mid, n in Counter(given).items() if n > 1)
            raise ValidationError(
                f"message id(s) {', '.join(map(repr, twice))} given twice in one conversation"
            )
        try:
            conv_in.model_dump_json()  # what is stored must serialise (e.g. no lone surrogates)
        except ValueError as exc:
            raise ValidationError(f"invalid conversation: cannot be stored: {exc}") from exc
        return _Checked(conv_in, idents, screen)

    def _plan(self, checked: _Checked, view: _StoreView) -> _Plan:
        """What ingesting ``checked`` would write given ``view``; raises on a conflict.
        The records' ``profile_id`` is left to the writer (resolution may merge)."""
        conv_in = checked.conv
        existing = view.conversation(conv_in.id) if conv_in.id is not None else None
        if existing is not None:
            if existing.channel != conv_in.channel:
                raise ConflictError(
                    f"conversation {existing.id!r} is on channel {existing.channel.value}, "
                    f"not {conv_in.channel.value}",
                    kind="conversation",
                )
            conv = existing
        else:
            if conv_in.profile_id is not None:
                view.profile(conv_in.profile_id)  # NotFoundError if it does not exist
            elif not checked.idents:
                raise NotFoundError(
                    f"conversation {conv_in.id!r} does not exist; to start it, give the "
                    "customer's identifiers or a profile_id",
                    kind="conversation",
                )
            first_ts = next((m.ts for m in conv_in.messages if m.ts is not None), None)
            conv = Conversation(
                id=conv_in.id or new_id("cnv"),
                tenant=view.tenant,
                profile_id=_PENDING_PROFILE,  # resolved by the writer
                channel=conv_in.channel,
                started_at=conv_in.started_at or first_ts or utcnow(),
                subject=conv_in.subject,
                metadata=conv_in.metadata,
            )
        incoming = conv_in.messages
        stored = self._stored_rows(conv, incoming, view, existing is not None)
        if conv.status is ConversationStatus.ENDED:
            if len(stored) < len(incoming):
                new = [row for row in range(len(incoming)) if row not in stored]
                first = incoming[new[0]]
                which = f"message {first.id!r}" if first.id else f"message #{new[0] + 1} given"
                raise ConflictError(
                    f"conversation {conv.id!r} has ended: {len(new)} of the {len(incoming)} "
                    f"messages given are not stored in it (the first: {which}); start a new "
                    "conversation for new messages (what is stored already is skipped)",
                    kind="conversation",
                )
            return _Plan(existing, conv, [], [], len(stored))
        rows = [row for row in range(len(incoming)) if row not in stored]
        new_msgs = self._new_messages(conv, [incoming[row] for row in rows], view)
        if conv_in.ended:  # it ended with its last message
            held = view.last_message(conv.id) if existing is not None and not new_msgs else None
            last = max(m.ts for m in new_msgs) if new_msgs else held.ts if held else conv.started_at
            conv = conv.model_copy(update={"status": ConversationStatus.ENDED, "ended_at": last})
        return _Plan(existing, conv, new_msgs, rows, len(stored))

    def _stored_rows(
        self, conv: Conversation, incoming: Sequence[MessageIn], view: _StoreView, held: bool
    ) -> set[int]:
        """The rows of ``incoming`` that ``conv`` holds already (``held``: whether
        ``conv`` is stored at all; if not, only ids stored elsewhere are looked up).

        A message with an id is stored if its id is (a stored id with another
        text or conversation is a ConflictError). One without an id is stored if
        an unmatched stored message of ``conv`` has its role, text and time; with
        no time given, role and text match only in an ended conversation (which
        takes no new messages, so it can only be a repeat). Each stored message
        matches at most one given message."""
        by_id = view.messages([m.id for m in incoming if m.id is not None])
        rows: set[int] = set()
        loose: builtins.list[int] = []
        ended = conv.status is ConversationStatus.ENDED
        for row, m in enumerate(incoming):
            if m.id is not None:
                if m.id in by_id:
                    _check_same(by_id[m.id], m, conv)
                    rows.add(row)
            elif m.ts is not None or ended:
                loose.append(row)
        if not loose or not held:
            return rows
        times = [incoming[row].ts for row in loose]
        at = None if None in times else [t for t in times if t is not None]
        pool = [s for s in view.messages_of(conv.id, at) if s.id not in by_id]
        for row in loose:
            m = incoming[row]
            match = next(
                (
                    i
                    for i, s in enumerate(pool)
                    if s.role is m.role and s.text == m.text and m.ts in (None, s.ts)
                ),
                None,
            )
            if match is not None:
                del pool[match]
                rows.add(row)
        return rows

    def _new_messages(
        self, conv: Conversation, incoming: Sequence[MessageIn], view: _StoreView
    ) -> builtins.list[Message]:
        """``incoming`` (none of them stored) as the messages to append to open ``conv``."""
        if not incoming:
            return []
        last = view.last_message(conv.id)
        seq = last.seq + 1 if last else 0
        prev_ts = last.ts if last else conv.started_at
        out: builtins.list[Message] = []
        now = utcnow()
        for m in incoming:
            ts = m.ts or max(now, prev_ts)
            if prev_ts - ts > _MAX_BACKDATE:  # a difference: cannot overflow
                raise ValidationError(
                    f"message timestamp {ts.isoformat()} is implausible: more than "
                    f"{_MAX_BACKDATE.days // 365} years before the message (or start) before "
                    f"it, {prev_ts.isoformat()}"
                )
            prev_ts = ts
            out.append(
                Message(
                    id=m.id or new_id("msg"),
                    tenant=conv.tenant,
                    conversation_id=conv.id,
                    profile_id=conv.profile_id,
                    channel=conv.channel,
                    role=m.role,
                    text=m.text,
                    ts=ts,
                    seq=seq,
                    author=m.author,
                    metadata=m.metadata,
                )
            )
            seq += 1
        return out

    def _customer(self, checked: _Checked, plan: _Plan) -> tuple[Profile, builtins.list[str], bool]:
        """The profile the conversation belongs to, resolving the given identifiers
        (which may create or merge profiles); the ids merged away; and whether
        resolution wrote anything. Runs under the resolve lock in the batch."""
        ctx = self._ctx
        tenant = self._tenant
        profiles = self._m.profiles
        idents = checked.idents
        if plan.existing is not None:
            profile = ctx.live_profile(tenant, plan.existing.profile_id)
            if not idents or self._all_linked(idents, profile.id):
                return profile, [], False
            found = profiles._resolve(idents, create=False, anchor=profile)
            return found.profile or profile, found.merged, found.wrote
        if checked.conv.profile_id is not None:
            anchor = ctx.live_profile(tenant, checked.conv.profile_id)
            found = profiles._resolve(idents, create=False, anchor=anchor)
        else:  # a new conversation: its start tells a recycled number (docs/identity.md)
            found = profiles._resolve(idents, create=True, at=plan.conv.started_at)
        assert found.profile is not None
        return found.profile, found.merged, True

    def _all_linked(self, idents: Sequence[Identifier], profile_id: str) -> bool:
        """Whether every identifier is linked to ``profile_id`` already."""
        keys = sorted({i.key for i in idents})
        links = self._backend.get(self._tenant, Collection.IDENTIFIERS, keys)
        return len(links) == len(keys) and all(link.profile_id == profile_id for link in links)

    def _embed(self, texts: Sequence[str], rows: Sequence[int]) -> dict[int, np.ndarray]:
        """The embeddings of ``texts[row]`` for each row (embedded in one batch)."""
        if not rows:
            return {}
        vectors = self._ctx.message_embedder.embed_batch([texts[row] for row in rows])
        return {row: vectors[i] for i, row in enumerate(rows)}


# -- planning an ingest ---------------------------------------------------------------

_MAX_BACKDATE = timedelta(days=36500)
"""How far a message's time may lie before the message (or start) before it."""

_PENDING_PROFILE = ""
"""The profile id of a planned new conversation (the writer resolves the customer)."""


def _check_same(old: Message, new: MessageIn, conv: Conversation) -> None:
    """A message id given again must name the same message (same conversation, text)."""
    if old.conversation_id != conv.id or old.text != new.text:
        raise ConflictError(
            f"message id {new.id!r} already exists with other content "
            f"(conversation {old.conversation_id!r})",
            kind="message",
        )


@dataclass(frozen=True)
class _Checked:
    """One ingest call, validated and normalised on its own: the conversation as
    the tenant's policy lets it be stored, the customer's parsed identifiers and
    what screening changed."""

    conv: ConversationIn
    idents: builtins.list[Identifier]
    screen: screening.IngestScreen


@dataclass(frozen=True)
class _Prepared:
    """One ingest call checked and planned ahead: the texts its messages are embedded
    as, the rows to embed and (filled in by the embedder) their vectors."""

    checked: _Checked
    texts: builtins.list[str]
    rows: builtins.list[int]
    vectors: dict[int, np.ndarray]


_BULK_MESSAGES = 256
"""New messages embedded per batch by a bulk ingest (many conversations' together)."""


def _ingest_chunks(
    conversations: Sequence[ConversationIn | dict[str, Any]], messages: int
) -> Iterable[Sequence[ConversationIn | dict[str, Any]]]:
    """``conversations`` in consecutive runs of about ``messages`` messages each."""
    start = count = 0
    for i, conversation in enumerate(conversations):
        given = (
            conversation.messages
            if isinstance(conversation, ConversationIn)
            else conversation.get("messages")
        )
        count += len(given) if isinstance(given, list) else 1
        if count >= messages:
            yield conversations[start : i + 1]
            start, count = i + 1, 0
    if start < len(conversations):
        yield conversations[start:]


@dataclass(frozen=True)
class _Plan:
    """What one ingest call writes: the conversation record (``existing`` is the
    stored one, if any), the new messages, their rows in the call (for their
    vectors) and how many messages given were stored already."""

    existing: Conversation | None
    conv: Conversation
    messages: builtins.list[Message]
    rows: builtins.list[int]
    skipped: int


class _StoreView:
    """The stored state an ingest plan reads, in one tenant."""

    def __init__(self, ctx: Context, tenant: str) -> None:
        self._ctx = ctx
        self.tenant = tenant

    def conversation(self, conversation_id: str) -> Conversation | None:
        found = self._ctx.backend.get(self.tenant, Collection.CONVERSATIONS, [conversation_id])
        return found[0] if found else None

    def messages(self, ids: Sequence[str]) -> dict[str, Message]:
        """The stored messages among ``ids``, by id."""
        if not ids:
            return {}
        return {m.id: m for m in self._ctx.backend.get(self.tenant, Collection.MESSAGES, ids)}

    def messages_of(
        self, conversation_id: str, at: Sequence[datetime] | None = None
    ) -> builtins.list[Message]:
        """A conversation's messages in order (only those at the times ``at``, if given)."""
        where = Where(eq={"conversation_id": conversation_id})
        if at is not None:
            where = where.and_(Where(any_of={"ts": list(at)}))
        return self._ctx.backend.find(self.tenant, Collection.MESSAGES, where, order_by="seq")

    def last_message(self, conversation_id: str) -> Message | None:
        last = self._ctx.backend.find(
            self.tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conversation_id}),
            order_by="seq",
            descending=True,
            limit=1,
        )
        return last[0] if last else None

    def profile(self, profile_id: str) -> Profile:
        """The live profile of ``profile_id`` (NotFoundError if there is none)."""
        return self._ctx.live_profile(self.tenant, profile_id)


class _PendingView(_StoreView):
    """The store as the ingest calls planned so far would leave it (the check pass
    of an import: nothing is written while the lines are checked)."""

    def __init__(self, ctx: Context, tenant: str) -> None:
        super().__init__(ctx, tenant)
        self._conversations: dict[str, Conversation] = {}
        self._messages: dict[str, Message] = {}
        self._by_conversation: dict[str, builtins.list[Message]] = {}

    def add(self, plan: _Plan) -> None:
        self._conversations[plan.conv.id] = plan.conv
        for m in plan.messages:
            self._messages[m.id] = m
            self._by_conversation.setdefault(m.conversation_id, []).append(m)

    def conversation(self, conversation_id: str) -> Conversation | None:
        pending = self._conversations.get(conversation_id)
        return pending if pending is not None else super().conversation(conversation_id)

    def messages(self, ids: Sequence[str]) -> dict[str, Message]:
        found = super().messages([i for i in ids if i not in self._messages])
        return found | {i: self._messages[i] for i in ids if i in self._messages}

    def messages_of(
        self, conversation_id: str, at: Sequence[datetime] | None = None
    ) -> builtins.list[Message]:
        pending = self._by_conversation.get(conversation_id, [])
        if at is not None:
            pending = [m for m in pending if m.ts in at]
        return super().messages_of(conversation_id, at) + pending

    def last_message(self, conversation_id: str) -> Message | None:
        pending = self._by_conversation.get(conversation_id)
        return pending[-1] if pending else super().last_message(conversation_id)
