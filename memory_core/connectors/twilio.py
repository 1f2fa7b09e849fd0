"""Twilio connector: Conversations webhooks, Programmable Messaging (SMS and
WhatsApp) inbound webhooks and Conversational Intelligence voice transcripts.

Mapping:

- **Twilio Conversations** (post-event webhooks, form-encoded): the
  ConversationSid (``CH...``) is our conversation id. ``onConversationAdded`` and
  ``onParticipantAdded`` with a ``MessagingBinding.Address`` name the customer
  (``+1617...`` -> ``phone:``, ``whatsapp:+1617...`` -> ``whatsapp:``); a chat
  participant (``Identity``) is an agent unless ``customer_identity(identity)``
  says it is the customer (then ``chat_id:<identity>``). ``onMessageAdded`` adds
  the message (its ``MessageSid`` is the message id, so a redelivery is skipped),
  with role ``customer`` when the author is the customer, ``system`` for
  ``system``, else ``human_agent``. ``onConversationStateUpdated`` to ``closed``
  ends our conversation, so extraction runs on it.
- **Programmable Messaging** (inbound ``From``, ``To``, ``Body``, ``MessageSid``):
  ``From`` is the customer (``whatsapp:`` prefix -> WhatsApp channel, else SMS).
  Messages between one customer and one of your numbers form one conversation
  until it is idle for ``session_gap`` (24 h by default): the next message then
  ends it (extraction runs) and opens a new one.
- **Conversational Intelligence**: a transcript (``GT...``, the conversation id,
  channel ``voice``) and its sentences; each sentence's ``media_channel`` maps to
  the speaker through the transcript's ``channel.participants`` (role/type
  ``customer`` -> customer, ``ai``/``virtual`` agents -> ``ai_agent``, others
  ``human_agent``); the customer's ``media_participant_id`` (a phone number) is
  the identifier. :func:`ingest_transcript` takes the payloads; the webhook
  fetches them from the API when Twilio reports a transcript available.

Every request must carry a valid ``X-Twilio-Signature`` (:func:`compute_signature`,
Twilio's documented algorithm: HMAC-SHA1 with the auth token over the full URL
followed by the POST parameters sorted by name, base64); JSON bodies are checked
through the ``bodySHA256`` query parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from memory_core.backends.base import Collection
from memory_core.connectors._base import (
    ASGIApp,
    ConnectorRun,
    Item,
    ItemOutcome,
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
from memory_core.models import (
    Channel,
    Conversation,
    ConversationIn,
    ConversationStatus,
    MessageIn,
    Role,
    utcnow,
)

if TYPE_CHECKING:
    from memory_core.memory import Memory

__all__ = [
    "INTELLIGENCE_API",
    "TwilioSettings",
    "compute_signature",
    "fetch_transcript",
    "handle_conversations_event",
    "handle_inbound_message",
    "ingest_transcript",
    "twilio_webhook_app",
    "validate_signature",
]

CONNECTOR = "twilio"
SIGNATURE_HEADER = "x-twilio-signature"
INTELLIGENCE_API = "https://intelligence.twilio.com/v2"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


# -- signatures -------------------------------------------------------------------------------


def compute_signature(url: str, params: Iterable[tuple[str, str]], auth_token: str) -> str:
    """Twilio's request signature: HMAC-SHA1 (key: the auth token) of the full URL
    followed by each POST parameter's name and value, sorted by name, base64."""
    data = url + "".join(k + v for k, v in sorted(params, key=lambda kv: (kv[0], kv[1])))
    digest = hmac.new(auth_token.encode(), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    """``url`` as given, without its default port and with it (Twilio's validators
    accept either spelling)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    variants = [url]
    if default is None:
        return variants
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")))
    elif parts.port == default:
        netloc = parts.netloc.rsplit(":", 1)[0] if host else parts.netloc
        variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


def validate_signature(
    url: str,
    params: Sequence[tuple[str, str]],
    signature: str | None,
    auth_token: str,
    *,
    body: bytes | None = None,
) -> bool:
    """Whether ``signature`` (``X-Twilio-Signature``) signs this request. Form posts
    pass their ``params``; a JSON ``body`` is signed through the URL, whose
    ``bodySHA256`` query parameter must be the body's SHA-256 (hex)."""
    if not signature or not auth_token:
        return False
    if body is not None:
        query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        expected = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(query.get("bodySHA256", ""), expected):
            return False
        params = ()
    return any(
        hmac.compare_digest(compute_signature(u, params, auth_token), signature.strip())
        for u in _port_variants(url)
    )


# -- identities and conversations ----------------------------------------------------------------


@dataclass
class TwilioSettings:
    """How Twilio payloads map onto the memory.

    ``customer_identity``: decides whether a chat ``Identity`` (Conversations SDK
    user) is the customer (default: no chat identity is; SMS and WhatsApp
    addresses always are). ``session_gap``: idle time after which an SMS or
    WhatsApp thread starts a new conversation. ``customer_channel``: the media
    channel of the customer in transcripts without participants.
    """

    customer_identity: Callable[[str], bool] = field(default=lambda identity: False)
    session_gap: timedelta = timedelta(hours=24)
    customer_channel: int = 1
    clock: Callable[[], datetime] = utcnow


def _address_identifier(address: str) -> str | None:
    """``phone:+1...`` or ``whatsapp:+1...`` for a messaging address; None for others."""
    text = address.strip()
    if text.lower().startswith("whatsapp:"):
        return f"whatsapp:{text.split(':', 1)[1].strip()}"
    if text.lower().startswith(("sms:", "tel:")):
        text = text.split(":", 1)[1].strip()
    if text.startswith("+") and text[1:].replace(" ", "").isdigit():
        return f"phone:{text}"
    return None


def _channel_of(identifier: str) -> Channel:
    kind = identifier.partition(":")[0]
    return {"whatsapp": Channel.WHATSAPP, "phone": Channel.SMS}.get(kind, Channel.CHAT)


def _find_conversation(memory: Memory, conversation_id: str) -> Conversation | None:
    try:
        return memory.conversations.get(conversation_id)
    except NotFoundError:
        return None


def _customer_of(settings: TwilioSettings, address: str | None, identity: str | None) -> str | None:
    if address:
        found = _address_identifier(address)
        if found:
            return found
    if identity and settings.customer_identity(identity):
        return f"chat_id:{identity}"
    return None


def _text_of(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value.strip():
        raise ValidationError(f"the Twilio request has no {name}")
    return value.strip()


def _conversation_customer(
    run: ConnectorRun,
    item: Item,
    conversation_id: str,
    customer: str,
    channel: Channel,
    started: datetime | None,
) -> Conversation | None:
    """Open our conversation for ``conversation_id`` with ``customer`` (or link the
    customer to the profile of the one already open). None in a dry run."""
    conv = _find_conversation(run.memory, conversation_id)
    if conv is None:
        profile = run.resolve(item, [customer])
        item.change(ItemOutcome.CREATED, f"{channel.value} conversation {conversation_id}")
        if run.dry_run:
            return None
        assert profile is not None
        return run.memory.conversations.add(
            channel, profile_id=profile, conversation_id=conversation_id, started_at=started
        )
    known = {str(i) for i in run.memory.profiles.identifiers(conv.profile_id)}
    ident = str(run.memory.profiles.identifier(*customer.split(":", 1)))
    if ident not in known:
        item.change(ItemOutcome.UPDATED, f"linked {ident.partition(':')[0]} identifier")
        if not run.dry_run:
            run.memory.profiles.link(conv.profile_id, ident)
    return conv


def _add_message(
    run: ConnectorRun,
    item: Item,
    conv: Conversation | None,
    message: MessageIn,
) -> None:
    if conv is not None and conv.status is ConversationStatus.ENDED:
        item.skip(f"conversation {conv.id} has ended")
        return
    if conv is not None and message.id:
        found = run.memory.backend.get(conv.tenant, Collection.MESSAGES, [message.id])
        if found:
            item.skip("already stored (same message id)")
            return
    item.change(ItemOutcome.CREATED, f"{message.role.value} message")
    if run.dry_run or conv is None:
        return
    run.memory.conversations.add_messages(conv.id, [message])


# -- Twilio Conversations --------------------------------------------------------------------


def handle_conversations_event(
    run: ConnectorRun, item: Item, params: Mapping[str, str], settings: TwilioSettings
) -> None:
    """Apply one Twilio Conversations post-event webhook (form parameters)."""
    event = _text_of(params, "EventType")
    sid = _text_of(params, "ConversationSid")
    when = parse_time(params.get("DateCreated") or params.get("DateUpdated") or None)
    address = params.get("MessagingBinding.Address") or params.get("Address")
    if event in ("onConversationAdded", "onParticipantAdded"):
        customer = _customer_of(settings, address, params.get("Identity"))
        if customer is None:
            item.skip("not a customer participant (agent or chat identity)")
            return
        _conversation_customer(run, item, sid, customer, _channel_of(customer), when)
    elif event == "onMessageAdded":
        _conversations_message(run, item, sid, params, settings, when)
    elif event == "onConversationStateUpdated":
        state = params.get("StateTo", "").strip().lower()
        conv = _find_conversation(run.memory, sid)
        if state != "closed":
            item.skip(f"state {state or '?'} needs no change")
        elif conv is None:
            item.skip(f"conversation {sid} is not stored")
        elif conv.status is ConversationStatus.ENDED:
            item.skip(f"conversation {sid} has already ended")
        else:
            item.change(ItemOutcome.UPDATED, f"ended conversation {sid} (extraction runs)")
            item.after(lambda: run.memory.conversations.end(sid, ended_at=when))
    else:
        item.skip(f"event {event[:40]} is not imported")


def _conversations_message(
    run: ConnectorRun,
    item: Item,
    sid: str,
    params: Mapping[str, str],
    settings: TwilioSettings,
    when: datetime | None,
) -> None:
    author = params.get("Author", "").strip()
    body = params.get("Body", "")
    message_sid = _text_of(params, "MessageSid")
    if not body.strip():
        item.skip("no text (media only)")
        return
    customer = _customer_of(settings, author, author)
    conv = _find_conversation(run.memory, sid)
    if conv is None:
        if customer is None:
            item.skip(f"no customer is known yet for conversation {sid}")
            return
        conv = _conversation_customer(run, item, sid, customer, _channel_of(customer), when)
    if customer is not None:
        role = Role.CUSTOMER
    elif author.lower() == "system":
        role = Role.SYSTEM
    else:
        role = Role.HUMAN_AGENT
    message = MessageIn(role=role, text=body, ts=when, id=message_sid, author=author or None)
    _add_message(run, item, conv, message)


# -- Programmable Messaging --------------------------------------------------------------------


def handle_inbound_message(
    run: ConnectorRun, item: Item, params: Mapping[str, str], settings: TwilioSettings
) -> None:
    """Apply one inbound SMS or WhatsApp message (Programmable Messaging webhook)."""
    sender = _text_of(params, "From")
    to = _text_of(params, "To")
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    message_sid = _text_of({"MessageSid": message_sid}, "MessageSid")
    body = params.get("Body", "")
    customer = _address_identifier(sender)
    if customer is None:
        raise ValidationError(f"From {sender[:40]!r} is not a phone or WhatsApp address")
    if not body.strip():
        item.skip("no text (media only)")
        return
    now = settings.clock()
    thread = hashlib.sha256(f"{customer}|{to.strip().lower()}".encode()).hexdigest()[:32]
    stored = run.state.value("thread", thread)
    conv: Conversation | None = None
    if stored:
        conv_id, _, last = stored.partition("|")
        conv = _find_conversation(run.memory, conv_id)
        idle = now - datetime.fromisoformat(last) if last else timedelta(0)
        if (
            conv is not None
            and conv.status is ConversationStatus.OPEN
            and idle > settings.session_gap
        ):
            item.change(ItemOutcome.UPDATED, f"ended idle conversation {conv.id}")
            idle_id, idle_end = conv.id, datetime.fromisoformat(last)
            item.after(lambda: run.memory.conversations.end(idle_id, ended_at=idle_end))
            conv = None
        elif conv is not None and conv.status is ConversationStatus.ENDED:
            conv = None
    if conv is None:
        conv = _conversation_customer(
            run, item, f"tw_{message_sid}", customer, _channel_of(customer), now
        )
        conv_id = f"tw_{message_sid}"
    else:
        conv_id = conv.id
    message = MessageIn(role=Role.CUSTOMER, text=body, ts=now, id=message_sid, author=sender)
    _add_message(run, item, conv, message)
    concerns = conv.profile_id if conv is not None else item.profile_id
    run.state.set_value("thread", thread, f"{conv_id}|{now.isoformat()}", profile_id=concerns)


# -- Conversational Intelligence ---------------------------------------------------------------


def _speaker_role(participant: Mapping[str, Any]) -> Role:
    label = str(participant.get("role") or participant.get("type") or "").lower()
    if "customer" in label:
        return Role.CUSTOMER
    if "ai" in label.split("_") or "virtual" in label or label.startswith("ai"):
        return Role.AI_AGENT
    return Role.HUMAN_AGENT


def _sentences(payload: Mapping[str, Any] | Sequence[Any]) -> list[Mapping[str, Any]]:
    found = payload.get("sentences", []) if isinstance(payload, Mapping) else payload
    if not isinstance(found, Sequence) or isinstance(found, str):
        raise ValidationError("transcript sentences must be a list")
    return [s for s in found if isinstance(s, Mapping)]


def ingest_transcript(
    memory: Memory,
    transcript: Mapping[str, Any],
    sentences: Mapping[str, Any] | Sequence[Any],
    *,
    customer: Sequence[str] = (),
    settings: TwilioSettings | None = None,
    dry_run: bool = False,
    audit_run: bool = True,
) -> RunReport:
    """Ingest a Conversational Intelligence transcript (the Transcript resource and
    its Sentences list, as the API returns them) as an ended voice conversation,
    so extraction runs. Speakers come from ``channel.participants``; ``customer``
    adds identifiers when the transcript names none. Re-ingesting is harmless
    (a transcript already stored is skipped)."""
    settings = settings or TwilioSettings()
    with ConnectorRun(memory, CONNECTOR, dry_run=dry_run, audit_run=audit_run) as run:
        sid = str(transcript.get("sid") or "")
        with run.item(f"transcript:{sid[:40] or '?'}") as item:
            _transcript(run, item, transcript, sentences, customer, settings)
    return run.report


def _transcript(
    run: ConnectorRun,
    item: Item,
    transcript: Mapping[str, Any],
    sentences: Mapping[str, Any] | Sequence[Any],
    customer: Sequence[str],
    settings: TwilioSettings,
) -> None:
    sid = _text_of({"sid": str(transcript.get("sid") or "")}, "sid")
    channel = transcript.get("channel")
    participants = channel.get("participants") if isinstance(channel, Mapping) else None
    roles: dict[int, Role] = {}
    identifiers = list(customer)
    for p in participants if isinstance(participants, list) else []:
        if not isinstance(p, Mapping):
            continue
        number = p.get("channel_participant")
        role = _speaker_role(p)
        if isinstance(number, int):
            roles[number] = role
        if role is Role.CUSTOMER:
            for key in ("media_participant_id", "email", "user_id"):
                value = p.get(key)
                if isinstance(value, str) and value.strip():
                    ident = _address_identifier(value)
                    if ident is None and key == "email" and "@" in value:
                        ident = f"email:{value.strip()}"
                    if ident:
                        identifiers.append(ident)
    if not identifiers:
        raise ValidationError(
            f"transcript {sid} names no customer: give customer=['phone:+1...'] or "
            "set the customer participant's media_participant_id"
        )
    started = parse_time(transcript.get("date_created")) or utcnow()
    messages = []
    for s in sorted(_sentences(sentences), key=lambda s: int(s.get("sentence_index") or 0)):
        text = str(s.get("transcript") or "").strip()
        if not text:
            continue
        media = s.get("media_channel")
        default = Role.CUSTOMER if media == settings.customer_channel else Role.HUMAN_AGENT
        role = roles.get(media, default) if isinstance(media, int) else default
        try:
            offset = float(s.get("start_time") or 0.0)
        except (TypeError, ValueError):
            offset = 0.0
        messages.append(
            MessageIn(
                role=role,
                text=text,
                ts=started + timedelta(seconds=offset),
                id=str(s["sid"]) if s.get("sid") else None,
            )
        )
    if not messages:
        item.skip("the transcript has no sentences")
        return
    existing = _find_conversation(run.memory, sid)
    if existing is not None:
        item.skip(f"transcript {sid} is already stored")
        return
    profile = run.resolve(item, identifiers)
    item.change(ItemOutcome.CREATED, f"voice conversation {sid} ({len(messages)} turns)")
    if run.dry_run:
        return
    conv = ConversationIn(
        channel=Channel.VOICE,
        id=sid,
        profile_id=profile,
        started_at=started,
        messages=messages,
        ended=False,
        metadata={"twilio_transcript": sid},
    )
    run.memory.ingest(conv)
    ended = messages[-1].ts
    item.after(lambda: run.memory.conversations.end(sid, ended_at=ended))  # extraction runs


def fetch_transcript(
    transcript_sid: str,
    account_sid: str,
    auth_token: str,
    *,
    base_url: str = INTELLIGENCE_API,
    timeout: float = 30.0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Transcript resource and all its sentences, from the Conversational
    Intelligence API (HTTP basic auth with the account SID and auth token)."""
    import httpx

    with httpx.Client(timeout=timeout, auth=(account_sid, auth_token)) as client:
        url = f"{base_url}/Transcripts/{transcript_sid}"
        try:
            response = client.get(url)
            response.raise_for_status()
            transcript = response.json()
            sentences: list[dict[str, Any]] = []
            next_url: str | None = f"{url}/Sentences?PageSize=1000"
            while next_url:
                page = client.get(next_url)
                page.raise_for_status()
                data = page.json()
                sentences += data.get("sentences", [])
                next_url = (data.get("meta") or {}).get("next_page_url")
        except httpx.HTTPError as exc:
            raise ConfigError(
                f"could not read transcript {transcript_sid} from Twilio: {exc}"
            ) from exc
    return transcript, sentences


# -- the webhook ---------------------------------------------------------------------------------


def _request_url(scope: Scope, public_url: str | None) -> str:
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and not path.startswith(root):
        path = root + path
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    if public_url:
        base = public_url.rstrip("/")
    else:
        host = header(scope, "host") or "localhost"
        base = f"{scope.get('scheme', 'http')}://{host}"
    return base + path + (f"?{query}" if query else "")


def twilio_webhook_app(
    memory: Memory,
    auth_token: str,
    *,
    public_url: str | None = None,
    settings: TwilioSettings | None = None,
    account_sid: str | None = None,
    intelligence_api: str = INTELLIGENCE_API,
) -> ASGIApp:
    """An ASGI app for Twilio's webhooks, told apart by their payload:
    Conversations post-event webhooks (``EventType``), Programmable Messaging
    inbound SMS/WhatsApp (``MessageSid`` + ``From``; answered with empty TwiML so
    nothing is sent back) and Conversational Intelligence "transcript available"
    callbacks (JSON with ``transcript_sid``; the transcript is fetched with
    ``account_sid`` and ``auth_token``).

    Every request needs a valid ``X-Twilio-Signature`` over the URL Twilio
    called: give ``public_url`` (scheme, host and any proxy prefix, e.g.
    ``https://hooks.example.com``) when a proxy rewrites it; the request's path
    and query are appended. Invalid signatures get 403 and nothing is stored.
    Mount it anywhere: ``app.mount("/v1/webhooks/twilio", app_)``."""
    if not isinstance(auth_token, str) or not auth_token:
        raise ConfigError("the Twilio webhook needs the account's auth token")
    config = settings or TwilioSettings()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        import asyncio

        body = await post_body(scope, receive, send, "Twilio webhooks")
        if body is None:
            return
        url = _request_url(scope, public_url)
        kind = (header(scope, "content-type") or "").split(";")[0].strip().lower()
        signature = header(scope, SIGNATURE_HEADER)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            await respond(send, 400, {"error": "the body is not UTF-8"})
            return
        if kind == "application/json":
            valid = validate_signature(url, (), signature, auth_token, body=body)
            params: list[tuple[str, str]] = []
        else:
            params = parse_qsl(text, keep_blank_values=True)
            valid = validate_signature(url, params, signature, auth_token)
        if not valid:
            await respond(send, 403, {"error": "invalid or missing X-Twilio-Signature"})
            return
        try:
            if kind == "application/json":
                payload = json.loads(text)
                report = await asyncio.to_thread(
                    _intelligence,
                    memory,
                    payload,
                    account_sid,
                    auth_token,
                    intelligence_api,
                    config,
                )
            else:
                report = await asyncio.to_thread(_form, memory, dict(params), config)
        except json.JSONDecodeError:
            await respond(send, 400, {"error": "the body is not JSON"})
            return
        except ValidationError as exc:
            await respond(send, 400, {"error": " ".join(str(exc).split())[:300]})
            return
        except MemoryCoreError as exc:
            await respond(send, 500, {"error": " ".join(str(exc).split())[:300]})
            return
        if "EventType" not in dict(params) and params:
            await respond(send, 200, EMPTY_TWIML, "text/xml")
            return
        await respond(send, 200, {k: v for k, v in report.to_dict().items() if k != "changes"})

    return app


def _form(memory: Memory, params: dict[str, str], settings: TwilioSettings) -> RunReport:
    with ConnectorRun(memory, CONNECTOR, audit_run=False) as run:
        if "EventType" in params:
            sid = params.get("MessageSid") or params.get("ConversationSid", "")
            ref = f"{params.get('EventType', '')[:40]}:{sid}"
            handler = handle_conversations_event
        else:
            ref = f"message:{params.get('MessageSid') or params.get('SmsSid', '')}"
            handler = handle_inbound_message
        with run.item(ref[:120]) as item:
            handler(run, item, params, settings)
    return run.report


def _intelligence(
    memory: Memory,
    payload: object,
    account_sid: str | None,
    auth_token: str,
    base_url: str,
    settings: TwilioSettings,
) -> RunReport:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("transcript_sid"), str):
        raise ValidationError("expected a Conversational Intelligence callback with transcript_sid")
    sid = str(payload["transcript_sid"])
    account = account_sid or payload.get("account_sid")
    if not isinstance(account, str) or not account:
        raise ConfigError("fetching a transcript needs the Twilio account SID")
    transcript, sentences = fetch_transcript(sid, account, auth_token, base_url=base_url)
    return ingest_transcript(memory, transcript, sentences, settings=settings, audit_run=False)
