"""The engine: :class:`Memory` ties a storage backend and an embedder into the
customer-memory API (tenants, profiles and identity, conversations and
messages, recall, deletion).

Everything here goes through the backend protocol and the embedder protocol,
so it runs unchanged on every backend. :class:`memory_core.aio.AsyncMemory`
is an async facade over this same class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from memory_core._engine import ProfileRef, check_external_id, check_tenant_name, embedding_texts
from memory_core.backends.base import (
    COLLECTIONS,
    Backend,
    Collection,
    SearchMode,
    Vectors,
    Where,
)
from memory_core.config import DEFAULT_TENANT, Settings, load_settings
from memory_core.embedding.base import Embedder
from memory_core.errors import ConfigError, ConflictError, NotFoundError, ValidationError
from memory_core.governance.api import GovernanceMixin
from memory_core.governance.audit import SYSTEM_TENANT
from memory_core.knowledge.api import KnowledgeMixin
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
    Trait,
    as_utc,
    new_id,
    utcnow,
)
from memory_core.observations import ObservationsMixin
from memory_core.profiles import ProfilesMixin
from memory_core.recall import (
    ItemType,
    Provenance,
    RecallItem,
    RecallOptions,
    RecallQuery,
    RecallResult,
    render_context,
)

__all__ = ["IngestResult", "Memory", "ProfileRef"]


class IngestResult:
    """What an ingest call did: the conversation, the profile, the new messages,
    and any profiles merged into this one while resolving the customer; ``dropped``
    and ``redacted`` count messages the tenant's policy excluded or redacted."""

    __slots__ = (
        "conversation",
        "dropped",
        "merged_profile_ids",
        "messages",
        "profile",
        "redacted",
        "skipped",
    )

    def __init__(
        self,
        conversation: Conversation,
        profile: Profile,
        messages: list[Message],
        skipped: int,
        merged_profile_ids: list[str],
        dropped: int = 0,
        redacted: int = 0,
    ) -> None:
        self.conversation = conversation
        self.profile = profile
        self.messages = messages
        self.skipped = skipped
        self.merged_profile_ids = merged_profile_ids
        self.dropped = dropped
        self.redacted = redacted

    def __repr__(self) -> str:
        return (
            f"IngestResult(conversation={self.conversation.id!r}, profile={self.profile.id!r}, "
            f"messages={len(self.messages)}, skipped={self.skipped}, "
            f"merged={self.merged_profile_ids!r})"
        )


