"""The Twilio connector end to end: Conversations post-event webhooks, inbound
SMS/WhatsApp and Conversational Intelligence transcripts, shaped like Twilio's
documentation, signed with ``X-Twilio-Signature``, through the ASGI app (a real
uvicorn server or httpx's ASGI transport) into a real SQLite store; the
Intelligence API is faked with respx."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import respx

from memory_core.backends.base import Collection
from memory_core.connectors.twilio import (
    INTELLIGENCE_API,
    TwilioSettings,
    compute_signature,
    ingest_transcript,
    twilio_webhook_app,
    validate_signature,
)
from memory_core.errors import ConfigError
from memory_core.memory import Memory
from tests.connectors.webhook_server import serve

TOKEN = "f6c2a9b1e0d34c7f8a5b6c7d8e9f0a1b"
ACCOUNT = "AC3f0c2d7e9a1b4c5d6e7f8091a2b3c4d5"
BASE = "https://hooks.example.com"
CONV = "CH4f7a9c2e1b3d5f6a8c0e2b4d6f8a0c2e"
CUSTOMER_WA = "whatsapp:+16175550142"


# -- the signature -----------------------------------------------------------------------


DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        # twilio-csharp's RequestValidatorTest and Twilio's webhook-security example
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    ],
)
def test_signatures_match_twilios_published_vectors(caller: str, expected: str) -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", caller),
        ("Digits", "1234"),
        ("From", caller),
        ("To", "+18005551212"),
    ]
    assert compute_signature(DOC_URL, params, "12345") == expected
    assert compute_signature(DOC_URL, list(reversed(params)), "12345") == expected  # sorted
    assert validate_signature(DOC_URL, params, expected, "12345")
    # Twilio's validators accept the URL with or without the default port
    assert validate_signature(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2", params, expected, "12345"
    )
    assert not validate_signature(DOC_URL, params, expected, "54321")
    assert not validate_signature(DOC_URL + "&baz=3", params, expected, "12345")
    assert not validate_signature(DOC_URL, [*params, ("Extra", "1")], expected, "12345")
    assert not validate_signature(DOC_URL, params, None, "12345")


def test_json_bodies_are_signed_through_body_sha256() -> None:
    body = b'{"transcript_sid": "GT1"}'
    url = f"{BASE}/intelligence?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = compute_signature(url, [], TOKEN)
    assert validate_signature(url, [], signature, TOKEN, body=body)
    assert not validate_signature(url, [], signature, TOKEN, body=body + b" ")


# -- helpers ------------------------------------------------------------------------------


def form(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, Any]:
    """httpx request arguments for a form post signed the way Twilio signs it."""
    return {
        "content": urlencode(params).encode(),
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": compute_signature(url, list(params.items()), token),
        },
    }


def conversation_event(event: str, **params: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT,
        "ChatServiceSid": "IS2b5d8e1f4a7c0e3b6d9f2a5c8e1b4d7f",
        "ConversationSid": CONV,
        "EventType": event,
        "RetryCount": "0",
        "Source": "WHATSAPP",
        "WebhookSid": "WH6d9f2a5c8e1b4d7f0a3c6e9b2d5f8a1c",
        "WebhookType": "webhook",
        **params,
    }


CONVERSATION_ADDED = conversation_event(
    "onConversationAdded",
    DateCreated="2026-11-30T14:00:00.000Z",
    FriendlyName="Support",
    State="active",
    **{
        "MessagingBinding.Address": CUSTOMER_WA,
        "MessagingBinding.ProxyAddress": "whatsapp:+14155238886",
    },
)
AGENT_JOINED = conversation_event(
    "onParticipantAdded",
    ParticipantSid="MB1c4e7a0d3f6b9c2e5a8d1f4b7c0e3a6d",
    Identity="agent.jane",
    RoleSid="RL0d3f6b9c2e5a8d1f4b7c0e3a6d9f2b5c",
    DateCreated="2026-11-30T14:00:05.000Z",
)


def message_added(sid: str, author: str, body: str, at: str) -> dict[str, str]:
    return conversation_event(
        "onMessageAdded",
        MessageSid=sid,
        Index="0",
        Author=author,
        Body=body,
        ParticipantSid="MB7a0d3f6b9c2e5a8d1f4b7c0e3a6d9f2b",
        DateCreated=at,
        Attributes="{}",
    )


CLOSED = conversation_event(
    "onConversationStateUpdated",
    StateFrom="active",
    StateTo="closed",
    Reason="API",
    DateUpdated="2026-11-30T14:10:00.000Z",
)

CUSTOMER_MESSAGE = message_added(
    "IM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d",
    CUSTOMER_WA,
    "Hi, my parcel for order 4471 never arrived and I moved to Denver last month.",
    "2026-11-30T14:01:00.000Z",
)
AGENT_MESSAGE = message_added(
    "IM2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e",
    "agent.jane",
    "Sorry about that! I've reshipped order 4471 to your Denver address.",
    "2026-11-30T14:02:00.000Z",
)


async def post_all(app: Any, path: str, events: list[dict[str, str]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    out = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        for params in events:
            out.append(await client.post(path, **form(BASE + path, params)))
    return out


# -- Twilio Conversations -------------------------------------------------------------------


def test_conversations_webhooks_over_a_real_server_end_in_extraction(memory: Memory) -> None:
    app = twilio_webhook_app(memory, TOKEN)
    events = [CONVERSATION_ADDED, AGENT_JOINED, CUSTOMER_MESSAGE, AGENT_MESSAGE, CLOSED]
    with serve(app) as url:
        for params in events:
            response = httpx.post(url + "/conversations", **form(url + "/conversations", params))
            assert response.status_code == 200, response.text
            assert response.json()["failed"] == 0, response.json()
    conv = memory.conversations.get(CONV)
    assert conv.channel.value == "whatsapp" and conv.status.value == "ended"
    profile = memory.profiles.get(CUSTOMER_WA)
    assert conv.profile_id == profile.id
    messages = memory.conversations.list_messages(CONV)
    assert [(m.id, m.role.value) for m in messages] == [
        ("IM1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "customer"),
        ("IM2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e", "human_agent"),
    ]
    assert messages[0].ts == datetime(2026, 11, 30, 14, 1, tzinfo=UTC)
    assert memory.observations.extraction_status(CONV) is not None  # the close ran it
    result = memory.recall(CUSTOMER_WA, "parcel never arrived")
    assert "order 4471 never arrived" in result.context
    actors = {e.actor for e in memory.governance.audit.list()}
    assert actors == {"connector:twilio"}


async def test_redelivered_webhooks_change_nothing(memory: Memory) -> None:
    app = twilio_webhook_app(memory, TOKEN)
    await post_all(app, "/", [CONVERSATION_ADDED, CUSTOMER_MESSAGE])
    counts = {c.value: memory.backend.count(memory.name, c) for c in Collection}
    responses = await post_all(app, "/", [CONVERSATION_ADDED, CUSTOMER_MESSAGE])
    assert [r.json()["skipped"] for r in responses] == [1, 1]
    after = {c.value: memory.backend.count(memory.name, c) for c in Collection}
    assert {k: v for k, v in after.items() if k != "audit"} == {
        k: v for k, v in counts.items() if k != "audit"
    }


async def test_bad_signatures_get_403_and_nothing_is_stored(memory: Memory) -> None:
    app = twilio_webhook_app(memory, TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        wrong_token = await client.post("/", **form(BASE + "/", CUSTOMER_MESSAGE, "other-token"))
        wrong_url = await client.post("/", **form("https://evil.example.com/", CUSTOMER_MESSAGE))
        tampered = form(BASE + "/", CUSTOMER_MESSAGE)
        tampered["content"] = tampered["content"].replace(b"Denver", b"Boston")
        changed = await client.post("/", **tampered)
        unsigned = await client.post(
            "/",
            content=urlencode(CUSTOMER_MESSAGE).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    statuses = {wrong_token.status_code, wrong_url.status_code, changed.status_code}
    assert statuses | {unsigned.status_code} == {403}
    memory.profiles.list()
    assert memory.backend.count(memory.name, Collection.MESSAGES) == 0
    assert not memory.profiles.list() and not memory.conversations.list()


async def test_an_agent_message_before_any_customer_is_skipped(memory: Memory) -> None:
    [response] = await post_all(twilio_webhook_app(memory, TOKEN), "/", [AGENT_MESSAGE])
    assert response.json()["skipped"] == 1 and not memory.conversations.list()


async def test_chat_identities_are_customers_only_when_configured(memory: Memory) -> None:
    settings = TwilioSettings(customer_identity=lambda identity: identity.startswith("guest-"))
    app = twilio_webhook_app(memory, TOKEN, settings=settings)
    guest = message_added(
        "IM9f", "guest-8812", "Is the store open on Sunday?", "2026-11-30T09:00:00Z"
    )
    await post_all(app, "/", [guest])
    conv = memory.conversations.get(CONV)
    assert conv.channel.value == "chat"
    assert memory.profiles.get("chat_id:guest-8812").id == conv.profile_id


# -- Programmable Messaging ---------------------------------------------------------------------


def inbound(sid: str, sender: str, body: str, to: str = "+18005551212") -> dict[str, str]:
    params = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "MessagingServiceSid": "MG9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    if sender.startswith("whatsapp:"):
        params |= {"ProfileName": "Dana", "WaId": sender.removeprefix("whatsapp:+")}
    return params


async def test_inbound_sms_and_whatsapp_thread_into_conversations(memory: Memory) -> None:
    clock = [datetime(2026, 11, 30, 9, 0, tzinfo=UTC)]
    settings = TwilioSettings(clock=lambda: clock[0], session_gap=timedelta(hours=24))
    app = twilio_webhook_app(memory, TOKEN, settings=settings)
    first, second = await post_all(
        app,
        "/messaging",
        [
            inbound("SM01", "+16175550142", "Hi, is my refund processed?"),
            inbound("SM02", "+16175550142", "It was for order 4471."),
        ],
    )
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/xml")
    assert first.text.endswith("<Response></Response>")  # no reply is sent
    [sms] = memory.conversations.list("phone:+16175550142")
    assert sms.channel.value == "sms" and sms.status.value == "open"
    assert [m.id for m in memory.conversations.list_messages(sms.id)] == ["SM01", "SM02"]

    clock[0] += timedelta(days=2)  # idle past the session gap: a new conversation
    await post_all(app, "/messaging", [inbound("SM03", "+16175550142", "Any news?")])
    newest, older = memory.conversations.list("phone:+16175550142")
    assert older.id == sms.id and older.status.value == "ended"
    assert [m.id for m in memory.conversations.list_messages(newest.id)] == ["SM03"]

    await post_all(
        app, "/messaging", [inbound("SM04", CUSTOMER_WA, "Hola", to="whatsapp:+14155238886")]
    )
    [wa] = [c for c in memory.conversations.list(CUSTOMER_WA) if c.channel.value == "whatsapp"]
    assert [m.id for m in memory.conversations.list_messages(wa.id)] == ["SM04"]
    assert memory.profiles.find(CUSTOMER_WA) is not None


async def test_inbound_messages_stay_in_their_tenant(memory: Memory) -> None:
    acme = memory.tenants.add("acme")
    await post_all(
        twilio_webhook_app(acme, TOKEN), "/", [inbound("SM77", "+16175550142", "Cancel my plan")]
    )
    assert acme.conversations.list("phone:+16175550142")
    assert memory.profiles.find("phone:+16175550142") is None
    assert memory.backend.count(memory.name, Collection.MESSAGES) == 0


# -- Conversational Intelligence ----------------------------------------------------------------

TRANSCRIPT_SID = "GT5b8e1a4d7f0c3b6e9a2d5f8c1b4e7a0d"
TRANSCRIPT: dict[str, Any] = {
    "account_sid": ACCOUNT,
    "service_sid": "GA0c3f6a9d2e5b8c1f4a7d0e3b6c9f2a5d",
    "sid": TRANSCRIPT_SID,
    "date_created": "2026-11-29T16:00:00Z",
    "date_updated": "2026-11-29T16:05:12Z",
    "status": "completed",
    "channel": {
        "media_properties": {"source_sid": "RE4c7f0a3d6e9b2c5f8a1d4e7b0c3f6a9d"},
        "participants": [
            {"channel_participant": 1, "media_participant_id": "+18005551212", "role": "Agent"},
            {
                "channel_participant": 2,
                "media_participant_id": "+16175550142",
                "role": "Customer",
                "full_name": "Dana Whitfield",
            },
        ],
    },
    "data_logging": False,
    "language_code": "en-US",
    "customer_key": None,
    "media_start_time": None,
    "duration": 312,
    "url": f"{INTELLIGENCE_API}/Transcripts/{TRANSCRIPT_SID}",
    "redaction": True,
    "links": {"sentences": f"{INTELLIGENCE_API}/Transcripts/{TRANSCRIPT_SID}/Sentences"},
}


def sentence(index: int, channel: int, text: str, start: float) -> dict[str, Any]:
    return {
        "media_channel": channel,
        "sentence_index": index,
        "start_time": f"{start:.1f}",
        "end_time": f"{start + 3:.1f}",
        "transcript": text,
        "sid": f"GX{index:032x}",
        "confidence": "0.94",
        "words": [],
    }


SENTENCES = [
    sentence(0, 1, "Thanks for calling Acme, this is Jane.", 0.0),
    sentence(1, 2, "Hi, I'd like to move my plan to the family bundle.", 3.5),
    sentence(2, 1, "Sure, I can switch you today.", 8.0),
]


def test_a_transcript_becomes_an_ended_voice_conversation(memory: Memory) -> None:
    report = ingest_transcript(memory, TRANSCRIPT, {"sentences": SENTENCES, "meta": {}})
    assert report.created == 1 and report.ok
    conv = memory.conversations.get(TRANSCRIPT_SID)
    assert conv.channel.value == "voice" and conv.status.value == "ended"
    assert conv.profile_id == memory.profiles.get("phone:+16175550142").id
    messages = memory.conversations.list_messages(TRANSCRIPT_SID)
    assert [m.role.value for m in messages] == ["human_agent", "customer", "human_agent"]
    assert messages[1].ts == datetime(2026, 11, 29, 16, 0, 3, 500000, tzinfo=UTC)
    assert memory.observations.extraction_status(TRANSCRIPT_SID) is not None
    assert "family bundle" in memory.recall("phone:+16175550142", "family bundle").context
    again = ingest_transcript(memory, TRANSCRIPT, SENTENCES)
    assert again.skipped == 1 and again.created == 0


def test_transcript_dry_run_writes_nothing(memory: Memory) -> None:
    report = ingest_transcript(memory, TRANSCRIPT, SENTENCES, dry_run=True)
    assert report.created == 1 and "voice conversation" in report.changes[-1].reason
    assert not memory.conversations.list() and not memory.profiles.list()


def test_a_transcript_without_a_customer_fails_with_a_reason(memory: Memory) -> None:
    anonymous = {**TRANSCRIPT, "channel": {"participants": []}}
    report = ingest_transcript(memory, anonymous, SENTENCES)
    assert report.failed == 1 and "names no customer" in report.failures[0].reason
    fixed = ingest_transcript(memory, anonymous, SENTENCES, customer=["phone:+16175550142"])
    assert fixed.created == 1
    roles = [m.role.value for m in memory.conversations.list_messages(TRANSCRIPT_SID)]
    assert roles == ["customer", "human_agent", "customer"]  # customer_channel 1 by default


async def test_the_transcript_available_callback_fetches_and_ingests(memory: Memory) -> None:
    callback = {
        "account_sid": ACCOUNT,
        "service_sid": TRANSCRIPT["service_sid"],
        "transcript_sid": TRANSCRIPT_SID,
        "customer_key": None,
        "event_type": "voice_intelligence_transcript_available",
    }
    body = json.dumps(callback).encode()
    url = f"{BASE}/intelligence?bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = {
        "content-type": "application/json",
        "x-twilio-signature": compute_signature(url, [], TOKEN),
    }
    app = twilio_webhook_app(memory, TOKEN, account_sid=ACCOUNT)
    transport = httpx.ASGITransport(app=app)
    base = f"{INTELLIGENCE_API}/Transcripts/{TRANSCRIPT_SID}"
    with respx.mock(assert_all_called=True) as mock:
        mock.get(base).mock(return_value=httpx.Response(200, json=TRANSCRIPT))
        first = {
            "sentences": SENTENCES[:2],
            "meta": {"page": 0, "page_size": 2, "next_page_url": f"{base}/Sentences?Page=1"},
        }
        last = {"sentences": SENTENCES[2:], "meta": {"page": 1, "next_page_url": None}}
        mock.get(f"{base}/Sentences", params={"PageSize": "1000"}).mock(
            return_value=httpx.Response(200, json=first)
        )
        mock.get(f"{base}/Sentences", params={"Page": "1"}).mock(
            return_value=httpx.Response(200, json=last)
        )
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            response = await client.post(url.removeprefix(BASE), content=body, headers=headers)
            forged = await client.post(
                url.removeprefix(BASE), content=body.replace(b"GT5", b"GT6"), headers=headers
            )
        assert mock.calls[0].request.headers["authorization"].startswith("Basic ")
    assert response.status_code == 200, response.text
    assert forged.status_code == 403
    assert len(memory.conversations.list_messages(TRANSCRIPT_SID)) == 3


def test_the_app_needs_an_auth_token(memory: Memory) -> None:
    with pytest.raises(ConfigError):
        twilio_webhook_app(memory, "")


async def test_mounted_under_a_prefix_the_signed_url_is_the_full_one(memory: Memory) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from memory_core.connectors.segment import segment_webhook_app, sign

    server = Starlette(
        routes=[
            Mount("/v1/webhooks/twilio", app=twilio_webhook_app(memory, TOKEN)),
            Mount("/v1/webhooks/segment", app=segment_webhook_app(memory, "s3cret")),
        ]
    )
    transport = httpx.ASGITransport(app=server)
    path = "/v1/webhooks/twilio/messaging"
    params = inbound("SM55", "+16175550142", "Where is my order?")
    event = {"type": "identify", "messageId": "m-1", "userId": "u-1", "traits": {"plan": "pro"}}
    body = json.dumps(event).encode()
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        ok = await client.post(path, **form(BASE + path, params))
        unprefixed = await client.post(path, **form(BASE + "/messaging", params))
        segment = await client.post(  # a mount answers below its prefix: note the slash
            "/v1/webhooks/segment/", content=body, headers={"x-signature": sign(body, "s3cret")}
        )
    assert ok.status_code == 200 and unprefixed.status_code == 403
    assert segment.status_code == 200 and segment.json()["created"] == 1
    assert memory.profiles.find("phone:+16175550142") is not None
