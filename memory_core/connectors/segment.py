"""Segment connector: Segment Spec events in (webhook and JSONL file), ``identify``
calls out (the batch API).

Mapping (source ``segment`` everywhere):

- ``identify``: ``userId`` -> identifier ``custom:segment_user=<userId>``,
  ``anonymousId`` -> ``custom:segment_anon=<anonymousId>``, ``traits.email`` ->
  ``email:``, ``traits.phone`` -> ``phone:``; every other trait -> a trait whose key
  is the snake_case of the Segment name (``firstName`` -> ``first_name``).
- ``track``: an observation of kind ``behaviour``: ``"Order Completed on
  2026-11-30: order_id=50314b8e, total=27.5, currency=USD"`` (scalar properties).
- ``alias``: links ``previousId`` (an anonymous id or an earlier user id) to
  ``userId``'s profile (which may merge profiles).
- ``group``: traits ``group_id`` and ``group_<trait>`` (``group_name``, ``group_plan``...).
- Trait values are single values: a nested object becomes one trait per field
  (``address.city`` -> ``address_city``); lists are skipped (listed in the report).
- ``page`` / ``screen``: skipped.

Every event is applied at most once (its ``messageId`` is remembered in the
store), and a trait value is only applied when its event is newer (by
``timestamp``) than the one that set the stored value, so late deliveries and
replays change nothing. Events our own push produced (``context.library.name``
``conversation-memory``) are skipped, so a push never echoes back.

Entry points: :func:`handle_events` (a list of event dicts),
:func:`import_file` (JSONL, resumable), :func:`segment_webhook_app` (an ASGI app
verifying ``X-Signature``: the hex HMAC-SHA1 of the raw body with the shared
secret) and :func:`push_profiles` (traits and active observations as
``identify`` calls to ``https://api.segment.io/v1/batch``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory_core.connectors._base import (
    ASGIApp,
    ConnectorRun,
    Item,
    ItemOutcome,
    Progress,
    Receive,
    RunReport,
    Scope,
    Send,
    header,
    parse_time,
    post_body,
    respond,
)
from memory_core.errors import ConfigError, MemoryCoreError, NotFoundError, ValidationError
from memory_core.models import IdentifierKind, ObservationKind, ObservationStatus, utcnow

if TYPE_CHECKING:
    from memory_core.memory import Memory

__all__ = [
    "BATCH_URL",
    "LIBRARY_NAME",
    "SOURCE",
    "handle_events",
    "identify_payload",
    "import_file",
    "push_profiles",
    "segment_webhook_app",
    "sign",
    "verify_signature",
]

SOURCE = "segment"
"""The trait and observation source of everything this connector writes."""
CONNECTOR = "segment"
BATCH_URL = "https://api.segment.io/v1/batch"
LIBRARY_NAME = "conversation-memory"
"""``context.library.name`` of the identify calls :func:`push_profiles` sends."""
USER_NS, ANON_NS = "segment_user", "segment_anon"
SIGNATURE_HEADER = "x-signature"

_MAX_PROPS = 6
_OPAQUE = re.compile(r"(?=[^ ]*\d)[A-Za-z0-9_-]{16,}")  # ids, hashes, tokens
_BATCH_SIZE = 100  # messages per batch request (Segment's limit is 500 KB per batch)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_KEY = re.compile(r"[^a-z0-9]+")
_IDENTIFIER_TRAITS = {"email": "email", "phone": "phone"}


# -- mapping events ----------------------------------------------------------------------


def _snake(name: str) -> str:
    """A Segment trait name as a trait key: ``firstName`` -> ``first_name``."""
    key = _NOT_KEY.sub("_", _CAMEL.sub("_", name).lower()).strip("_")
    return key if key and key[0].isalpha() else f"t_{key}" if key else ""


def _text(value: object, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise ValidationError(f"{what} must be a non-empty string")
    return str(value).strip()


def _event_identifiers(event: Mapping[str, Any], traits: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if event.get("userId") not in (None, ""):
        found.append(f"custom:{USER_NS}={_text(event['userId'], 'userId')}")
    if event.get("anonymousId") not in (None, ""):
        found.append(f"custom:{ANON_NS}={_text(event['anonymousId'], 'anonymousId')}")
    for name, kind in _IDENTIFIER_TRAITS.items():
        value = traits.get(name)
        if isinstance(value, str) and value.strip():
            found.append(f"{kind}:{value.strip()}")
    if not found:
        raise ValidationError("the event has neither userId nor anonymousId")
    return found


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what} must be an object")
    return value


def _is_echo(event: Mapping[str, Any]) -> bool:
    context = event.get("context")
    library = context.get("library") if isinstance(context, Mapping) else None
    return isinstance(library, Mapping) and library.get("name") == LIBRARY_NAME


def _event_key(message_id: str) -> str:
    if len(message_id) <= 120 and not any(c.isspace() for c in message_id):
        return f"msg:{message_id}"
    return "msg:sha256:" + hashlib.sha256(message_id.encode()).hexdigest()


def apply_event(run: ConnectorRun, item: Item, event: object) -> None:
    """Apply one Segment event (a dict shaped like the Segment Spec) within ``item``."""
    if not isinstance(event, Mapping):
        raise ValidationError("a Segment event must be a JSON object")
    kind = event.get("type")
    message_id = _text(event.get("messageId"), "messageId")
    if _is_echo(event):
        item.skip(f"sent by {LIBRARY_NAME}'s own push")
        return
    seen = _event_key(message_id)
    if run.state.seen(seen):
        item.skip("already applied (same messageId)")
        return
    when = parse_time(
        event.get("timestamp") or event.get("originalTimestamp") or event.get("receivedAt")
    )
    if kind == "identify":
        _identify(run, item, event, when)
    elif kind == "track":
        _track(run, item, event, when)
    elif kind == "alias":
        _alias(run, item, event)
    elif kind == "group":
        _group(run, item, event, when)
    elif kind in ("page", "screen"):
        item.skip(f"{kind} events are not imported")
        return
    else:
        raise ValidationError(f"unknown Segment event type {str(kind)[:40]!r}")
    run.state.mark_seen(seen, profile_id=item.profile_id)


def _identify(
    run: ConnectorRun, item: Item, event: Mapping[str, Any], when: datetime | None
) -> None:
    traits = _mapping(event.get("traits"), "traits")
    profile = run.resolve(item, _event_identifiers(event, traits))
    for key, value in _flat_traits(item, traits, skip=set(_IDENTIFIER_TRAITS)):
        _set_trait(run, item, profile, key, value, when)


def _flat_traits(
    item: Item, traits: Mapping[str, Any], *, prefix: str = "", skip: set[str] | None = None
) -> list[tuple[str, Any]]:
    """Trait keys and scalar values: nested objects one level deep become
    ``<name>_<field>`` (``address.city`` -> ``address_city``); lists are skipped."""
    found: list[tuple[str, Any]] = []
    for name, value in traits.items():
        if (skip and name in skip) or value is None:
            continue
        key = _snake(str(name))
        if not key:
            item.change(ItemOutcome.SKIPPED, f"trait {str(name)[:40]!r}: no usable key")
        elif isinstance(value, Mapping) and not prefix:
            found += _flat_traits(item, value, prefix=f"{key}_")
        elif isinstance(value, str | int | float | bool):
            found.append((prefix + key, value))
        else:
            item.change(ItemOutcome.SKIPPED, f"trait {prefix + key}: not a single value")
    return found


def _set_trait(
    run: ConnectorRun,
    item: Item,
    profile: str | None,
    key: str,
    value: Any,
    when: datetime | None,
) -> None:
    try:
        run.set_trait(item, profile, key, value, source=SOURCE, at=when)
    except ValidationError as exc:  # one bad value (schema, size) does not sink the event
        item.change(ItemOutcome.SKIPPED, f"trait {key}: {' '.join(str(exc).split())[:200]}")


def _scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str) and value.strip():
        one = " ".join(value.split())
        return one if len(one) <= 60 else one[:57] + "..."
    return None


def track_text(event_name: str, properties: Mapping[str, Any], when: datetime | None) -> str:
    """The observation a ``track`` event becomes: ``"Order Completed on 2026-11-30:
    order_id=50314b8e, total=27.5"``: its scalar properties, at most six, leaving
    out opaque ids (``checkout_id=fksdjf...``) other than the order's, which only
    dilute what recall matches."""
    head = " ".join(event_name.split())[:120]
    if when is not None:
        head += f" on {when.date().isoformat()}"
    parts = []
    for name, value in properties.items():
        key = _snake(str(name)) or str(name)
        shown = _scalar(value)
        if shown is None or (key != "order_id" and _OPAQUE.fullmatch(shown)):
            continue
        parts.append(f"{key}={shown}")
        if len(parts) == _MAX_PROPS:
            break
    return f"{head}: {', '.join(parts)}" if parts else head


def _track(run: ConnectorRun, item: Item, event: Mapping[str, Any], when: datetime | None) -> None:
    name = _text(event.get("event"), "track event name")
    properties = _mapping(event.get("properties"), "properties")
    profile = run.resolve(item, _event_identifiers(event, {}))
    text = track_text(name, properties, when)
    run.add_observation(item, profile, text, ObservationKind.BEHAVIOUR, source=SOURCE)


def _alias(run: ConnectorRun, item: Item, event: Mapping[str, Any]) -> None:
    user = f"custom:{USER_NS}={_text(event.get('userId'), 'userId')}"
    previous = _text(event.get("previousId"), "previousId")
    candidates = [f"custom:{ANON_NS}={previous}", f"custom:{USER_NS}={previous}"]
    known = [c for c in candidates if run.memory.profiles.find(c) is not None]
    run.resolve(item, [user, known[0] if known else candidates[0]])


def _group(run: ConnectorRun, item: Item, event: Mapping[str, Any], when: datetime | None) -> None:
    group_id = _text(event.get("groupId"), "groupId")
    traits = _mapping(event.get("traits"), "traits")
    profile = run.resolve(item, _event_identifiers(event, {}))
    _set_trait(run, item, profile, "group_id", group_id, when)
    for key, value in _flat_traits(item, traits, prefix="group_"):
        _set_trait(run, item, profile, key, value, when)


def _ref(event: object, fallback: str) -> str:
    if isinstance(event, Mapping):
        mid = event.get("messageId")
        kind = event.get("type")
        if isinstance(mid, str) and mid:
            return f"{kind}:{mid[:80]}" if isinstance(kind, str) else mid[:80]
    return fallback


def handle_events(
    memory: Memory,
    events: Iterable[object],
    *,
    dry_run: bool = False,
    audit_run: bool = True,
    progress: Progress | None = None,
) -> RunReport:
    """Apply Segment events (dicts shaped like the Segment Spec) to ``memory``'s
    tenant: one item per event, each applied at most once (by ``messageId``)."""
    batch = list(events)
    with ConnectorRun(
        memory, CONNECTOR, dry_run=dry_run, audit_run=audit_run, progress=progress
    ) as run:
        for n, event in enumerate(batch, 1):
            with run.item(_ref(event, f"event {n}")) as item:
                apply_event(run, item, event)
            run.tick(n, len(batch))
    return run.report


def import_file(
    memory: Memory,
    path: str | Path,
    *,
    dry_run: bool = False,
    restart: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Import a JSONL file of Segment events (one event per line; blank lines are
    ignored). Resumable: the last line applied is the cursor of stream
    ``import:<file name>``, stored with each event, so a run that was killed goes on
    from there (``restart`` reads from line 1 again; replayed events are skipped
    by ``messageId`` anyway). A line that is not JSON counts as failed."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no file {str(path)!r} to import", kind="file")
    stream = f"import:{path.name}"
    with path.open("rb") as fh:
        total = sum(1 for _ in fh)
    with ConnectorRun(
        memory, CONNECTOR, dry_run=dry_run, progress=progress, reason=f"import {path.name}"
    ) as run:
        start = 0 if restart else int(run.state.cursor(stream) or 0)
        run.report.cursor = str(start)
        run.tick(start, total)
        with path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if lineno <= start:
                    continue
                if line.strip():
                    try:
                        event: object = json.loads(line)
                    except json.JSONDecodeError as exc:
                        event = None
                        run.report.add(ItemOutcome.FAILED, f"line {lineno}", f"invalid JSON: {exc}")
                    if event is not None:
                        with run.item(_ref(event, f"line {lineno}")) as item:
                            apply_event(run, item, event)
                            run.state.set_cursor(str(lineno), stream)
                run.report.cursor = str(lineno)
                run.tick(lineno, total)
        if not dry_run:
            run.state.set_cursor(str(total), stream)
    return run.report


# -- the webhook ---------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """The ``X-Signature`` Segment sends: hex HMAC-SHA1 of the raw body with the secret."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def verify_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` is Segment's signature of ``body`` (constant time)."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, secret), signature.strip().lower())