class Memory(GovernanceMixin, KnowledgeMixin, ObservationsMixin, ProfilesMixin):
    """Customer memory over a storage backend and an embedder.

    Build it from parts (``Memory(backend, embedder)``) or from settings with
    :meth:`open`. Every method takes ``tenant`` (default ``"default"``, which
    always exists); other tenants must be created with :meth:`create_tenant`,
    and no call ever reads or writes outside the tenant it names.

    Thread-safe: one instance may be shared by the threads of a process.
    """

    # -- construction -----------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | str | None = None,
        settings: Settings | None = None,
    ) -> Memory:
        """Open the configured store. ``path`` selects an embedded SQLite file;
        ``embedder`` an embedder instance or spec (``local``, ``hash``, ``litellm:<model>``)."""
        from memory_core.embedding import make_embedder

        settings = settings or load_settings()
        if path is not None:
            settings = settings.model_copy(update={"backend": f"sqlite:///{Path(path)}"})
        backend = open_backend(settings)
        if embedder is None:
            embedder = settings.embedder
        model = make_embedder(embedder) if isinstance(embedder, str) else embedder
        return cls(backend, model, settings=settings)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- tenants ----------------------------------------------------------------
    def create_tenant(self, tenant: str) -> str:
        """Create a tenant (idempotent) and return its name."""
        check_tenant_name(tenant)
        if tenant not in self.backend.list_tenants():
            self.backend.ensure_tenant(tenant)
            self._audit(SYSTEM_TENANT, "create_tenant", f"tenant:{tenant}")
        self._known_tenants.add(tenant)
        return tenant

    def list_tenants(self) -> list[str]:
        return [t for t in self.backend.list_tenants() if t != SYSTEM_TENANT]

    def delete_tenant(self, tenant: str) -> DeletionReceipt:
        """Delete a tenant and everything in it, from every index."""
        self._tenant(tenant)
        counts = self.backend.drop_tenant(tenant)
        self._known_tenants.discard(tenant)
        receipt = DeletionReceipt(tenant=tenant, target=f"tenant:{tenant}", deleted=counts)
        return self._erased(receipt, "delete_tenant")

    # -- conversations and messages ---------------------------------------------
    def start_conversation(
        self,
        channel: Channel | str,
        customer: Iterable[str | Identifier] = (),
        *,
        tenant: str = DEFAULT_TENANT,
        profile_id: str | None = None,
        conversation_id: str | None = None,
        started_at: datetime | None = None,
        subject: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Conversation:
        """Open a conversation for a customer given by identifiers or profile id."""
        result = self.ingest(
            ConversationIn(
                channel=Channel(channel),
                customer=[str(c) for c in customer],
                profile_id=profile_id,
                id=conversation_id,
                started_at=started_at,
                subject=subject,
                ended=False,
                metadata=metadata or {},
            ),
            tenant=tenant,
        )
        return result.conversation

    def ingest(
        self, conversation: ConversationIn | dict[str, Any], *, tenant: str = DEFAULT_TENANT
    ) -> IngestResult:
        """Ingest a conversation: resolve the customer, store and index its messages.

        Re-ingesting a conversation id appends messages not seen before (by
        message id) and skips the rest, so re-running an import is harmless.
        """
        try:
            conv_in = (
                conversation
                if isinstance(conversation, ConversationIn)
                else ConversationIn.model_validate(conversation)
            )
        except Exception as exc:  # pydantic.ValidationError
            raise ValidationError(f"invalid conversation: {exc}") from exc
        self._tenant(tenant)
        conv_in, screened = self._screen_ingest(tenant, conv_in)  # policy: redact, exclude
        idents = [self._parse(c) for c in conv_in.customer]
        if not idents and conv_in.profile_id is None and conv_in.id is None:
            raise ValidationError(
                "a conversation needs the customer: give 'customer' identifiers "
                "(e.g. ['phone:+16175550142']) or a 'profile_id'"
            )
        if conv_in.id is not None:
            check_external_id(conv_in.id, "conversation")
        previous = self._last_message_text(tenant, conv_in.id) if conv_in.id else None
        texts = embedding_texts(
            [m.text for m in conv_in.messages], previous, self.settings.embed_context_turns
        )
        vectors = self.embedder.embed_batch(texts) if texts else None
        with self._resolve_lock, self.backend.batch():
            existing = (
                self._get_record(tenant, Collection.CONVERSATIONS, conv_in.id)
                if conv_in.id
                else None
            )
            merged: list[str] = []
            if isinstance(existing, Conversation):
                profile = self._live_profile(tenant, existing.profile_id)
                if idents:
                    resolved, merged = self._resolve(tenant, idents, create=False, anchor=profile)
                    profile = resolved or profile
                conv = existing.model_copy(update={"profile_id": profile.id})
            else:
                if conv_in.profile_id is not None:
                    anchor = self._live_profile(tenant, conv_in.profile_id)
                    resolved, merged = self._resolve(tenant, idents, create=False, anchor=anchor)
                elif idents:
                    resolved, merged = self._resolve(tenant, idents, create=True)
                else:
                    raise NotFoundError(
                        f"conversation {conv_in.id!r} does not exist; to start it, give the "
                        "customer's identifiers or a profile_id"
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
                tenant, conv, profile.id, conv_in.messages
            )
            if conv_in.ended and conv.status is ConversationStatus.OPEN:
                last = max((m.ts for m in new_msgs), default=conv.started_at)
                conv = conv.model_copy(
                    update={"status": ConversationStatus.ENDED, "ended_at": last}
                )
            self.backend.upsert(tenant, Collection.CONVERSATIONS, [conv])
            if new_msgs:
                assert vectors is not None
                self.backend.upsert(
                    tenant,
                    Collection.MESSAGES,
                    new_msgs,
                    Vectors(self.embedder.model_id, np.ascontiguousarray(vectors[keep_rows])),
                )
            details: dict[str, int | str] = {"messages": len(new_msgs), "skipped": skipped}
            details |= {"profile": profile.id, "merged": len(merged)}
            details |= {"dropped": screened.dropped, "redacted": screened.redacted}
            self._audit(tenant, "ingest", f"conversation:{conv.id}", details)
        return IngestResult(
            conv, profile, new_msgs, skipped, merged, screened.dropped, screened.redacted
        )

    def _last_message_text(self, tenant: str, conversation_id: str) -> str | None:
        last = self.backend.find(
            tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conversation_id}),
            order_by="seq",
            descending=True,
            limit=1,
        )
        return last[0].text if last and isinstance(last[0], Message) else None

    def _prepare_messages(
        self,
        tenant: str,
        conv: Conversation,
        profile_id: str,
        incoming: Sequence[MessageIn],
    ) -> tuple[list[Message], list[int], int]:
        if not incoming:
            return [], [], 0
        if conv.status is ConversationStatus.ENDED:
            raise ConflictError(
                f"conversation {conv.id!r} has ended; start a new conversation for new messages"
            )
        last = self.backend.find(
            tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conv.id}),
            order_by="seq",
            descending=True,
            limit=1,
        )
        seq = last[0].seq + 1 if last and isinstance(last[0], Message) else 0
        prev_ts = last[0].ts if last and isinstance(last[0], Message) else conv.started_at
        given = [m.id for m in incoming if m.id is not None]
        for mid in given:
            check_external_id(mid, "message")
        if len(set(given)) != len(given):
            raise ValidationError("duplicate message ids within one ingest call")
        stored = {
            r.id: r
            for r in self.backend.get(tenant, Collection.MESSAGES, given)
            if isinstance(r, Message)
        }
        out: list[Message] = []
        rows: list[int] = []
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

    def add_messages(
        self,
        conversation_id: str,
        messages: Sequence[MessageIn | dict[str, Any]],
        *,
        tenant: str = DEFAULT_TENANT,
    ) -> list[Message]:
        """Append messages to an open conversation."""
        conv = self.get_conversation(conversation_id, tenant=tenant)
        try:
            items = [
                m if isinstance(m, MessageIn) else MessageIn.model_validate(m) for m in messages
            ]
        except Exception as exc:  # pydantic.ValidationError
            raise ValidationError(f"invalid message: {exc}") from exc
        result = self.ingest(
            ConversationIn(channel=conv.channel, id=conv.id, messages=items, ended=False),
            tenant=tenant,
        )
        return result.messages

    def add_message(
        self,
        conversation_id: str,
        role: Role | str,
        text: str,
        *,
        tenant: str = DEFAULT_TENANT,
        ts: datetime | None = None,
        message_id: str | None = None,
        author: str | None = None,
    ) -> Message:
        """Append one message to an open conversation."""
        try:
            item = MessageIn(role=Role(role), text=text, ts=ts, id=message_id, author=author)
        except ValueError as exc:
            raise ValidationError(f"invalid message: {exc}") from exc
        added = self.add_messages(conversation_id, [item], tenant=tenant)
        if not added:
            found = self.get_message(message_id or "", tenant=tenant)
            return found
        return added[0]

    def end_conversation(
        self,
        conversation_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        ended_at: datetime | None = None,
    ) -> Conversation:
        """Close a conversation (idempotent)."""
        with self.backend.batch():
            conv = self.get_conversation(conversation_id, tenant=tenant)
            if conv.status is ConversationStatus.ENDED:
                return conv
            conv = conv.model_copy(
                update={
                    "status": ConversationStatus.ENDED,
                    "ended_at": as_utc(ended_at) if ended_at else utcnow(),
                }
            )
            self.backend.upsert(tenant, Collection.CONVERSATIONS, [conv])
            self._audit(tenant, "end_conversation", f"conversation:{conv.id}")
        self._auto_extract(tenant, conv)  # observations, traits, summary; never fails the end
        return conv

    def get_conversation(
        self, conversation_id: str, *, tenant: str = DEFAULT_TENANT
    ) -> Conversation:
        self._tenant(tenant)
        found = self._get_record(tenant, Collection.CONVERSATIONS, conversation_id)
        if not isinstance(found, Conversation):
            raise NotFoundError(
                f"conversation {conversation_id!r} does not exist in tenant {tenant!r}"
            )
        return found

    def list_conversations(
        self,
        ref: ProfileRef | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Conversation]:
        """Conversations, newest first; of one profile when ``ref`` is given."""
        self._tenant(tenant)
        where = Where()
        if ref is not None:
            where = Where(eq={"profile_id": self.get_profile(ref, tenant=tenant).id})
        found = self.backend.find(
            tenant,
            Collection.CONVERSATIONS,
            where,
            order_by="started_at",
            descending=True,
            limit=limit,
            offset=offset,
        )
        return [c for c in found if isinstance(c, Conversation)]

    def get_message(self, message_id: str, *, tenant: str = DEFAULT_TENANT) -> Message:
        self._tenant(tenant)
        found = self._get_record(tenant, Collection.MESSAGES, message_id)
        if not isinstance(found, Message):
            raise NotFoundError(f"message {message_id!r} does not exist in tenant {tenant!r}")
        return found

    def list_messages(
        self,
        conversation_id: str,
        *,
        tenant: str = DEFAULT_TENANT,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Message]:
        """A conversation's messages in order."""
        self.get_conversation(conversation_id, tenant=tenant)
        found = self.backend.find(
            tenant,
            Collection.MESSAGES,
            Where(eq={"conversation_id": conversation_id}),
            order_by="seq",
            limit=limit,
            offset=offset,
        )
        return [m for m in found if isinstance(m, Message)]

    # -- deletion ---------------------------------------------------------------
    def delete_message(self, message_id: str, *, tenant: str = DEFAULT_TENANT) -> DeletionReceipt:
        msg = self.get_message(message_id, tenant=tenant)
        with self.backend.batch():
            derived = self._forget_derived(tenant, msg.profile_id, [msg.id], [msg.conversation_id])
            n = self.backend.delete(tenant, Collection.MESSAGES, Where(eq={"id": msg.id}))
        receipt = DeletionReceipt(
            tenant=tenant, target=f"message:{msg.id}", deleted={"messages": n, **derived}
        )
        return self._erased(receipt, "delete_message", following=[msg])

    def delete_conversation(
        self, conversation_id: str, *, tenant: str = DEFAULT_TENANT
    ) -> DeletionReceipt:
        """Delete a conversation and its messages from every index."""
        conv = self.get_conversation(conversation_id, tenant=tenant)
        mine = Where(eq={"conversation_id": conv.id})
        with self.backend.batch():
            ids = [m.id for m in self.backend.find(tenant, Collection.MESSAGES, mine)]
            derived = self._forget_derived(tenant, conv.profile_id, ids, [conv.id])
            n_msgs = self.backend.delete(tenant, Collection.MESSAGES, mine)
            n_conv = self.backend.delete(
                tenant, Collection.CONVERSATIONS, Where(eq={"id": conv.id})
            )
        receipt = DeletionReceipt(
            tenant=tenant,
            target=f"conversation:{conv.id}",
            deleted={"conversations": n_conv, "messages": n_msgs, **derived},
        )
        return self._erased(receipt, "delete_conversation")

    def delete_profile(self, ref: ProfileRef, *, tenant: str = DEFAULT_TENANT) -> DeletionReceipt:
        """Erase a customer: the profile, its identifiers, traits, conversations,
        messages and everything derived from them, from every index; profiles
        merged into it and their merge records go too."""
        with self._resolve_lock, self.backend.batch():
            profile = self.get_profile(ref, tenant=tenant)
            merged = [
                p.id
                for p in self.backend.find(
                    tenant, Collection.PROFILES, Where(eq={"merged_into": profile.id})
                )
            ]
            ids = [profile.id, *merged]
            counts: dict[str, int] = {}
            for collection, spec in COLLECTIONS.items():
                if "profile_id" in spec.filter_fields:
                    counts[collection.value] = self.backend.delete(
                        tenant, collection, Where(any_of={"profile_id": ids})
                    )
            counts[Collection.MERGES.value] = self.backend.delete(
                tenant, Collection.MERGES, Where(eq={"survivor_id": profile.id})
            )
            counts[Collection.PROFILES.value] = self.backend.delete(
                tenant, Collection.PROFILES, Where(any_of={"id": ids})
            )
        receipt = DeletionReceipt(tenant=tenant, target=f"profile:{profile.id}", deleted=counts)
        return self._erased(receipt, "delete_profile")

    # -- recall -----------------------------------------------------------------
    def recall(
        self,
        ref: ProfileRef,
        query: str | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        conversation_id: str | None = None,
        options: RecallOptions | None = None,
    ) -> RecallResult:
        """What matters about this customer now.

        With a ``query``, messages are ranked by hybrid relevance to it; with no
        query but a ``conversation_id``, the last turns of that conversation
        are the query; with neither, the most recent messages come back.
        Traits always come first, then observations and summaries, then
        messages as supporting evidence.
        """
        opts = options or RecallOptions()
        profile = self.get_profile(ref, tenant=tenant)
        if query is not None and not query.strip():
            query = None
        if query is None and conversation_id is not None:
            conv = self.get_conversation(conversation_id, tenant=tenant)
            if conv.profile_id != profile.id:
                raise ValidationError(
                    f"conversation {conversation_id!r} belongs to another profile"
                )
            recent = self.backend.find(
                tenant,
                Collection.MESSAGES,
                Where(eq={"conversation_id": conv.id}),
                order_by="seq",
                descending=True,
                limit=opts.recent_turns,
            )
            query = "\n".join(m.text for m in reversed(recent) if isinstance(m, Message)) or None
            exclude = {m.id for m in recent}
        else:
            exclude = set()
        vector = None
        if query is not None and opts.mode is not SearchMode.KEYWORD:
            vector = Vectors(self.embedder.model_id, self.embedder.embed_batch([query]))
        q = RecallQuery(
            tenant=tenant,
            profile_id=profile.id,
            text=query,
            vector=vector,
            options=opts,
            exclude_ids=frozenset(exclude),
        )
        items: list[RecallItem] = []
        if opts.limit(ItemType.TRAIT):
            items += self._recall_traits(q)
        if opts.limit(ItemType.OBSERVATION):
            items += self._recall_observations(q)
        if opts.limit(ItemType.SUMMARY):
            items += self._recall_summaries(q)
        if opts.limit(ItemType.MESSAGE):
            items += self._recall_messages(q)
        if opts.limit(ItemType.KNOWLEDGE):
            items += self._recall_knowledge(q)
        context, tokens, _ = render_context(
            profile.id,
            items,
            opts.token_budget,
            {ItemType.KNOWLEDGE: opts.knowledge_token_share},
        )
        return RecallResult(
            tenant=tenant,
            profile_id=profile.id,
            query=query,
            items=tuple(items),
            context=context,
            context_tokens=tokens,
        )

    def _recall_traits(self, q: RecallQuery) -> list[RecallItem]:
        opts = q.options
        found = self.backend.find(
            q.tenant,
            Collection.TRAITS,
            Where(eq={"profile_id": q.profile_id}),
            order_by="key",
            limit=opts.limit(ItemType.TRAIT),
        )
        return [
            RecallItem(
                type=ItemType.TRAIT,
                id=t.id,
                text=f"{t.key}: {t.value}",
                score=t.confidence,
                provenance=Provenance(message_ids=t.evidence, ts=t.updated_at, source=t.source),
            )
            for t in found
            if isinstance(t, Trait) and t.confidence >= opts.min_score
        ]

    def _message_filter(self, profile_id: str, opts: RecallOptions) -> Where:
        where = Where(eq={"profile_id": profile_id})
        if opts.channels is not None:
            where = where.and_(Where(any_of={"channel": sorted(c.value for c in opts.channels)}))
        if opts.roles is not None:
            where = where.and_(Where(any_of={"role": sorted(r.value for r in opts.roles)}))
        if opts.since is not None:
            where = where.and_(Where(gte={"ts": as_utc(opts.since)}))
        if opts.until is not None:
            where = where.and_(Where(lt={"ts": as_utc(opts.until)}))
        return where

    def _recall_messages(self, q: RecallQuery) -> list[RecallItem]:
        """Messages ranked against the query (or the most recent ones); the
        turns that formed an inferred query are left out."""
        tenant, profile_id, query, opts, exclude = (
            q.tenant,
            q.profile_id,
            q.text,
            q.options,
            q.exclude_ids,
        )
        limit = opts.limit(ItemType.MESSAGE)
        where = self._message_filter(profile_id, opts)
        if query is None:
            recent = self.backend.find(
                tenant, Collection.MESSAGES, where, order_by="ts", descending=True, limit=limit
            )
            n = max(len(recent), 1)
            scored = [(m, 1.0 - i / n) for i, m in enumerate(recent)]
        else:
            hits = self.backend.search(
                tenant,
                Collection.MESSAGES,
                mode=opts.mode,
                text=query if opts.mode is not SearchMode.VECTOR else None,
                vector=q.vector,
                where=where,
                limit=limit + len(exclude),
                alpha=opts.alpha,
            )
            scored = [(h.record, max(0.0, min(1.0, h.score))) for h in hits]
        items: list[RecallItem] = []
        for record, score in scored:
            if not isinstance(record, Message) or score < opts.min_score or record.id in exclude:
                continue
            if len(items) >= limit:
                break
            items.append(
                RecallItem(
                    type=ItemType.MESSAGE,
                    id=record.id,
                    text=record.text,
                    score=score,
                    provenance=Provenance(
                        message_ids=(record.id,),
                        conversation_id=record.conversation_id,
                        channel=record.channel,
                        role=record.role,
                        ts=record.ts,
                    ),
                )
            )
        return items


def open_backend(settings: Settings) -> Backend:
    """The backend named by ``settings.backend``."""
    spec = settings.backend
    if spec == "sqlite" or spec.startswith("sqlite:///"):
        from memory_core.backends.sqlite import SQLiteBackend

        path = settings.sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteBackend(path)
    from memory_core.backends.weaviate_connect import is_weaviate_url

    if is_weaviate_url(spec):
        try:
            from memory_core.backends.weaviate import WeaviateBackend
        except ImportError as exc:
            raise ConfigError(
                f"backend {spec!r} needs the weaviate extra: "
                f"pip install 'conversation-memory[weaviate]' ({exc})"
            ) from exc
        key = settings.weaviate_api_key
        return WeaviateBackend.from_url(
            spec,
            api_key=None if key is None else key.get_secret_value(),
            grpc_port=settings.weaviate_grpc_port,
        )
    raise ConfigError(
        f"unknown backend {spec!r}; use 'sqlite', 'sqlite:///path/to/file.db' "
        "or 'weaviate://host:port'"
    )
