"""Retention: records past their time-to-live are deleted like any other deletion.

:func:`expire` applies one tenant's :class:`~memory_core.governance.policy.RetentionPolicy`
at a given time (so tests control the clock); ``memory.governance.gc()`` runs it
for one tenant, ``memory.tenants.gc()`` for every tenant, and ``convmem gc`` from
the terminal. A long-running server keeps a
:class:`RetentionScheduler`, which calls ``gc()`` every ``interval`` seconds on a
daemon thread::

    scheduler = RetentionScheduler(memory.tenants, memory.settings.gc_interval)
    scheduler.start()      # in the server's start-up
    ...
    scheduler.stop()       # in its shutdown
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from memory_core.backends.base import Collection, Where
from memory_core.errors import MemoryCoreError, ValidationError
from memory_core.governance.erasure import erase_messages, erase_observations
from memory_core.governance.screening import tenant_policy
from memory_core.models import Conversation, DeletionReceipt, Message, Observation

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = ["BATCH", "RetentionScheduler", "expire"]

BATCH = 1000
"""Messages deleted per transaction."""

log = logging.getLogger("memory_core.governance")


def expire(ctx: Context, tenant: str, now: datetime) -> Counter[str]:
    """Delete what the tenant's retention policy says has expired at ``now``.
    Returns counts per collection; the caller purges and audits."""
    retention = tenant_policy(ctx, tenant).policy.retention
    backend = ctx.backend
    counts: Counter[str] = Counter()
    if retention.messages is not None:
        cutoff = now - retention.messages
        while True:
            batch = [
                m
                for m in backend.find(
                    tenant,
                    Collection.MESSAGES,
                    Where(lt={"ts": cutoff}),
                    order_by="ts",
                    limit=BATCH,
                )
                if isinstance(m, Message)
            ]
            if not batch:
                break
            with backend.batch():
                done = erase_messages(ctx, tenant, batch)
            if not done["messages"]:  # pragma: no cover - a backend that did not delete
                break
            counts.update(done)
        # Conversations from before the cutoff with no message left hold nothing to remember.
        old = backend.find(tenant, Collection.CONVERSATIONS, Where(lt={"started_at": cutoff}))
        empty = [
            c.id
            for c in old
            if isinstance(c, Conversation)
            and backend.count(tenant, Collection.MESSAGES, Where(eq={"conversation_id": c.id})) == 0
        ]
        if empty:
            with backend.batch():
                gone = Where(any_of={"conversation_id": empty})
                counts["summaries"] += backend.delete(tenant, Collection.SUMMARIES, gone)
                counts["extractions"] += backend.delete(tenant, Collection.EXTRACTIONS, gone)
                counts["conversations"] += backend.delete(
                    tenant, Collection.CONVERSATIONS, Where(any_of={"id": empty})
                )
    if retention.observations is not None:
        cutoff = now - retention.observations
        stale = [
            o
            for o in backend.find(tenant, Collection.OBSERVATIONS, Where(lt={"updated_at": cutoff}))
            if isinstance(o, Observation)
        ]
        if stale:
            with backend.batch():
                counts["observations"] += erase_observations(ctx, tenant, stale)
    if retention.summaries is not None:
        cutoff = now - retention.summaries
        counts["summaries"] += backend.delete(
            tenant, Collection.SUMMARIES, Where(lt={"ts": cutoff})
        )
    return +counts  # drop zeros


class _Collects(Protocol):
    def gc(self, *, now: datetime | None = None) -> DeletionReceipt: ...


class RetentionScheduler:
    """Runs ``gc()`` of ``memory.tenants`` (every tenant) or of ``memory.governance``
    (one tenant) every ``interval`` seconds on a daemon thread.

    :meth:`run_once` runs one collection now (what the thread calls; tests call
    it directly instead of waiting). Errors of a run are logged and kept in
    :attr:`last_error`; the schedule goes on.
    """

    def __init__(self, memory: _Collects, interval: float) -> None:
        if interval <= 0:
            raise ValidationError("the retention interval must be positive (seconds)")
        self.memory = memory
        self.interval = float(interval)
        self.runs = 0
        self.last_receipt: DeletionReceipt | None = None
        self.last_error: MemoryCoreError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run_once(self) -> DeletionReceipt | None:
        """One retention run over every tenant; None if it failed (see :attr:`last_error`)."""
        with self._lock:
            try:
                receipt = self.memory.gc()
            except MemoryCoreError as exc:
                self.last_error = exc
                log.warning("retention run failed: %s", exc)
                return None
            finally:
                self.runs += 1
            self.last_receipt, self.last_error = receipt, None
            if receipt.total:
                log.info("retention deleted %s", dict(receipt.deleted))
            return receipt

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def start(self) -> RetentionScheduler:
        """Start the schedule (the first run is one interval from now). Idempotent."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="convmem-retention", daemon=True
                )
                self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the schedule, waiting up to ``timeout`` for a run in progress."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> RetentionScheduler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
