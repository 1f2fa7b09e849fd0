"""The Salesforce connector against a fake Salesforce at the HTTP boundary (respx),
answering like the REST API documentation says: OAuth token responses, SOQL query
results (``totalSize``, ``done``, ``nextRecordsUrl``, ``records[].attributes``),
error bodies (``[{"message", "errorCode"}]``) and sObject creation results.

The fake evaluates the connector's SOQL itself (the object, the
``SystemModstamp``/``Id`` cursor, the order), so resuming is checked against what
a server would return, not against a script of expected calls.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from memory_core.connectors import salesforce
from memory_core.connectors.salesforce import (
    SalesforceAuth,
    SalesforceClient,
    SalesforceMapping,
    case_text,
    pull,
    write_back,
)
from memory_core.errors import ConfigError, ValidationError
from memory_core.memory import Memory
from memory_core.models import ObservationStatus
from tests.test_ingest_cli import convmem

INSTANCE = "https://acme.my.salesforce.com"
API = f"{INSTANCE}/services/data/v61.0"

MAPPING = """
[salesforce]
login_url = "https://acme.my.salesforce.com"
client_id = "3MVG9fakeConsumerKey"

[contact]
identifiers = { Email = "email", Phone = "phone", MobilePhone = "phone", Id = "crm_id" }
traits = { Title = "job_title", "Account.Name" = "company" }
display_name = ["FirstName", "LastName"]

[account]
identifiers = { PersonEmail = "email" }
traits = { Type = "account_type", Tier__c = "tier" }

