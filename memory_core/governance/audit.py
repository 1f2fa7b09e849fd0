"""The audit log: one append-only event per mutation (actor, action, target,
reason, time), stored with the tenant it concerns.

Events name records by id and carry counts, never message text, identifiers or
trait values, so they can outlive what they describe: erasing a profile keeps
the record that it was erased. Events are never updated; they go only with
their tenant. Tenant-level events (a tenant created or deleted) are kept in the
reserved partition :data:`SYSTEM_TENANT`, which no API tenant name can address.

Who acts is taken from :func:`acting_as` (a context variable, so it follows
``asyncio`` tasks and the threads ``AsyncMemory`` uses), default ``"api"``::

    with acting_as("agent:jane", reason="customer asked to be forgotten (ticket 4411)"):
        memory.delete_profile("phone:+16175550142")

Other parts of the engine record their mutations with :func:`record`.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from memory_core import validation
from memory_core.backends.base import Collection, Where
from memory_core.models import AuditEvent, DeletionReceipt, as_utc

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = [
    "DEFAULT_ACTOR",
    "SYSTEM_TENANT",
    "acting_as",
    "concerning",
    "current_actor",
    "current_reason",
    "query",
    "record",
    "record_receipt",
    "write_jsonl",
]

DEFAULT_ACTOR = "api"
SYSTEM_TENANT = "_system"
"""Partition of tenant-level events; not a valid tenant name, so never an API tenant."""

_ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("convmem_actor", default=DEFAULT_ACTOR)
_REASON: contextvars.ContextVar[str] = contextvars.ContextVar("convmem_reason", default="")
_MAX_TEXT = 200  # characters of actor and reason kept
_seq = itertools.count()
_seq_lock = threading.Lock()


def current_actor() -> str:
    return _ACTOR.get()


def current_reason() -> str:
    return _REASON.get()


@contextmanager
def acting_as(actor: str, reason: str = "") -> Iterator[None]:
    """Attribute the mutations made inside the block to ``actor``, for ``reason``."""
    actor_token = _ACTOR.set(actor.strip()[:_MAX_TEXT] or DEFAULT_ACTOR)
    reason_token = _REASON.set(reason.strip()[:_MAX_TEXT])
    try:
        yield
    finally:
        _REASON.reset(reason_token)
        _ACTOR.reset(actor_token)


def _event_id() -> str:
    """Ids that sort in creation order within a process (time, then a counter)."""
    with _seq_lock:
        n = next(_seq) % 1_000_000
    return f"aud_{time.time_ns():020d}{n:06d}_{uuid.uuid4().hex[:8]}"


def record(
    ctx: Context,
    tenant: str,
    action: str,
    target: str,
    *,
    details: Mapping[str, int | str] | None = None,
    reason: str | None = None,
    actor: str | None = None,
) -> AuditEvent:
    """Append one event to ``tenant``'s audit log (joins the caller's batch, if any).

    ``target`` and ``details`` must hold ids and counts only, never content.
    """
    event = AuditEvent(
        id=_event_id(),
        tenant=tenant,
        actor=(actor or current_actor())[:_MAX_TEXT],
        action=action,
        target=target,
        reason=(current_reason() if reason is None else reason)[:_MAX_TEXT],
        details=dict(details or {}),
    )
    if tenant == SYSTEM_TENANT:
        ctx.backend.ensure_tenant(SYSTEM_TENANT)
    ctx.backend.upsert(tenant, Collection.AUDIT, [event])
    return event


def record_receipt(
    ctx: Context, receipt: DeletionReceipt, action: str, *, tenant: str | None = None
) -> AuditEvent:
    """The audit event of a deletion: its target and counts, no content."""
    details: dict[str, int | str] = {k: v for k, v in receipt.deleted.items() if v}
    return record(ctx, tenant or receipt.tenant, action, receipt.target, details=details)


def query(
    ctx: Context,
    tenant: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    target: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events of ``tenant``, oldest first, narrowed by the given fields."""
    since = validation.optional_timestamp(since, "since")
    until = validation.optional_timestamp(until, "until")
    for name, value in (("action", action), ("target", target), ("actor", actor)):
        validation.optional_text(value, name, 1_000)
    limit = validation.optional_integer(limit, "limit", 0, validation.MAX_COUNT)
    eq: dict[str, str] = {}
    if action is not None:
        eq["action"] = action
    if target is not None:
        eq["target"] = target
    if actor is not None:
        eq["actor"] = actor
    where = Where(
        eq=eq,
        gte={"ts": as_utc(since)} if since is not None else {},
        lt={"ts": as_utc(until)} if until is not None else {},
    )
    if tenant == SYSTEM_TENANT and SYSTEM_TENANT not in ctx.backend.list_tenants():
        return []
    found = ctx.backend.find(tenant, Collection.AUDIT, where, order_by="ts", limit=limit)
    return [e for e in found if isinstance(e, AuditEvent)]


def concerning(ctx: Context, tenant: str, targets: Sequence[str]) -> list[AuditEvent]:
    """Events of ``tenant`` about any of ``targets`` (``observation:obs_...``,
    ``conversation:conv_...``), oldest first."""
    wanted = list(dict.fromkeys(targets))
    if not wanted:
        return []
    found = ctx.backend.find(tenant, Collection.AUDIT, Where(any_of={"target": wanted}))
    return sorted((e for e in found if isinstance(e, AuditEvent)), key=lambda e: (e.ts, e.id))


def write_jsonl(events: list[AuditEvent], path: str | Path) -> int:
    """Write events as JSON lines (one object per line); returns how many."""
    target = Path(path)
    with target.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) + "\n")
    return len(events)
