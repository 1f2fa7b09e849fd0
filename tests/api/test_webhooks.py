"""The one server receives the connectors' webhooks: Segment at
``/v1/webhooks/segment/<tenant>`` and Twilio at ``/v1/webhooks/twilio/<tenant>``
for each tenant with credentials in ``settings.webhooks``; a bad signature stores
nothing, and a tenant without credentials has no receiver."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from starlette.testclient import TestClient

from convmem_api.app import create_app
from memory_core.config import WebhookSecrets
from memory_core.connectors.segment import sign
from memory_core.connectors.twilio import compute_signature
from memory_core.errors import NotFoundError
from memory_core.memory import Memory
from tests.connectors.test_segment import IDENTIFY, SECRET
from tests.connectors.test_twilio import TOKEN, inbound

BASE = "http://127.0.0.1:8000"


def _client(memory: Memory) -> TestClient:
    settings = memory.settings.model_copy(
        update={
            "webhooks": {
                "acme": WebhookSecrets(segment_secret=SECRET, twilio_auth_token=TOKEN),
            }
        }
    )
    return TestClient(create_app(settings, memory=memory, mcp=False), base_url=BASE)


def test_segment_and_twilio_webhooks_are_served_per_tenant(memory: Memory) -> None:
    body = json.dumps(IDENTIFY).encode()
    with _client(memory) as client:
        forged = client.post(
            "/v1/webhooks/segment/acme", content=body, headers={"X-Signature": "0" * 40}
        )
        assert forged.status_code == 401
        acme = memory.tenant("acme")
        try:
            acme.profiles.get("email:peter@initech.com")
            raise AssertionError("a forged event was stored")
        except NotFoundError:
            pass
        signed = client.post(
            "/v1/webhooks/segment/acme/", content=body, headers={"X-Signature": sign(body, SECRET)}
        )
        assert signed.status_code == 200, signed.text
        views = {v.key: v for v in acme.traits.views("email:peter@initech.com")}
        assert views["plan"].value == "premium" and views["plan"].source == "segment"

        url = f"{BASE}/v1/webhooks/twilio/acme"
        params = inbound("SM0001", "+16175550199", "Is my refund processed?")
        reply = client.post(
            "/v1/webhooks/twilio/acme",
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": compute_signature(url, params.items(), TOKEN),
            },
        )
        assert reply.status_code == 200, reply.text
        [sms] = acme.conversations.list("phone:+16175550199")
        assert [m.text for m in acme.conversations.list_messages(sms.id)] == [
            "Is my refund processed?"
        ]

        # a tenant without webhook credentials has no receiver, whatever is signed
        memory.tenants.add("globex")
        other = client.post(
            "/v1/webhooks/segment/globex", content=body, headers={"X-Signature": sign(body, SECRET)}
        )
        assert other.status_code == 404
        assert other.headers["content-type"].startswith("application/problem+json")
    assert memory.tenant("globex").profiles.list() == []