[case]
identifiers = { SuppliedEmail = "email" }
"""


def _stamp(minute: int) -> str:
    return f"2026-11-02T10:{minute:02d}:00.000+0000"


def contact(n: int, minute: int, **fields: Any) -> dict[str, Any]:
    rid = f"0035e00000AbC{n:02d}AAV"
    rec: dict[str, Any] = {
        "attributes": {"type": "Contact", "url": f"/services/data/v61.0/sobjects/Contact/{rid}"},
        "Id": rid,
        "SystemModstamp": _stamp(minute),
        "Email": f"customer{n}@example.com",
        "Phone": f"(617) 555-01{n:02d}",
        "MobilePhone": None,
        "FirstName": f"Customer{n}",
        "LastName": "Doe",
        "Title": "Office manager",
        "Account": {
            "attributes": {"type": "Account", "url": "/services/data/v61.0/sobjects/Account/001"},
            "Name": "Whitfield Dental",
        },
    }
    rec.update(fields)
    return rec


def account(rid: str, minute: int, contacts: list[str], **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "attributes": {"type": "Account", "url": f"/services/data/v61.0/sobjects/Account/{rid}"},
        "Id": rid,
        "SystemModstamp": _stamp(minute),
        "PersonEmail": None,
        "Type": "Customer - Direct",
        "Tier__c": "Gold",
        "Contacts": {
            "totalSize": len(contacts),
            "done": True,
            "records": [
                {
                    "attributes": {
                        "type": "Contact",
                        "url": f"/services/data/v61.0/sobjects/Contact/{c}",
                    },
                    "Id": c,
                }
                for c in contacts
            ]
            or None,
        }
        if contacts
        else None,
    }
    rec.update(fields)
    return rec


def case(n: int, minute: int, contact_id: str | None, **fields: Any) -> dict[str, Any]:
    rid = f"5005e00000XyZ{n:02d}AAB"
    rec: dict[str, Any] = {
        "attributes": {"type": "Case", "url": f"/services/data/v61.0/sobjects/Case/{rid}"},
        "Id": rid,
        "SystemModstamp": _stamp(minute),
        "CaseNumber": f"000010{n:02d}",
        "Subject": "Router keeps dropping the connection",
        "Status": "New",
        "Description": "Customer reports the router drops every evening since the firmware update.",
        "IsClosed": False,
        "ClosedDate": None,
        "ContactId": contact_id,
        "SuppliedEmail": None,
    }
    rec.update(fields)
    return rec


class FakeSalesforce:
    """The parts of the Salesforce REST API the connector uses, with its data in
    ``records`` (by object) and knobs for failures."""

    page_size = 2

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {"Contact": [], "Account": [], "Case": []}
        self.tokens_issued = 0
        self.valid_token: str | None = None
        self.queries: list[str] = []
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self.fail_page: dict[int, httpx.Response] = {}  # page number -> response, once
        self.pages_served = 0
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.token_requests: list[dict[str, str]] = []

    # -- routes ----------------------------------------------------------------------
    def install(self, router: respx.MockRouter) -> None:
        router.post(f"{INSTANCE}/services/oauth2/token").mock(side_effect=self.token)
        router.get(f"{API}/query").mock(side_effect=self.query)
        router.get(url__regex=rf"{re.escape(API)}/query/01g[\w-]+").mock(side_effect=self.more)
        router.post(url__regex=rf"{re.escape(API)}/sobjects/\w+/").mock(side_effect=self.create)

    def token(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        self.token_requests.append(form)
        if form.get("grant_type") == "client_credentials" and form.get("client_secret") != "s3cret":
            return httpx.Response(
                400,
                json={"error": "invalid_client", "error_description": "invalid client credentials"},
            )
        self.tokens_issued += 1
        self.valid_token = f"00Dfake!token{self.tokens_issued}"
        return httpx.Response(
            200,
            json={
                "access_token": self.valid_token,
                "instance_url": INSTANCE,
                "id": "https://login.salesforce.com/id/00D5e000000fake/0055e000000fake",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": "fakesignature=",
            },
        )

    def _authorised(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.valid_token}":
            return httpx.Response(
                401,
                json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
            )
        return None

    def expire_token(self) -> None:
        self.valid_token = "revoked"

    def query(self, request: httpx.Request) -> httpx.Response:
        if denied := self._authorised(request):
            return denied
        soql = request.url.params["q"]
        self.queries.append(soql)
        sobject = re.findall(r" FROM (\w+)", soql)[-1]  # the outer query's, not a sub-query's
        rows = sorted(self.records[sobject], key=lambda r: (r["SystemModstamp"], r["Id"]))
        if m := re.search(
            r"WHERE SystemModstamp > (\S+) OR \(SystemModstamp = (\S+) AND Id > '(\w+)'\)", soql
        ):
            stamp, last = m.group(1), m.group(3)
            rows = [r for r in rows if (r["SystemModstamp"], r["Id"]) > (stamp, last)]
        assert soql.endswith("ORDER BY SystemModstamp, Id")
        key = f"01gD0000002HU{len(self.cursors):02d}IAW"
        self.cursors[key] = rows
        return self._page(key, 0, len(rows))

    def more(self, request: httpx.Request) -> httpx.Response:
        if denied := self._authorised(request):
            return denied
        key, _, offset = request.url.path.rsplit("/", 1)[1].partition("-")
        return self._page(key, int(offset), len(self.cursors[key]))

    def _page(self, key: str, offset: int, total: int) -> httpx.Response:
        self.pages_served += 1
        if (failure := self.fail_page.pop(self.pages_served, None)) is not None:
            return failure
        rows = self.cursors[key][offset : offset + self.page_size]
        done = offset + self.page_size >= total
        body: dict[str, Any] = {"totalSize": total, "done": done, "records": rows}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v61.0/query/{key}-{offset + self.page_size}"
        return httpx.Response(200, json=body)

    def create(self, request: httpx.Request) -> httpx.Response:
        if denied := self._authorised(request):
            return denied
        sobject = request.url.path.rstrip("/").rsplit("/", 1)[1]
        self.created.append((sobject, json.loads(request.content)))
        prefix = {"Task": "00T", "CaseComment": "00a"}[sobject]
        return httpx.Response(
            201,
            json={
                "id": f"{prefix}5e00000Fake{len(self.created):02d}AAA",
                "success": True,
                "errors": [],
            },
        )


@pytest.fixture
def sf(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "s3cret")
    fake = FakeSalesforce()
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        yield fake


@pytest.fixture
def mapping() -> SalesforceMapping:
    import tomllib

    return SalesforceMapping.from_dict(tomllib.loads(MAPPING))


def client(mapping: SalesforceMapping, sleeps: list[float] | None = None) -> SalesforceClient:
    waits = sleeps if sleeps is not None else []
    return SalesforceClient.from_mapping(mapping, sleep=waits.append, max_retries=3)


def seed(fake: FakeSalesforce) -> None:
    c1, c2, c3 = contact(1, 1), contact(2, 2), contact(3, 3, Title=None, MobilePhone="617-555-0199")
    fake.records["Contact"] = [c1, c2, c3]
    fake.records["Account"] = [account("0015e00000Acc01AAA", 4, [c1["Id"], c2["Id"]])]
    fake.records["Case"] = [
        case(1, 5, c1["Id"]),
        case(
            2,
            6,
            c2["Id"],
            Subject="Refund for double charge",
            Status="Closed",
            IsClosed=True,
            ClosedDate="2026-11-01T16:00:00.000+0000",
        ),
    ]


# -- end to end ----------------------------------------------------------------------------


def test_pull_imports_contacts_accounts_and_cases_into_recall(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    memory.profiles.add(["email:customer1@example.com"])
    memory.traits.set("email:customer1@example.com", "company", "Dental Co", source="extracted")

    report = pull(memory, mapping, client=client(mapping))

    assert report.counts() == {"created": 6, "updated": 0, "skipped": 0, "failed": 0}
    assert not report.interrupted
    p1 = memory.profiles.get("crm_id:0035e00000AbC01AAV")
    assert p1.id == memory.profiles.get("phone:+16175550101").id  # one profile per contact
    assert p1.display_name == "Customer1 Doe"
    assert memory.profiles.get("email:customer2@example.com").display_name == "Customer2 Doe"
    views = {v.key: v for v in memory.traits.views(p1.id)}
    # the CRM (a system of record) outranks the extracted value, which stays visible
    assert views["company"].value == "Whitfield Dental"
    assert views["company"].source == "crm"
    assert [c.value for c in views["company"].conflicts] == ["Dental Co"]
    assert views["tier"].value == "Gold"  # from the account, on its contacts
    assert "job_title" not in {v.key for v in memory.traits.views("email:customer3@example.com")}
    # customer 3 has a mobile phone too
    assert (
        memory.profiles.get("phone:+16175550199").id
        == memory.profiles.get("email:customer3@example.com").id
    )

    result = memory.recall("email:customer1@example.com", "router connection problems")
    traits = {i.text: i.provenance.source for i in result.items if i.type == "trait"}
    assert traits["company: Whitfield Dental (conflicting: Dental Co from extracted)"] == "crm"
    assert traits["tier: Gold"] == "crm"
    obs = [i for i in result.items if i.type == "observation"]
    assert any("Salesforce case 00001001: Router keeps dropping" in i.text for i in obs)
    assert all(i.provenance.source == "crm" for i in obs)
    assert 'source="crm"' in result.context

    closed = memory.observations.list("email:customer2@example.com")
    assert [(o.kind.value, o.value) for o in closed] == [("event", "Closed")]
    assert "closed 2026-11-01" in closed[0].text

    events = memory.governance.audit.list(actor="connector:salesforce")
    actions = {e.action for e in events}
    assert {"create_profile", "set_trait", "remember_observation", "connector_run"} <= actions
    assert sf.tokens_issued == 1
    assert sf.token_requests[0]["grant_type"] == "client_credentials"


def test_second_run_reads_only_changes_and_closing_a_case_supersedes_it(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    pull(memory, mapping, client=client(mapping))
    again = pull(memory, mapping, client=client(mapping))
    assert again.total == 0  # nothing changed since the cursor
    assert "SystemModstamp > 2026-11-02T10:03:00.000+0000" in sf.queries[-3]

    opened = memory.observations.list("crm_id:0035e00000AbC01AAV")
    assert [o.kind.value for o in opened] == ["complaint"]
    sf.records["Case"][0].update(
        Status="Closed",
        IsClosed=True,
        ClosedDate="2026-11-03T09:00:00.000+0000",
        SystemModstamp=_stamp(30),
    )
    sf.records["Contact"][1].update(Title="Practice owner", SystemModstamp=_stamp(31))
    third = pull(memory, mapping, client=client(mapping))
    assert third.counts() == {"created": 0, "updated": 2, "skipped": 0, "failed": 0}
    history = memory.observations.list("crm_id:0035e00000AbC01AAV", include_superseded=True)
    old = next(o for o in history if o.kind.value == "complaint")
    new = next(o for o in history if o.kind.value == "event")
    assert old.status is ObservationStatus.SUPERSEDED and old.valid_to is not None
    assert new.status is ObservationStatus.ACTIVE and "closed 2026-11-03" in new.text
    views = {v.key: v.value for v in memory.traits.views("email:customer2@example.com")}
    assert views["job_title"] == "Practice owner"


def test_a_run_killed_mid_pull_resumes_from_the_stored_cursor(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    sf.records["Contact"].append(contact(4, 7))
    sf.fail_page[2] = httpx.Response(
        500, json=[{"message": "An unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}]
    )
    first = pull(memory, mapping, client=client(mapping))
    assert first.interrupted
    assert first.counts() == {"created": 2, "updated": 0, "skipped": 0, "failed": 1}
    assert "UNKNOWN_EXCEPTION" in first.failures[0].reason
    assert memory.profiles.find("email:customer3@example.com") is None
    assert json.loads(first.cursor or "") == [_stamp(2), "0035e00000AbC02AAV"]

    second = pull(memory, mapping, client=client(mapping))
    assert not second.interrupted
    # the two contacts of page 1 are not read again
    assert "SystemModstamp > 2026-11-02T10:02:00.000+0000" in sf.queries[1]
    assert second.counts()["created"] == 5  # contacts 3 and 4, the account, two cases
    for n in (1, 2, 3, 4):
        assert memory.profiles.find(f"email:customer{n}@example.com") is not None
    run_events = memory.governance.audit.list(action="connector_run")
    assert [e.details.get("status") for e in run_events] == ["interrupted", None]


def test_an_expired_token_is_refreshed_once(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    sf_client = client(mapping)
    sf_client.token()
    sf.expire_token()  # the session dies (timeout, revoked ...)
    report = pull(memory, mapping, client=sf_client)
    assert report.ok and report.created == 6
    assert sf.tokens_issued == 2 and sf_client.refreshes == 1


def test_a_token_that_stays_invalid_is_a_config_error(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    sf_client = client(mapping)
    original = sf._authorised

    def always_401(request: httpx.Request) -> httpx.Response | None:
        original(request)
        return httpx.Response(
            401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        )

    sf._authorised = always_401  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="OAuth scopes"):
        pull(memory, mapping, client=sf_client)
    assert sf.tokens_issued == 2  # the first, and one refresh: no loop


def test_bad_client_credentials_say_what_to_check(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "wrong")
    with pytest.raises(ConfigError, match="invalid_client"):
        pull(memory, mapping, client=client(mapping))


def test_rate_limits_back_off_honouring_retry_after(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    sf.fail_page[1] = httpx.Response(
        429,
        headers={"Retry-After": "7"},
        json=[{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    sleeps: list[float] = []
    report = pull(memory, mapping, client=client(mapping, sleeps))
    assert report.ok and report.created == 6
    assert sleeps == [7.0]


def test_rate_limits_are_bounded_and_the_run_resumes_later(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    limited = httpx.Response(
        403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    for page in range(1, 5):
        sf.fail_page[page] = limited
    sleeps: list[float] = []
    report = pull(memory, mapping, client=client(mapping, sleeps))
    assert report.interrupted and report.total == 1
    assert "REQUEST_LIMIT_EXCEEDED" in report.failures[0].reason
    assert "run again later" in report.failures[0].reason
    assert sleeps == [1.0, 2.0, 4.0]  # 3 retries, exponential without Retry-After
    assert pull(memory, mapping, client=client(mapping)).created == 6


def test_dry_run_writes_nothing(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    report = pull(memory, mapping, client=client(mapping), dry_run=True)
    assert report.dry_run and report.created == 6 and report.failed == 0
    assert any("trait company" in c.reason for c in report.changes)
    assert memory.profiles.list() == []
    assert memory.governance.audit.list() == []
    # no cursor was stored: a real run reads everything
    assert pull(memory, mapping, client=client(mapping)).created == 6


def test_tenants_are_isolated_profiles_and_cursors(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    acme = memory.tenants.add("acme")
    beta = memory.tenants.add("beta")
    pull(acme, mapping, client=client(mapping))
    assert memory.profiles.list() == [] and beta.profiles.list() == []
    assert beta.profiles.find("email:customer1@example.com") is None
    # beta's cursor is its own: its first run reads everything
    report = pull(beta, mapping, client=client(mapping))
    assert report.created == 6
    assert "WHERE" not in sf.queries[-3]
    assert beta.governance.audit.list(actor="connector:salesforce")
    assert memory.governance.audit.list() == []


def test_policy_screens_what_the_crm_sends(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    sf.records["Case"][0]["Description"] = (
        "Refund the charge to IBAN DE89 3704 0044 0532 0130 00 please."
    )
    memory.governance.policy.set({"remember": {"deny_trait_keys": ["job_title"]}})
    report = pull(memory, mapping, client=client(mapping))
    assert report.ok
    assert "job_title" not in {t.key for t in memory.traits.list("email:customer1@example.com")}
    assert any("job_title: denied by policy" in c.reason for c in report.changes)
    text = memory.observations.list("email:customer1@example.com")[0].text
    assert "DE89" not in text and "[REDACTED:iban]" in text


def test_a_case_of_an_unknown_contact_uses_its_supplied_email(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    sf.records["Case"] = [
        case(7, 1, None, SuppliedEmail="web.visitor@example.com"),
        case(8, 2, None),
    ]
    report = pull(memory, mapping, client=client(mapping))
    assert report.counts() == {"created": 1, "updated": 0, "skipped": 1, "failed": 0}
    (obs,) = memory.observations.list("email:web.visitor@example.com")
    assert obs.kind.value == "complaint" and obs.source == "crm"


# -- auth ------------------------------------------------------------------------------------


def test_jwt_bearer_flow_signs_an_rs256_assertion(
    memory: Memory, sf: FakeSalesforce, tmp_path: Path
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "sf.key").write_bytes(pem)
    mapping = SalesforceMapping.from_dict(
        {
            "salesforce": {
                "login_url": INSTANCE,
                "flow": "jwt",
                "client_id": "3MVG9fakeConsumerKey",
                "username": "integration@acme.example",
                "private_key_file": str(tmp_path / "sf.key"),
            },
            "contact": {"identifiers": {"Email": "email", "Id": "crm_id"}},
        }
    )
    sf.records["Contact"] = [contact(1, 1)]
    report = pull(memory, mapping, client=client(mapping))
    assert report.created == 1
    form = sf.token_requests[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"], key.public_key(), algorithms=["RS256"], audience=INSTANCE
    )
    assert claims["iss"] == "3MVG9fakeConsumerKey"
    assert claims["sub"] == "integration@acme.example"
    assert 0 < claims["exp"] - time.time() <= 180


def test_auth_configuration_errors_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESFORCE_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="SALESFORCE_CLIENT_SECRET"):
        SalesforceAuth.from_table({"client_id": "x"})
    with pytest.raises(ConfigError, match="username"):
        SalesforceAuth.from_table({"client_id": "x", "flow": "jwt"})
    with pytest.raises(ConfigError, match="private key"):
        SalesforceAuth.from_table({"client_id": "x", "flow": "jwt", "username": "u@x.example"})
    with pytest.raises(ConfigError, match="flow"):
        SalesforceAuth.from_table({"client_id": "x", "flow": "password"})


# -- the mapping file ------------------------------------------------------------------------


def test_mapping_file_errors_name_the_entry(tmp_path: Path) -> None:
    bad = [
        ('[contact]\nidentifiers = { Email = "mail" }', "unknown identifier kind 'mail'"),
        ('[contact]\ntraits = { Title = "Job Title" }', "not a trait key"),
        ('[contact]\nidentifiers = { "Email; DELETE" = "email" }', "not a field name"),
        ("[salesforce]\n", "names no object"),
        ('[contact]\nidentifiers = { Email = "email" }\n[case]\n', "must map Id"),
        ('[case]\n[write_back]\nas = "email"', "write_back.as"),
    ]
    for n, (text, message) in enumerate(bad):
        path = tmp_path / f"m{n}.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            SalesforceMapping.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        SalesforceMapping.load(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[contact\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        SalesforceMapping.load(tmp_path / "broken.toml")


def test_soql_is_incremental_and_refuses_a_tampered_cursor(mapping: SalesforceMapping) -> None:
    assert mapping.soql("Contact", None) == (
        "SELECT Id, SystemModstamp, Email, Phone, MobilePhone, Title, Account.Name, FirstName, "
        "LastName FROM Contact ORDER BY SystemModstamp, Id"
    )
    soql = mapping.soql("Account", (_stamp(4), "0015e00000Acc01AAA"))
    assert "(SELECT Id FROM Contacts)" in soql
    assert soql.endswith(
        "WHERE SystemModstamp > 2026-11-02T10:04:00.000+0000 OR (SystemModstamp = "
        "2026-11-02T10:04:00.000+0000 AND Id > '0015e00000Acc01AAA') ORDER BY SystemModstamp, Id"
    )
    with pytest.raises(ConfigError, match="--restart"):
        mapping.soql("Contact", ("2026-01-01' OR Name != '", "x"))


def test_case_text_is_short_and_says_when_it_closed() -> None:
    long = case(
        1,
        1,
        None,
        Description="word " * 500,
        IsClosed=True,
        Status="Closed",
        ClosedDate="2026-10-30T08:00:00.000+0000",
    )
    text = case_text(long)
    assert text.startswith(
        "Salesforce case 00001001: Router keeps dropping the connection "
        "(Closed, closed 2026-10-30)."
    )
    assert len(text) < 520 and text.endswith("…")


# -- write-back ------------------------------------------------------------------------------


def test_write_back_creates_one_task_per_conversation(
    memory: Memory, sf: FakeSalesforce, mapping: SalesforceMapping
) -> None:
    seed(sf)
    pull(memory, mapping, client=client(mapping))
    result = memory.ingest(
        {
            "channel": "chat",
            "customer": ["email:customer1@example.com"],
            "messages": [
                {"role": "customer", "text": "My router drops every evening, please help."},
                {"role": "human_agent", "text": "I scheduled a technician visit for Friday."},
            ],
        }
    )
    memory.conversations.end(result.conversation.id)
    memory.observations.extract(result.conversation.id)
    summary = memory.summaries.get(result.conversation.id)

    report = write_back(memory, mapping, result.conversation.id, client=client(mapping))
    assert report.created == 1
    ((sobject, body),) = sf.created
    assert sobject == "Task"
    assert body["WhoId"] == "0035e00000AbC01AAV"
    assert body["Description"] == summary.text and body["Status"] == "Completed"
    assert body["Subject"] == "Conversation summary (chat)"
    again = write_back(memory, mapping, result.conversation.id, client=client(mapping))
    assert again.skipped == 1 and len(sf.created) == 1
    (event,) = memory.governance.audit.list(action="salesforce_write_back")
    assert event.actor == "connector:salesforce"
    assert event.target == f"conversation:{result.conversation.id}"

    comment = SalesforceMapping.from_dict({**_doc(), "write_back": {"as": "case_comment"}})
    with pytest.raises(ValidationError, match="case id"):
        write_back(memory, comment, result.conversation.id, client=client(comment))
    other = memory.ingest(
        {
            "channel": "sms",
            "customer": ["email:customer1@example.com"],
            "messages": [
                {"role": "customer", "text": "The technician fixed the router, thanks."},
                {"role": "human_agent", "text": "Glad to hear it, I will close the case."},
            ],
        }
    )
    memory.conversations.end(other.conversation.id)
    memory.observations.extract(other.conversation.id)
    dry = write_back(
        memory,
        comment,
        other.conversation.id,
        client=client(comment),
        case_id="5005e00000XyZ01AAB",
        dry_run=True,
    )
    assert dry.created == 1 and len(sf.created) == 1
    write_back(
        memory, comment, other.conversation.id, client=client(comment), case_id="5005e00000XyZ01AAB"
    )
    assert sf.created[-1][0] == "CaseComment"
    assert sf.created[-1][1]["ParentId"] == "5005e00000XyZ01AAB"
    assert sf.created[-1][1]["IsPublished"] is False


def _doc() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(MAPPING)


def test_the_module_imports_no_http_client_at_import_time() -> None:
    assert "httpx" not in vars(salesforce)


# -- the command line --------------------------------------------------------------------------


def test_cli_dry_run_then_import_then_write_back(
    sf: FakeSalesforce, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(sf)
    (tmp_path / "salesforce.toml").write_text(MAPPING)
    common = ["--mapping", str(tmp_path / "salesforce.toml"), "--db", str(tmp_path / "m.db")]
    common += ["--embedder", "hash"]
    code, out, _ = convmem(capsys, "connect", "salesforce", *common, "--dry-run")
    assert code == 0, out
    assert "salesforce (dry run): 6 created" in out and "planned changes" in out
    code, out, _ = convmem(capsys, "connect", "salesforce", *common, "--json", "--no-progress")
    assert code == 0 and json.loads(out)["created"] == 6
    code, out, _ = convmem(capsys, "connect", "salesforce", *common)
    assert code == 0 and "salesforce: 0 created, 0 updated, 0 skipped, 0 failed" in out
    sf.fail_page[sf.pages_served + 1] = httpx.Response(
        500, json=[{"message": "An unexpected error occurred", "errorCode": "UNKNOWN_EXCEPTION"}]
    )
    code, out, _ = convmem(capsys, "connect", "salesforce", *common, "--restart")
    assert code == 1 and "interrupted" in out and "UNKNOWN_EXCEPTION" in out
    code, out, err = convmem(
        capsys, "connect", "salesforce-write-back", "cnv_missing", *common[:2], *common[2:]
    )
    assert code == 1 and "cnv_missing" in out + err  # the failed item, with its reason
