"""What every connector shares: the per-run report, the state kept in the store,
dry runs, the audit actor, policy-screened writes and progress.

A connector turns external records (Segment events, Salesforce rows, Twilio
webhooks ...) into writes on a tenant handle. One pass over a source is a
:class:`ConnectorRun`; each external record is one *item* of it::

    with ConnectorRun(memory, "segment", dry_run=False) as run:
        for event in events:
            with run.item(f"segment:{event['messageId']}") as item:
                profile = run.resolve(item, ["email:ann@example.com"])
                run.set_trait(item, profile, "plan", "premium", source="segment", at=ts)
    print(run.report.to_dict())

- **Audit**: every mutation inside the run is recorded with the actor
  ``connector:<name>`` (:func:`~memory_core.governance.audit.acting_as`), and the
  run itself ends with one ``connector_run`` event holding its counts (not for
  dry runs, nor for single webhook deliveries: ``audit_run=False``).
- **Policy**: writes go through the services (``memory.traits.set``,
  ``memory.observations.add``, ``memory.ingest`` ...), which screen and redact by
  the tenant's policy; a denied value is a skipped change with its reason.
- **Atomic items**: outside dry runs an item runs in one backend batch (one
  transaction on SQLite), with the state it records (the event id it has seen,
  the cursor), so a run killed mid-item leaves nothing half-written and resumes
  from the cursor. A typed error (:class:`~memory_core.errors.MemoryCoreError`)
  in an item rolls the item back and counts it ``failed`` with the reason; the
  run goes on.
- **Dry run**: reads happen, writes do not; the report lists what would change.
  State written during a dry run lives in memory only, so the run still sees
  its own progress (a repeated event is skipped) and the store is untouched.
- **State** (:class:`ConnectorStore`): cursors, processed external ids and value
  versions, stored per tenant in ``Collection.CONNECTOR_STATE`` on every backend
  (erased with the tenant). A record that concerns a customer (an event applied
  to the profile, a value version, a push digest, a message thread of the
  customer's number) carries its ``profile_id``, so erasing the profile
  (``memory.profiles.delete``) erases the record, and the subject-access export
  lists it.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any

from memory_core.backends.base import Collection, Where
from memory_core.errors import MemoryCoreError, PolicyDenied, ValidationError
from memory_core.extraction.traits import trait_id
from memory_core.governance import screening
from memory_core.governance.audit import acting_as, record
from memory_core.models import (
    ConnectorState,
    Decision,
    Identifier,
    ObservationKind,
    as_utc,
    utcnow,
)
from memory_core.services._base import Service

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

    from memory_core.memory import Memory

__all__ = [
    "MAX_BODY",
    "RUN_ACTION",
    "ASGIApp",
    "ConnectorRun",
    "ConnectorStore",
    "Item",
    "ItemOutcome",
    "Progress",
    "ReportEntry",
    "RunReport",
    "Receive",
    "Scope",
    "Send",
    "connector_actor",
    "header",
    "lifespan",
    "parse_time",
    "post_body",
    "progress_bar",
    "read_body",
    "respond",
]

RUN_ACTION = "connector_run"
"""The audit action of a finished (or interrupted) connector run."""

MAX_LISTED = 1000
"""Report entries kept per list (counts are always exact)."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

Progress = Callable[[int, int | None], None]
"""A progress callback: ``progress(done, total)`` (``total`` None when unknown)."""


def connector_actor(connector: str) -> str:
    """The audit actor of a connector's writes, e.g. ``connector:segment``."""
    return f"connector:{connector}"


def _check_name(connector: str) -> str:
    if not isinstance(connector, str) or not _NAME.fullmatch(connector):
        raise ValidationError(
            f"invalid connector name {connector!r}: lower-case snake_case, e.g. 'segment'"
        )
    return connector


