"""Bring existing customer data into Conversation Memory: Segment events and a
Salesforce org, offline.

Writes a small JSONL export of Segment Spec events (identify, track, alias,
group), previews the import with a dry run (nothing written), imports it into a
throwaway store, shows that re-running it changes nothing, then recalls what an
agent would see before answering the customer: the Segment traits and the
purchase history, each with its source. Finally it previews the outbound push of
what the memory learned back to Segment (a dry run: no write key, no network).

Then the same customer's Salesforce Contact, Account and Case come in from a
small local stand-in for the Salesforce REST API (an HTTP server on 127.0.0.1
answering like the API documentation: OAuth token, SOQL query pages, Task
creation): the CRM traits join the Segment ones on the same profile, the open
case becomes a complaint, and a conversation's summary is written back to the
Contact as a Task.

    python examples/crm_segment_import.py

The same imports from the command line::

    convmem connect segment-import events.jsonl --dry-run
    convmem connect segment-import events.jsonl
    convmem connect salesforce --mapping salesforce.toml
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from memory_core import Memory
from memory_core.connectors.salesforce import SalesforceMapping, pull, write_back
from memory_core.connectors.segment import import_file, push_profiles

EVENTS = [
    {
        "type": "identify",
        "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
        "anonymousId": "507f191e810c19729de860ea",
        "userId": "97980cfea0067",
        "timestamp": "2026-11-02T09:14:00.000Z",
        "traits": {
            "name": "Dana Whitfield",
            "email": "dana@example.com",
            "phone": "+1 617 555 0142",
            "plan": "premium",
            "address": {"city": "Denver", "state": "CO"},
        },
    },
    {
        "type": "track",
        "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
        "userId": "97980cfea0067",
        "event": "Order Completed",
        "timestamp": "2026-11-20T18:02:11.000Z",
        "properties": {"order_id": "50314b8e", "total": 129.0, "currency": "USD"},
    },
    {
        "type": "track",
        "messageId": "ajs-8d1c0b7a6e5f4d3c2b1a09f8e7d6c5b4",
        "userId": "97980cfea0067",
        "event": "Subscription Cancelled",
        "timestamp": "2026-11-28T08:30:00.000Z",
        "properties": {"plan": "premium", "reason": "too expensive"},
    },
    {
        "type": "group",
        "messageId": "group-4d7e",
        "userId": "97980cfea0067",
        "groupId": "0e8c78ea9d97a7b8185e8632",
        "timestamp": "2026-11-02T09:15:00.000Z",
        "traits": {"name": "Whitfield Family", "plan": "family"},
    },
    {  # an older identify delivered late: it must not overwrite the newer plan
        "type": "identify",
        "messageId": "0a1b2c3d-late",
        "userId": "97980cfea0067",
        "timestamp": "2026-10-01T12:00:00.000Z",
        "traits": {"plan": "basic"},
    },
]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "segment-events.jsonl"
        export.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
        with Memory.open(Path(tmp) / "memory.db", embedder="hash") as memory:
            preview = import_file(memory, export, dry_run=True)
            print(f"dry run: {preview.summary()}")
            for change in preview.changes[:4]:
                print(f"  would {change.outcome.value}: {change.reason}")
            print(f"profiles after the dry run: {len(memory.profiles.list())}")

            report = import_file(memory, export)
            print(f"import: {report.summary()}")
            again = import_file(memory, export, restart=True)
            print(f"re-run: {again.summary()}")

            customer = "email:dana@example.com"
            plan = {t.key: t.value for t in memory.traits.list(customer)}["plan"]
            print(f"plan: {plan} (the late, older identify was ignored)")
            print("recall before answering the customer:")
            print(memory.recall(customer).context)  # what matters now, no query

            memory.traits.set(customer, "preferred_channel", "sms", source="agent")
            push = push_profiles(memory, write_key="", dry_run=True)
            print(f"push preview: {push.summary()}")
            for change in push.changes:
                print(f"  {change.ref}: {change.reason}")

            salesforce(memory, customer)


# -- Salesforce ---------------------------------------------------------------------------

CONTACT_ID = "0035e00000Dana1AAA"
SALESFORCE_RECORDS: dict[str, list[dict[str, Any]]] = {
    "Contact": [
        {
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v61.0/sobjects/Contact/{CONTACT_ID}",
            },
            "Id": CONTACT_ID,
            "SystemModstamp": "2026-11-29T10:00:00.000+0000",
            "Email": "dana@example.com",
            "Phone": "(617) 555-0142",
            "Title": "Practice manager",
            "Account": {"attributes": {"type": "Account"}, "Name": "Whitfield Dental"},
        }
    ],
    "Case": [
        {
            "attributes": {
                "type": "Case",
                "url": "/services/data/v61.0/sobjects/Case/5005e00000Case1AAA",
            },
            "Id": "5005e00000Case1AAA",
            "SystemModstamp": "2026-11-30T08:00:00.000+0000",
            "CaseNumber": "00001026",
            "Subject": "Charged twice for the November invoice",
            "Status": "New",
            "Description": "Customer sees two charges of $129 on 2026-11-20.",
            "IsClosed": False,
            "ClosedDate": None,
            "ContactId": CONTACT_ID,
        }
    ],
}

SALESFORCE_MAPPING = """
[salesforce]
login_url = "{url}"
client_id = "3MVG9exampleConsumerKey"
client_secret_env = "EXAMPLE_SALESFORCE_SECRET"

