"""Deletion that leaves nothing: audit, dependent vectors, caches, index maintenance.

Every deletion of the engine ends with :func:`finish`, which

- appends the deletion to the audit log (target and counts, never content;
  a deleted tenant's event goes to :data:`~memory_core.governance.audit.SYSTEM_TENANT`);
- re-embeds the turns that followed deleted messages in their conversation,
  whose stored vectors were computed with the deleted text as context;
- clears the embedder's cache (it maps text hashes to vectors, no text, but
  the hash of a short text can be guessed);
- lets the backend purge deleted content from its files
  (:meth:`SQLiteBackend.purge_deleted
  <memory_core.backends.sqlite.SQLiteBackend.purge_deleted>`: FTS5 segment
  merge and WAL truncation; ``secure_delete`` zeroes rows as they go), and says
  in the receipt's ``purged`` whether that is done.

The purge is durable: the SQLite backend records a purge job in the deleting
transaction itself (any transaction that deletes rows or replaces indexed text),
so no caller has to remember to; the purge that follows the commit removes the
job only once the WAL checkpoint succeeded. A job left by a crash between commit
and purge, or by another connection's read transaction that outlasted the
purge's wait (``purged=False``), is finished by the next purge: the next
deletion, ``gc`` (``convmem gc``) or the next open of the store.

Knowledge deletions (a source, a knowledge base) end with :func:`finish` too; a
knowledge refresh that drops or replaces pages calls :func:`forget_cached` with
the removed chunks' texts and :func:`purge` (its audit event is the refresh's own).

What a deleted message alone supported (observations, extracted traits, its
conversation's summary and extraction record) is removed by
:func:`memory_core.extraction.writing.forget_messages` (the engine's
``_forget_derived``), which :func:`erase_messages` also uses for retention.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from memory_core.backends.base import Collection, Vectors, Where
from memory_core.embedding.base import CachedEmbedder
from memory_core.embedding.texts import embedding_texts
from memory_core.extraction.store import ProfileObservations
from memory_core.extraction.writing import forget_messages
from memory_core.governance import audit
from memory_core.models import DeletionReceipt, Message, Observation

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = [
    "SupportsPurge",
    "erase_messages",
    "erase_observations",
    "finish",
    "forget_cached",
    "purge",
    "reembed_following",
]


@runtime_checkable
class SupportsPurge(Protocol):
    """A backend that can make deleted content unrecoverable from its storage.
    ``purge_deleted`` returns True when nothing deleted is left in its files, False
    when the purge is still pending (and will be finished later by the backend)."""

    def purge_deleted(self) -> bool: ...


def purge(ctx: Context) -> bool | None:
    """Purge deleted content from the backend's files, where it supports that.
    Call after the deleting transaction has committed. True: purged; False:
    pending (the next purge, ``gc`` or open finishes it); None: the backend has no
    file purge (Weaviate: reclaiming disk is up to the server's compaction)."""
    if isinstance(ctx.backend, SupportsPurge):
        return ctx.backend.purge_deleted()
    return None


def forget_cached(ctx: Context, texts: Iterable[str] | None = None) -> None:
    """Drop cached embeddings of ``texts`` (all of them when None)."""
    embedder = ctx.embedder
    if isinstance(embedder, CachedEmbedder):
        if texts is None:
            embedder.clear()
        else:
            embedder.forget(list(texts))


def finish(
    ctx: Context,
    receipt: DeletionReceipt,
    action: str,
    *,
    following: Sequence[Message] = (),
) -> DeletionReceipt:
    """Complete a committed deletion (see the module docstring); returns ``receipt``
    with ``purged`` set. ``following``: deleted messages whose next turns must be
    re-embedded."""
    tenant = audit.SYSTEM_TENANT if action == "delete_tenant" else receipt.tenant
    with ctx.backend.batch():
        audit.record_receipt(ctx, receipt, action, tenant=tenant)
        if following:
            reembed_following(ctx, receipt.tenant, following)
    forget_cached(ctx)
    return receipt.model_copy(update={"purged": purge(ctx)})


def reembed_following(ctx: Context, tenant: str, deleted: Sequence[Message]) -> int:
    """Re-embed the turns whose context window held one of the ``deleted`` messages
    (call after they are gone). Returns how many were re-embedded."""
    turns = ctx.settings.embed_context_turns
    if turns <= 0 or not deleted:
        return 0
    done = 0
    by_conversation: dict[str, list[int]] = {}
    for m in deleted:
        by_conversation.setdefault(m.conversation_id, []).append(m.seq)
    for conv_id, seqs in by_conversation.items():
        remaining = [
            m
            for m in ctx.backend.find(
                tenant, Collection.MESSAGES, Where(eq={"conversation_id": conv_id}), order_by="seq"
            )
            if isinstance(m, Message)
        ]
        stale: set[int] = set()
        for seq in seqs:
            after = [i for i, m in enumerate(remaining) if m.seq > seq][:turns]
            stale.update(after)
        rows = sorted(stale)
        if not rows:
            continue
        texts = embedding_texts([m.text for m in remaining], None, turns)
        embedder = ctx.message_embedder
        vectors = embedder.embed_batch([texts[i] for i in rows])
        ctx.backend.upsert(
            tenant,
            Collection.MESSAGES,
            [remaining[i] for i in rows],
            Vectors(embedder.model_id, vectors),
        )
        done += len(rows)
    return done


def erase_messages(ctx: Context, tenant: str, messages: Sequence[Message]) -> Counter[str]:
    """Delete messages with what only they supported, and re-embed the turns after
    them. Run inside the caller's batch; :func:`finish` (or :func:`purge`) after it."""
    counts: Counter[str] = Counter()
    by_profile: dict[str, list[Message]] = {}
    for m in messages:
        by_profile.setdefault(m.profile_id, []).append(m)
    for profile_id, mine in by_profile.items():
        derived = forget_messages(
            ctx.backend,
            ctx.embedder,
            tenant,
            profile_id,
            [m.id for m in mine],
            list(dict.fromkeys(m.conversation_id for m in mine)),
        )
        counts.update(derived)
    counts["messages"] += ctx.backend.delete(
        tenant, Collection.MESSAGES, Where(any_of={"id": [m.id for m in messages]})
    )
    reembed_following(ctx, tenant, messages)
    return counts


def erase_observations(ctx: Context, tenant: str, observations: Sequence[Observation]) -> int:
    """Delete observation versions, relinking their neighbours as the observation
    store does. Run inside the caller's batch."""
    by_profile: dict[str, list[Observation]] = {}
    for o in observations:
        by_profile.setdefault(o.profile_id, []).append(o)
    n = 0
    for profile_id, mine in by_profile.items():
        store = ProfileObservations(ctx.backend, ctx.embedder, tenant, profile_id)
        for o in mine:
            current = store.by_id.get(o.id)
            if current is not None:
                store.remove(current)
                n += 1
    return n