def segment_webhook_app(memory: Memory, secret: str) -> ASGIApp:
    """An ASGI app receiving Segment's Webhooks destination (classic or Actions):
    ``POST`` a JSON event, a list of events or ``{"batch": [...]}`` signed with
    ``X-Signature``. Answers 401 for a missing or wrong signature (nothing is
    stored), 400 for a body that is not JSON, 413 above 4 MB, 200 with the run's
    counts otherwise (failures included, so Segment does not retry a bad event
    forever). Mount it anywhere: ``app.mount("/v1/webhooks/segment", app_)``."""
    if not isinstance(secret, str) or not secret:
        raise ConfigError("the Segment webhook needs the destination's shared secret")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        body = await post_body(scope, receive, send, "Segment events")
        if body is None:
            return
        if not verify_signature(body, header(scope, SIGNATURE_HEADER), secret):
            await respond(send, 401, {"error": "invalid or missing X-Signature"})
            return
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            await respond(send, 400, {"error": "the body is not JSON"})
            return
        if isinstance(payload, Mapping) and isinstance(payload.get("batch"), list):
            events: list[object] = list(payload["batch"])
        elif isinstance(payload, list):
            events = payload
        else:
            events = [payload]
        try:
            report = await asyncio.to_thread(handle_events, memory, events, audit_run=False)
        except MemoryCoreError as exc:
            await respond(send, 500, {"error": " ".join(str(exc).split())[:300]})
            return
        await respond(send, 200, {k: v for k, v in report.to_dict().items() if k != "changes"})

    return app