[contact]
identifiers = {{ Email = "email", Phone = "phone", Id = "crm_id" }}
traits = {{ Title = "job_title", "Account.Name" = "company" }}

[case]
"""


class FakeSalesforce(BaseHTTPRequestHandler):
    """The three calls the connector makes, answered as the REST API documents them."""

    tasks: list[dict[str, Any]] = []

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/services/oauth2/token":
            host = f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"
            token = {
                "access_token": "00Dexample!token",
                "instance_url": host,
                "token_type": "Bearer",
            }
            self._json(200, token)
        else:  # /services/data/v61.0/sobjects/Task/
            self.tasks.append(json.loads(body))
            self._json(201, {"id": "00T5e00000Task1AAA", "success": True, "errors": []})

    def do_GET(self) -> None:  # noqa: N802
        soql = parse_qs(urlsplit(self.path).query)["q"][0]
        sobject = soql.split(" FROM ")[-1].split()[0]
        records = [] if " WHERE " in soql else SALESFORCE_RECORDS.get(sobject, [])
        self._json(200, {"totalSize": len(records), "done": True, "records": records})

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def fake_salesforce() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSalesforce)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def salesforce(memory: Memory, customer: str) -> None:
    os.environ["EXAMPLE_SALESFORCE_SECRET"] = "not-a-real-secret"
    with fake_salesforce() as url:
        mapping = SalesforceMapping.from_dict(tomllib.loads(SALESFORCE_MAPPING.format(url=url)))
        print(f"import: {pull(memory, mapping).summary()}")
        print(f"re-run: {pull(memory, mapping).summary()}")
        print("recall with the CRM data:")
        print(memory.recall(customer, "was the customer charged twice?").context)

        chat = memory.ingest(
            {
                "channel": "chat",
                "customer": [customer],
                "messages": [
                    {"role": "customer", "text": "I was charged twice for November."},
                    {"role": "human_agent", "text": "I refunded the second charge of $129."},
                ],
            }
        )
        memory.conversations.end(chat.conversation.id)
        memory.observations.extract(chat.conversation.id)
        print(f"write-back: {write_back(memory, mapping, chat.conversation.id).summary()}")
        task = FakeSalesforce.tasks[-1]
        print(f"  Task on {task['WhoId']}: {task['Subject']}: {task['Description']}")


if __name__ == "__main__":
    main()
