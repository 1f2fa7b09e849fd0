"""Conversations and messages: ingest (with identity resolution), append, end,
read and delete. Ending a conversation runs extraction (see
:mod:`memory_core.services.observations`)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from memory_core.backends.base import Collection, Vectors, Where
from memory_core.context import ProfileRef, check_external_id
from memory_core.embedding.texts import embedding_texts
from memory_core.errors import ConflictError, NotFoundError, ValidationError
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
    as_utc,
    new_id,
    utcnow,
)
from memory_core.services._base import Service

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
        try:
            conv_in = ConversationIn(
                channel=Channel(channel),
                customer=[str(c) for c in customer],
                profile_id=profile_id,
                id=conversation_id,
                started_at=started_at,
                subject=subject,
                ended=False,
                metadata=metadata or {},
            )
        except ValueError as exc:
            raise ValidationError(f"invalid conversation: {exc}") from exc
        return self._ingest(conv_in).conversation

    def add_messages(
        self, conversation_id: str, messages: Sequence[MessageIn | dict[str, Any]]
    ) -> builtins.list[Message]:
        """Append messages to an open conversation (ids already stored are skipped)."""
        conv = self.get(conversation_id)
        try:
            items = [
                m if isinstance(m, MessageIn) else MessageIn.model_validate(m) for m in messages
            ]
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ValidationError(f"invalid message: {exc}") from exc
        result = self._ingest(
            ConversationIn(channel=conv.channel, id=conv.id, messages=items, ended=False)
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
        try:
            item = MessageIn(role=Role(role), text=text, ts=ts, id=message_id, author=author)
        except ValueError as exc:
            raise ValidationError(f"invalid message: {exc}") from exc
        added = self.add_messages(conversation_id, [item])
        if not added:
            return self.get_message(message_id or "")
        return added[0]

    def end(self, conversation_id: str, *, ended_at: datetime | None = None) -> Conversation:
        """Close a conversation (idempotent); extraction then runs on it
        (``Settings.auto_extract``) and never fails the end."""
        tenant = self._tenant
        with self._backend.batch():
            conv = self.get(conversation_id)
            if conv.status is ConversationStatus.ENDED:
                return conv
            conv = conv.model_copy(
                update={
                    "status": ConversationStatus.ENDED,
                    "ended_at": as_utc(ended_at) if ended_at else utcnow(),
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
    def _ingest(self, conversation: ConversationIn | dict[str, Any]) -> IngestResult:
        """:meth:`memory_core.Memory.ingest`."""
        try:
            conv_in = (
                conversation
                if isinstance(conversation, ConversationIn)
                else ConversationIn.model_validate(conversation)
            )
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ValidationError(f"invalid conversation: {exc}") from exc
        tenant = self._tenant
        ctx = self._ctx
        conv_in, screened = screening.screen_conversation(ctx, tenant, conv_in)
        idents = [ctx.parse(c) for c in conv_in.customer]
        if not idents and conv_in.profile_id is None and conv_in.id is None:
            raise ValidationError(
                "a conversation needs the customer: give 'customer' identifiers "
                "(e.g. ['phone:+16175550142']) or a 'profile_id'"
            )
        if conv_in.id is not None:
            check_external_id(conv_in.id, "conversation")
        previous = self._last_message_text(conv_in.id) if conv_in.id else None
        texts = embedding_texts(
            [m.text for m in conv_in.messages], previous, ctx.settings.embed_context_turns
        )
        vectors = ctx.embedder.embed_batch(texts) if texts else None
        profiles = self._m.profiles
        with ctx.resolve_lock, self._backend.batch():
            found = (
                self._backend.get(tenant, Collection.CONVERSATIONS, [conv_in.id])
                if conv_in.id
                else []
            )
            merged: builtins.list[str] = []
            if found:
                existing = found[0]
                profile = ctx.live_profile(tenant, existing.profile_id)
                if idents:
                    resolved, merged = profiles._resolve(idents, create=False, anchor=profile)
                    profile = resolved or profile
                conv = existing.model_copy(update={"profile_id": profile.id})
            else:
                if conv_in.profile_id is not None:
                    anchor = ctx.live_profile(tenant, conv_in.profile_id)
                    resolved, merged = profiles._resolve(idents, create=False, anchor=anchor)
                elif idents:
                    resolved, merged = profiles._resolve(idents, create=True)
                else:
                    raise NotFoundError(
                        f"conversation {conv_in.id!r} does not exist; to start it, give the "
                        "customer's identifiers or a profile_id",
                        kind="conversation",
                    )
                assert resolved is not None
                profile = resolved
                first_ts = next((m.ts for m in conv_in.messages if m.ts is not None), None)
                conv = Conversation(
                    id=conv_in.id or new_id("cnv"),
                    tenant=tenant,
                    profile_id=profile.id,
                    channel=conv_in.channel,
                    started_at=conv_in.started_at or first_ts or utcnow(),
                    subject=conv_in.subject,
                    metadata=conv_in.metadata,
                )
            if conv.channel != conv_in.channel:
                raise ConflictError(
                    f"conversation {conv.id!r} is on channel {conv.channel.value}, "
                    f"not {conv_in.channel.value}"
                )
            new_msgs, keep_rows, skipped = self._prepare_messages(
                conv, profile.id, conv_in.messages
            )
            if conv_in.ended and conv.status is ConversationStatus.OPEN:
                last = max((m.ts for m in new_msgs), default=conv.started_at)
                conv = conv.model_copy(
                    update={"status": ConversationStatus.ENDED, "ended_at": last}
                )
            self._backend.upsert(tenant, Collection.CONVERSATIONS, [conv])
            if new_msgs:
                assert vectors is not None
                self._backend.upsert(
                    tenant,
                    Collection.MESSAGES,
                    new_msgs,
                    Vectors(ctx.embedder.model_id, np.ascontiguousarray(vectors[keep_rows])),
                )
            details: dict[str, int | str] = {"messages": len(new_msgs), "skipped": skipped}
            details |= {"profile": profile.id, "merged": len(merged)}
            details |= {"dropped": screened.dropped, "redacted": screened.redacted}
            ctx.audit(tenant, "ingest", f"conversation:{conv.id}", details)
        return IngestResult(
            conv, profile, new_msgs, skipped, merged, screened.dropped, screened.redacted
        )

    def _last_message_text(self, conversation_id: str) -> str | None:
        last = self._backend.find(
            self._tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conversation_id}),
            order_by="seq",
            descending=True,
            limit=1,
        )
        return last[0].text if last else None

    def _prepare_messages(
        self, conv: Conversation, profile_id: str, incoming: Sequence[MessageIn]
    ) -> tuple[builtins.list[Message], builtins.list[int], int]:
        """The messages to store (new ids only), their rows in ``incoming``, and
        how many were already stored."""
        if not incoming:
            return [], [], 0
        tenant = self._tenant
        if conv.status is ConversationStatus.ENDED:
            raise ConflictError(
                f"conversation {conv.id!r} has ended; start a new conversation for new messages"
            )
        last = self._backend.find(
            tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conv.id}),
            order_by="seq",
            descending=True,
            limit=1,
        )
        seq = last[0].seq + 1 if last else 0
        prev_ts = last[0].ts if last else conv.started_at
        given = [m.id for m in incoming if m.id is not None]
        for mid in given:
            check_external_id(mid, "message")
        if len(set(given)) != len(given):
            raise ValidationError("duplicate message ids within one ingest call")
        stored = {r.id: r for r in self._backend.get(tenant, Collection.MESSAGES, given)}
        out: builtins.list[Message] = []
        rows: builtins.list[int] = []
        skipped = 0
        now = utcnow()
        for row, m in enumerate(incoming):
            if m.id is not None and m.id in stored:
                old = stored[m.id]
                if old.conversation_id != conv.id or old.text != m.text:
                    raise ConflictError(
                        f"message id {m.id!r} already exists with other content "
                        f"(conversation {old.conversation_id!r})"
                    )
                skipped += 1
                continue
            ts = m.ts or max(now, prev_ts)
            if ts < prev_ts - timedelta(days=36500):  # pragma: no cover - sanity bound
                raise ValidationError(f"message timestamp {ts.isoformat()} is implausible")
            prev_ts = ts
            out.append(
                Message(
                    id=m.id or new_id("msg"),
                    tenant=tenant,
                    conversation_id=conv.id,
                    profile_id=profile_id,
                    channel=conv.channel,
                    role=m.role,
                    text=m.text,
                    ts=ts,
                    seq=seq,
                    author=m.author,
                    metadata=m.metadata,
                )
            )
            rows.append(row)
            seq += 1
        return out, rows, skipped