# -- the push -----------------------------------------------------------------------------


def _segment_ids(memory: Memory, profile_id: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    for ident in memory.profiles.identifiers(profile_id):
        if ident.kind is not IdentifierKind.CUSTOM:
            continue
        namespace, _, value = ident.value.partition("=")
        if namespace == USER_NS:
            ids.setdefault("userId", value)
        elif namespace == ANON_NS:
            ids.setdefault("anonymousId", value)
    return ids


def identify_payload(memory: Memory, profile_id: str) -> dict[str, Any] | None:
    """The ``identify`` call for a profile: its effective traits (those not from
    Segment itself) and its active observations (not from Segment) as the trait
    ``convmem_observations``; None when the profile has no Segment id."""
    ids = _segment_ids(memory, profile_id)
    if not ids:
        return None
    traits: dict[str, Any] = {}
    for view in memory.traits.views(profile_id):
        if view.source != SOURCE:
            traits[view.key] = view.value
    observations = [
        {"kind": o.kind.value, "text": o.text, "since": o.valid_from.isoformat()}
        for o in memory.observations.list(profile_id)
        if o.status is ObservationStatus.ACTIVE and o.source != SOURCE
    ]
    if observations:
        traits["convmem_observations"] = observations
    if not traits:
        return None
    return {
        "type": "identify",
        **ids,
        "traits": traits,
        "context": {"library": {"name": LIBRARY_NAME}},
    }


def _digest(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def push_profiles(
    memory: Memory,
    write_key: str,
    *,
    endpoint: str = BATCH_URL,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    timeout: float = 30.0,
    max_retries: int = 3,
) -> RunReport:
    """Send every profile's traits and active observations to Segment as
    ``identify`` calls, in batches to the batch API (HTTP basic auth with the
    source's write key). A profile whose payload is unchanged since its last
    successful push is skipped (unless ``force``); one without a Segment
    ``userId``/``anonymousId`` is skipped. 429 and 5xx answers are retried
    (``Retry-After`` honoured); a batch that still fails counts its profiles failed."""
    import httpx

    with ConnectorRun(memory, CONNECTOR, dry_run=dry_run, progress=progress) as run:
        pending: list[tuple[str, dict[str, Any], str]] = []
        profiles = _all_profiles(memory)
        with httpx.Client(timeout=timeout) as client:
            for n, profile_id in enumerate(profiles, 1):
                ref = f"profile:{profile_id}"
                payload = identify_payload(memory, profile_id)
                if payload is None:
                    run.report.add(ItemOutcome.SKIPPED, ref, "no Segment id or nothing to push")
                    continue
                digest = _digest(payload)
                if not force and run.state.value("pushed", profile_id) == digest:
                    run.report.add(ItemOutcome.SKIPPED, ref, "unchanged since the last push")
                    continue
                pending.append((profile_id, payload, digest))
                if len(pending) >= _BATCH_SIZE:
                    _send(run, client, endpoint, write_key, pending, max_retries)
                    pending = []
                run.tick(n, len(profiles))
            if pending:
                _send(run, client, endpoint, write_key, pending, max_retries)
            run.tick(len(profiles), len(profiles))
    return run.report


def _all_profiles(memory: Memory) -> list[str]:
    ids: list[str] = []
    offset = 0
    while True:
        page = memory.profiles.list(limit=500, offset=offset)
        ids += [p.id for p in page]
        if len(page) < 500:
            return ids
        offset += len(page)


def _send(
    run: ConnectorRun,
    client: Any,
    endpoint: str,
    write_key: str,
    pending: list[tuple[str, dict[str, Any], str]],
    max_retries: int,
) -> None:
    import httpx

    now = utcnow().isoformat()
    batch = [
        {**payload, "messageId": f"convmem-{profile_id}-{digest[:16]}", "timestamp": now}
        for profile_id, payload, digest in pending
    ]
    if run.dry_run:
        for profile_id, payload, _ in pending:
            keys = ", ".join(sorted(payload["traits"]))
            run.report.change(ItemOutcome.UPDATED, f"profile:{profile_id}", f"identify: {keys}")
            run.report.add(ItemOutcome.UPDATED, f"profile:{profile_id}")
        return
    error = ""
    for attempt in range(max_retries + 1):
        try:
            response = client.post(
                endpoint, json={"batch": batch, "sentAt": now}, auth=(write_key, "")
            )
        except httpx.HTTPError as exc:
            error = f"could not reach Segment: {exc}"
            continue
        if response.status_code == 200:
            error = ""
            break
        error = f"Segment answered {response.status_code}: {response.text[:200]}"
        if response.status_code != 429 and response.status_code < 500:
            break
        if attempt < max_retries:
            time.sleep(min(_retry_after(response.headers.get("retry-after"), attempt), 30.0))
    for profile_id, payload, digest in pending:
        ref = f"profile:{profile_id}"
        if error:
            run.report.add(ItemOutcome.FAILED, ref, error)
            continue
        keys = ", ".join(sorted(payload["traits"]))
        run.report.change(ItemOutcome.UPDATED, ref, f"identify: {keys}")
        run.report.add(ItemOutcome.UPDATED, ref)
        run.state.set_value("pushed", profile_id, digest, profile_id=profile_id)


def _retry_after(value: str | None, attempt: int) -> float:
    if value is not None:
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
    return 0.5 * float(2**attempt)