def parse_time(value: object, what: str = "timestamp") -> datetime | None:
    """An ISO-8601 time (``Z`` allowed) as an aware UTC datetime; None for None/"".

    Raises :class:`ValidationError` for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return as_utc(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise ValidationError(f"{what} {str(value)[:60]!r} is not an ISO-8601 time")


# -- the report ------------------------------------------------------------------------


class ItemOutcome(StrEnum):
    """What a run did with one external record (or one change of it)."""

    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class ReportEntry:
    """One line of a report: the external record (``ref``), what happened and why."""

    outcome: ItemOutcome
    ref: str
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome.value, "ref": self.ref, "reason": self.reason}


@dataclass
class RunReport:
    """The result of one connector run: counts per outcome (one per external record),
    the failures with their reasons, and the changes made (or, in a dry run, that
    would be made). Print it with rich (``console.print(report)``) or serialise it
    with :meth:`to_dict`."""

    connector: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[ReportEntry] = field(default_factory=list)
    changes: list[ReportEntry] = field(default_factory=list)
    cursor: str | None = None
    interrupted: bool = False

    def add(self, outcome: ItemOutcome | str, ref: str, reason: str | None = None) -> None:
        """Count one external record with its outcome; a failure keeps ``reason``."""
        outcome = ItemOutcome(outcome)
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)
        if outcome is ItemOutcome.FAILED and len(self.failures) < MAX_LISTED:
            self.failures.append(ReportEntry(outcome, ref, reason or "failed"))

    def change(self, outcome: ItemOutcome | str, ref: str, description: str) -> None:
        """List one change (made, or planned in a dry run) of a record (not counted)."""
        if len(self.changes) < MAX_LISTED:
            self.changes.append(ReportEntry(ItemOutcome(outcome), ref, description))

    @property
    def total(self) -> int:
        return self.created + self.updated + self.skipped + self.failed

    @property
    def ok(self) -> bool:
        """No record failed."""
        return self.failed == 0

    def counts(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "dry_run": self.dry_run,
            **self.counts(),
            "failures": [e.to_dict() for e in self.failures],
            "changes": [e.to_dict() for e in self.changes],
            "cursor": self.cursor,
            "interrupted": self.interrupted,
        }

    def summary(self) -> str:
        """One line: ``segment (dry run): 3 created, 1 updated, 0 skipped, 0 failed``."""
        mode = " (dry run)" if self.dry_run else ""
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items())
        tail = " - interrupted, resume to continue" if self.interrupted else ""
        return f"{self.connector}{mode}: {counts}{tail}"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.markup import escape
        from rich.table import Table

        yield f"[bold]{escape(self.summary())}[/]"
        if self.dry_run and self.changes:
            table = Table("would", "record", "change", title="planned changes (nothing written)")
            for e in self.changes[:200]:
                table.add_row(e.outcome.value, escape(e.ref), escape(e.reason))
            yield table
            if len(self.changes) > 200:
                yield f"[dim]... and {len(self.changes) - 200} more changes[/]"
        if self.failures:
            table = Table("record", "reason", title="failures", title_style="red")
            for e in self.failures[:50]:
                table.add_row(escape(e.ref), escape(e.reason))
            yield table
            if self.failed > 50:
                yield f"[dim]... and {self.failed - 50} more failures (--json lists them)[/]"


# -- state kept in the store -------------------------------------------------------------


class ConnectorStore(Service):
    """The state of one connector in this handle's tenant, kept in the store
    (``Collection.CONNECTOR_STATE``): ``cursor`` per stream, the external event
    ids already processed, and per-slot value versions. In a dry run writes stay
    in memory. Values hold ids and times only."""

    __slots__ = ("_overlay", "connector", "dry_run")

    def __init__(self, memory: Memory, connector: str, *, dry_run: bool = False) -> None:
        super().__init__(memory)
        self.connector = _check_name(connector)
        self.dry_run = dry_run
        self._overlay: dict[str, str] = {}

    def _id(self, kind: str, key: str) -> str:
        return f"{self.connector}:{kind}:{key}"

    def _get(self, kind: str, key: str) -> str | None:
        rid = self._id(kind, key)
        if rid in self._overlay:
            return self._overlay[rid]
        found = self._backend.get(self._tenant, Collection.CONNECTOR_STATE, [rid])
        return found[0].value if found else None

    def _put(self, kind: str, key: str, value: str, profile_id: str | None = None) -> None:
        rid = self._id(kind, key)
        if self.dry_run:
            self._overlay[rid] = value
            return
        state = ConnectorState(
            id=rid,
            tenant=self._tenant,
            connector=self.connector,
            kind=kind,
            key=key,
            value=value,
            profile_id=profile_id,
        )
        self._backend.upsert(self._tenant, Collection.CONNECTOR_STATE, [state])

    def value(self, kind: str, key: str) -> str | None:
        """A stored state value of this connector (kinds of its own besides
        ``cursor``, ``seen`` and ``version``, e.g. ``pushed``)."""
        return self._get(kind, key)

    def set_value(self, kind: str, key: str, value: str, *, profile_id: str | None = None) -> None:
        """Store a state value (ids and times only, never content); ``profile_id``:
        the profile it concerns, erased with it."""
        self._put(kind, key, value, profile_id)

    def forget(self, kind: str, key: str) -> None:
        """Drop one state value (in a dry run, only from this run's view)."""
        rid = self._id(kind, key)
        if self.dry_run:
            self._overlay[rid] = ""
            return
        self._overlay.pop(rid, None)
        self._backend.delete(self._tenant, Collection.CONNECTOR_STATE, Where(eq={"id": rid}))

    def cursor(self, stream: str = "default") -> str | None:
        """Where the last run of ``stream`` stopped (None: start from the beginning)."""
        return self._get("cursor", stream)

    def set_cursor(self, value: str, stream: str = "default") -> None:
        """Record where ``stream`` has got to (joins the caller's batch)."""
        self._put("cursor", stream, value)

    def seen(self, event_id: str) -> bool:
        """Whether the external event ``event_id`` was already processed."""
        return self._get("seen", event_id) is not None

    def mark_seen(
        self, event_id: str, when: datetime | None = None, *, profile_id: str | None = None
    ) -> None:
        """Record that ``event_id`` was processed (a replay of it then changes
        nothing); ``profile_id``: the profile it was applied to, erased with it."""
        self._put("seen", event_id, (when or utcnow()).isoformat(), profile_id)

    def version(self, slot: str) -> datetime | None:
        """The time of the newest external value applied to ``slot`` (e.g. a trait)."""
        value = self._get("version", slot)
        return None if value is None else datetime.fromisoformat(value)

    def set_version(self, slot: str, when: datetime, *, profile_id: str | None = None) -> None:
        """Record the time of the newest value applied to ``slot`` (of ``profile_id``)."""
        self._put("version", slot, as_utc(when).isoformat(), profile_id)

    def is_stale(self, slot: str, when: datetime | None) -> datetime | None:
        """The stored version of ``slot`` when it is newer than ``when`` (so a value
        of time ``when`` must not overwrite it), else None."""
        if when is None:
            return None
        stored = self.version(slot)
        return stored if stored is not None and stored > as_utc(when) else None

    def list(self, kind: str | None = None) -> builtins.list[ConnectorState]:
        """This connector's stored state records (of one ``kind``: cursor, seen, version)."""
        where = Where(eq={"connector": self.connector})
        if kind is not None:
            where = where.and_(Where(eq={"kind": kind}))
        return self._backend.find(self._tenant, Collection.CONNECTOR_STATE, where)

    def clear(self) -> int:
        """Forget this connector's state in this tenant (the next run starts over)."""
        self._overlay.clear()
        if self.dry_run:
            return 0
        where = Where(eq={"connector": self.connector})
        return self._backend.delete(self._tenant, Collection.CONNECTOR_STATE, where)


# -- one run -------------------------------------------------------------------------------


class Item:
    """The changes to one external record within a run (see :meth:`ConnectorRun.item`)."""

    __slots__ = ("_after", "changes", "profile_id", "ref", "skip_reason")

    def __init__(self, ref: str) -> None:
        self.ref = ref
        self.changes: list[tuple[ItemOutcome, str]] = []
        self.skip_reason: str | None = None
        self.profile_id: str | None = None
        """The profile :meth:`ConnectorRun.resolve` last resolved for this record."""
        self._after: list[Callable[[], object]] = []

    def after(self, action: Callable[[], object]) -> None:
        """Run ``action`` once the record's writes are committed (not in a dry run):
        for slow follow-ups such as ending a conversation, whose extraction must not
        hold the write transaction."""
        self._after.append(action)

    def change(self, outcome: ItemOutcome | str, description: str) -> None:
        """Note one change made (or planned) for this record."""
        self.changes.append((ItemOutcome(outcome), description))

    def skip(self, reason: str) -> None:
        """Mark the whole record skipped (replayed, stale ...) unless something changed."""
        self.skip_reason = reason

    @property
    def outcome(self) -> ItemOutcome:
        kinds = {o for o, _ in self.changes}
        if ItemOutcome.CREATED in kinds:
            return ItemOutcome.CREATED
        if ItemOutcome.UPDATED in kinds:
            return ItemOutcome.UPDATED
        return ItemOutcome.SKIPPED


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConnectorRun:
    """One pass of a connector over a tenant handle: its report, its state, the
    audit actor, dry-run and progress. Use as a context manager.

    ``audit_run``: record one ``connector_run`` event when the run ends (off for
    single webhook deliveries, whose writes are audited one by one anyway).
    ``progress(done, total)`` is called by :meth:`tick`.
    """

    def __init__(
        self,
        memory: Memory,
        connector: str,
        *,
        dry_run: bool = False,
        reason: str = "",
        progress: Progress | None = None,
        audit_run: bool = True,
    ) -> None:
        self.memory = memory
        self.connector = _check_name(connector)
        self.dry_run = dry_run
        self.reason = reason
        self.report = RunReport(connector, dry_run=dry_run)
        self.state = ConnectorStore(memory, connector, dry_run=dry_run)
        self._progress = progress
        self._audit_run = audit_run
        self._stack: ExitStack | None = None

    @property
    def actor(self) -> str:
        return connector_actor(self.connector)

    def __enter__(self) -> ConnectorRun:
        self.state._tenant  # noqa: B018 - the tenant must exist before anything runs
        stack = ExitStack()
        stack.enter_context(acting_as(self.actor, self.reason))
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                self.report.interrupted = True
            if self._audit_run and not self.dry_run:
                details: dict[str, int | str] = {**self.report.counts()}
                if self.report.interrupted:
                    details["status"] = "interrupted"
                ctx = self.state._ctx
                record(
                    ctx,
                    self.state._tenant,
                    RUN_ACTION,
                    f"connector:{self.connector}",
                    details=details,
                )
        finally:
            if self._stack is not None:
                self._stack.close()
                self._stack = None

    def tick(self, done: int, total: int | None = None) -> None:
        """Report progress to the callback given at construction."""
        if self._progress is not None:
            self._progress(done, total)

    @contextmanager
    def item(self, ref: str) -> Iterator[Item]:
        """Process one external record: its writes (and the state recorded with
        them) apply together or not at all; a typed error marks it failed with the
        reason and the run goes on. The record is counted when the block ends."""
        item = Item(ref)
        ctx = self.state._ctx
        try:
            if self.dry_run:
                yield item
            else:
                with ctx.resolve_lock, ctx.backend.batch():
                    yield item
            if not self.dry_run:
                for action in item._after:
                    action()
        except MemoryCoreError as exc:
            self.report.add(ItemOutcome.FAILED, ref, " ".join(str(exc).split())[:300])
            return
        outcome = item.outcome
        for change, description in item.changes:
            self.report.change(change, ref, description)
        if outcome is ItemOutcome.SKIPPED and not item.changes and item.skip_reason:
            self.report.change(ItemOutcome.SKIPPED, ref, item.skip_reason)
        self.report.add(outcome, ref, item.skip_reason)

    # -- writes that honour dry runs ---------------------------------------------------
    def resolve(
        self,
        item: Item,
        identifiers: Sequence[str | Identifier],
        *,
        display_name: str | None = None,
    ) -> str | None:
        """The profile id of these identifiers, creating the profile (named
        ``display_name``) or linking the identifiers it lacks (which may merge
        profiles). In a dry run: the existing profile id, or None when one would be
        created."""
        profiles = self.memory.profiles
        idents = list(dict.fromkeys(profiles.identifier(*_split(i)) for i in identifiers))
        if not idents:
            raise ValidationError("the record names no customer identifier")
        found = {str(i): profiles.find(i) for i in idents}
        owners = {p.id for p in found.values() if p is not None}
        new = [k for k, p in found.items() if p is None]
        if not owners:
            item.change(ItemOutcome.CREATED, f"profile with {_kinds(new)}")
        elif new:
            item.change(ItemOutcome.UPDATED, f"linked {_kinds(new)}")
        if len(owners) > 1:
            item.change(ItemOutcome.UPDATED, f"merge of {len(owners)} profiles")
        if self.dry_run:
            item.profile_id = sorted(owners)[0] if owners else None
        elif not new and len(owners) == 1:
            item.profile_id = next(iter(owners))
        else:
            item.profile_id = profiles.add(idents, display_name=display_name).id
        return item.profile_id

    def set_trait(
        self,
        item: Item,
        profile_id: str | None,
        key: str,
        value: Any,
        *,
        source: str,
        at: datetime | None = None,
        evidence: Sequence[str] = (),
    ) -> ItemOutcome:
        """Set a trait unless it already holds ``value`` or a newer value (time ``at``)
        was applied; screened by the tenant's policy (a denied key is skipped)."""
        tenant = self.state._tenant
        ctx = self.state._ctx
        try:
            screened = screening.screen_trait(ctx, tenant, key, value)
        except PolicyDenied as exc:
            item.change(ItemOutcome.SKIPPED, f"trait {key}: denied by policy ({exc})")
            return ItemOutcome.SKIPPED
        slot = f"trait:{trait_id(profile_id or '-', key, source)}"
        current = None
        if profile_id is not None:
            if stored := self.state.is_stale(slot, at):
                item.change(
                    ItemOutcome.SKIPPED,
                    f"trait {key}: a newer value (of {stored.isoformat()}) is stored",
                )
                return ItemOutcome.SKIPPED
            rid = trait_id(profile_id, key, source)
            have = self.memory.backend.get(tenant, Collection.TRAITS, [rid])
            current = have[0] if have else None
        if current is not None and current.value == screened:
            if at is not None:
                self.state.set_version(slot, at, profile_id=profile_id)
            return ItemOutcome.SKIPPED
        outcome = ItemOutcome.CREATED if current is None else ItemOutcome.UPDATED
        if not self.dry_run:
            assert profile_id is not None
            self.memory.traits.set(profile_id, key, value, source=source, evidence=evidence)
        if at is not None and profile_id is not None:
            self.state.set_version(slot, at, profile_id=profile_id)  # dry run: in memory
        item.change(outcome, f"trait {key} = {_shown(screened)} ({source})")
        return outcome

    def add_observation(
        self,
        item: Item,
        profile_id: str | None,
        text: str,
        kind: ObservationKind | str,
        *,
        source: str,
        trait_key: str | None = None,
        value: str | None = None,
    ) -> ItemOutcome:
        """Record an observation (screened, redacted and reconciled like any other:
        a statement already known is skipped, a new value for ``trait_key``
        supersedes the old one). A policy denial is a skipped change."""
        kind = ObservationKind(kind)
        if self.dry_run or profile_id is None:
            item.change(ItemOutcome.CREATED, f"{kind.value} observation {_shown(text, 80)}")
            return ItemOutcome.CREATED
        try:
            obs = self.memory.observations.add(
                profile_id, text, kind, source=source, trait_key=trait_key, value=value
            )
        except PolicyDenied as exc:
            item.change(ItemOutcome.SKIPPED, f"{kind.value} observation: denied by policy ({exc})")
            return ItemOutcome.SKIPPED
        if obs.decision is Decision.DUPLICATE:
            return ItemOutcome.SKIPPED
        outcome = ItemOutcome.CREATED if obs.decision is Decision.ADD else ItemOutcome.UPDATED
        item.change(outcome, f"{kind.value} observation {_shown(obs.text, 80)}")
        return outcome


def _split(ref: str | Identifier) -> tuple[str, str]:
    if isinstance(ref, Identifier):
        return ref.kind.value, ref.value
    kind, sep, value = ref.partition(":")
    if not sep:
        raise ValidationError(f"identifier {ref[:60]!r} is not kind:value (e.g. email:a@b.com)")
    return kind, value


def _kinds(keys: Sequence[str]) -> str:
    kinds = [k.partition(":")[0] for k in keys]
    return ", ".join(dict.fromkeys(kinds)) + (" identifier" if len(kinds) == 1 else " identifiers")


# -- progress --------------------------------------------------------------------------------


@contextmanager
def progress_bar(
    description: str, *, enabled: bool = True, console: Console | None = None
) -> Iterator[Progress]:
    """A rich progress bar (transient, on stderr) and the ``progress(done, total)``
    callback that drives it; a no-op callback when not ``enabled``."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    target = console or Console(stderr=True)
    with Progress(*columns, console=target, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


# -- webhooks: plain ASGI, mountable under any framework ---------------------------------------

Scope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 4 * 1024 * 1024


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes | None:
    """The request body (None when it exceeds ``limit`` bytes)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(
    send: Send, status: int, payload: Mapping[str, Any] | str, content_type: str = ""
) -> None:
    """Send a whole response: ``payload`` as JSON, or as text of ``content_type``."""
    if isinstance(payload, str):
        body, kind = payload.encode(), content_type or "text/plain; charset=utf-8"
    else:
        body, kind = json.dumps(payload).encode(), content_type or "application/json"
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI server's lifespan protocol (nothing to start or stop)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def post_body(scope: Scope, receive: Receive, send: Send, what: str) -> bytes | None:
    """The body of a webhook ``POST``; None when the request was already answered:
    the lifespan protocol, a method other than POST (405), a body over
    :data:`MAX_BODY` (413). ``what`` names what to POST, for the 405 message."""
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return None
    if scope["type"] != "http":
        return None
    if scope.get("method") != "POST":
        await respond(send, 405, {"error": f"POST {what} here"})
        return None
    body = await read_body(receive)
    if body is None:
        await respond(send, 413, {"error": "body too large"})
    return body


def header(scope: Scope, name: str) -> str | None:
    """The value of request header ``name`` (case-insensitive), or None."""
    wanted = name.lower().encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None
