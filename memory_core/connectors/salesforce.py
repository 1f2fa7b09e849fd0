"""Salesforce connector: pull Contacts, Accounts and Cases into profiles, traits and
observations, and write conversation summaries back as Tasks or Case comments.

- **Auth**: OAuth 2.0 client credentials or the JWT bearer flow
  (``/services/oauth2/token``; the JWT is signed RS256 with PyJWT and
  cryptography, from the ``salesforce`` extra). A 401 refreshes the token once
  and retries; rate limits (HTTP 429, ``REQUEST_LIMIT_EXCEEDED``, 502-504) back off,
  honouring ``Retry-After``, a bounded number of times.
- **Pull**: one SOQL query per object ordered by ``SystemModstamp`` and ``Id``,
  followed through ``nextRecordsUrl``; the cursor (the last ``SystemModstamp`` and
  ``Id`` done) is stored per tenant after each page, so the next run -- or a run
  after a failure -- starts where the last one stopped.
- **Mapping** (a TOML file, see :class:`SalesforceMapping` and
  docs/integrations.md): fields to identifiers and traits; traits get the source
  ``crm`` (a system of record: it outranks extracted values). Cases become
  observations: an open case a ``complaint``, a closed one an ``event`` that
  supersedes it (the open one keeps its history, with ``valid_to`` set).
- Every write goes through :class:`~memory_core.connectors._base.ConnectorRun`:
  the tenant's policy screens and redacts, the audit actor is
  ``connector:salesforce``, dry runs write nothing.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from memory_core.connectors._base import ConnectorRun, Item, ItemOutcome, Progress, RunReport
from memory_core.connectors.mapping import FieldMapping, apply_mapped, field_value, load_toml
from memory_core.errors import ConfigError, ConnectorError, ValidationError
from memory_core.governance.audit import record
from memory_core.models import ObservationKind

if TYPE_CHECKING:
    import httpx

    from memory_core.memory import Memory

__all__ = [
    "CASE_FIELDS",
    "SalesforceAuth",
    "SalesforceClient",
    "SalesforceMapping",
    "pull",
    "write_back",
]

CONNECTOR = "salesforce"
OBJECTS = ("Contact", "Account", "Case")
CASE_FIELDS = (
    "CaseNumber",
    "Subject",
    "Status",
    "Description",
    "IsClosed",
    "ClosedDate",
    "ContactId",
)
"""The Case fields every pull reads (besides ``Id`` and ``SystemModstamp``)."""

_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})")
_ID = re.compile(r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?")
_DESCRIPTION_CHARS = 400

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_API_VERSION = "v61.0"
_RETRY_STATUS = {429, 502, 503, 504}
_RATE_LIMIT_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"}


@dataclass(frozen=True)
class SalesforceAuth:
    """How to obtain an access token from ``{login_url}/services/oauth2/token``.

    ``client_credentials``: the connected app's consumer key and secret (the login
    URL is then your My Domain URL). ``jwt``: the consumer key, the integration
    user's ``username`` and the PEM private key whose certificate is uploaded to the
    connected app; the assertion is signed RS256 and valid for three minutes.
    """

    flow: Literal["client_credentials", "jwt"]
    client_id: str
    client_secret: str | None = None
    username: str | None = None
    private_key: str | None = None
    login_url: str = DEFAULT_LOGIN_URL

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> SalesforceAuth:
        """The ``[salesforce]`` table of a mapping file; secrets come from the
        environment variables it names (``client_secret_env``, ``private_key_env``)
        or from a key file (``private_key_file``), never from the file itself."""
        flow = table.get("flow", "client_credentials")
        if flow not in ("client_credentials", "jwt"):
            raise ConfigError(
                f"salesforce.flow must be 'client_credentials' or 'jwt', not {flow!r}"
            )
        client_id = table.get("client_id") or os.environ.get(
            str(table.get("client_id_env", "SALESFORCE_CLIENT_ID")), ""
        )
        if not client_id:
            raise ConfigError(
                "salesforce.client_id is missing: set it in the mapping file or in "
                "SALESFORCE_CLIENT_ID (the connected app's consumer key)"
            )
        login_url = str(table.get("login_url", DEFAULT_LOGIN_URL)).rstrip("/")
        _check_url(login_url, "salesforce.login_url")
        if flow == "client_credentials":
            env = str(table.get("client_secret_env", "SALESFORCE_CLIENT_SECRET"))
            secret = os.environ.get(env)
            if not secret:
                raise ConfigError(
                    f"the client secret is missing: set the environment variable {env} "
                    "(named by salesforce.client_secret_env)"
                )
            return cls("client_credentials", client_id, client_secret=secret, login_url=login_url)
        username = table.get("username")
        if not isinstance(username, str) or not username:
            raise ConfigError("salesforce.username is required by the JWT bearer flow")
        key: str | None = None
        if "private_key_file" in table:
            try:
                key = Path(str(table["private_key_file"])).expanduser().read_text()
            except OSError as exc:
                raise ConfigError(f"salesforce.private_key_file cannot be read: {exc}") from None
        else:
            env = str(table.get("private_key_env", "SALESFORCE_PRIVATE_KEY"))
            key = os.environ.get(env)
            if not key:
                raise ConfigError(
                    "the JWT bearer flow needs a private key: salesforce.private_key_file, "
                    f"or the PEM text in the environment variable {env}"
                )
        return cls("jwt", client_id, username=username, private_key=key, login_url=login_url)

    def grant(self) -> dict[str, str]:
        """The form fields of the token request."""
        if self.flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            }
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": self.assertion(),
        }

    def assertion(self, now: float | None = None) -> str:
        """The signed JWT bearer assertion (iss: consumer key, sub: username,
        aud: the login URL, exp: three minutes)."""
        try:
            import jwt
        except ImportError:  # pragma: no cover - the salesforce extra is missing
            raise ConfigError(
                "the JWT bearer flow needs PyJWT and cryptography: "
                "pip install 'conversation-memory[salesforce]'"
            ) from None
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.login_url,
            "exp": issued + 180,
        }
        try:
            return jwt.encode(claims, self.private_key or "", algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(f"the Salesforce private key cannot sign a JWT: {exc}") from None


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(f"{what} must be an https:// URL, not {url!r}")


def _error_codes(response: httpx.Response) -> set[str]:
    """The ``errorCode`` values of a Salesforce REST error body (a list of errors)."""
    try:
        body = response.json()
    except ValueError:
        return set()
    items = body if isinstance(body, list) else [body]
    return {str(i.get("errorCode")) for i in items if isinstance(i, dict) and "errorCode" in i}


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    items = body if isinstance(body, list) else [body]
    texts = []
    for i in items:
        if isinstance(i, dict):
            code = i.get("errorCode") or i.get("error") or ""
            msg = i.get("message") or i.get("error_description") or ""
            texts.append(f"{code}: {msg}".strip(": "))
    return "; ".join(texts)[:300] or response.text[:200]


class SalesforceClient:
    """Salesforce REST calls with one token, refreshed once on 401, and a bounded
    back-off on rate limits that honours ``Retry-After``.

    ``sleep`` is how the client waits (tests pass a recorder); ``max_retries``
    bounds the attempts of one request, ``max_wait`` one wait, in seconds.
    """

    def __init__(
        self,
        auth: SalesforceAuth,
        *,
        api_version: str = DEFAULT_API_VERSION,
        instance_url: str | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 5,
        max_wait: float = 60.0,
        timeout: float = 30.0,
    ) -> None:
        import httpx

        self.auth = auth
        self.api_version = api_version
        self._instance_url = instance_url.rstrip("/") if instance_url else None
        self._http = http or httpx.Client(timeout=timeout)
        self._own_http = http is None
        self._sleep = sleep
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._token: str | None = None
        self.requests = 0
        self.refreshes = 0

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # -- tokens -------------------------------------------------------------------
    def token(self, *, refresh: bool = False) -> str:
        """The access token, requested on first use (again when ``refresh``)."""
        if self._token is not None and not refresh:
            return self._token
        import httpx

        url = f"{self.auth.login_url}/services/oauth2/token"
        try:
            response = self._send(lambda: self._http.post(url, data=self.auth.grant()))
        except httpx.HTTPError as exc:
            raise ConnectorError(f"Salesforce token request failed: {exc}") from None
        if response.status_code != 200:
            raise ConfigError(
                f"Salesforce refused the token request ({response.status_code} "
                f"{_error_text(response)}): check the connected app, its consumer key and "
                "secret (or certificate), and that the user is pre-authorised"
            )
        body = response.json()
        self._token = str(body["access_token"])
        if body.get("instance_url"):
            self._instance_url = str(body["instance_url"]).rstrip("/")
        if refresh:
            self.refreshes += 1
        return self._token

    @property
    def instance_url(self) -> str:
        if self._instance_url is None:
            self.token()
        assert self._instance_url is not None
        return self._instance_url

    # -- requests -----------------------------------------------------------------
    def _send(self, call: Callable[[], httpx.Response]) -> httpx.Response:
        """``call()`` again after a rate limit (429, REQUEST_LIMIT_EXCEEDED, 502-504),
        waiting ``Retry-After`` seconds (else 1, 2, 4 ... capped at ``max_wait``), at
        most ``max_retries`` times."""
        attempt = 0
        while True:
            response = call()
            self.requests += 1
            limited = response.status_code in _RETRY_STATUS or (
                response.status_code == 403 and _error_codes(response) & _RATE_LIMIT_CODES
            )
            if not limited:
                return response
            if attempt >= self.max_retries:
                raise ConnectorError(
                    f"Salesforce is still limiting requests after {attempt} retries "
                    f"({response.status_code} {_error_text(response)}); run again later "
                    "(the import resumes from its cursor)"
                )
            wait = min(2.0**attempt, self.max_wait)
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.strip().isdigit():
                wait = min(float(retry_after), self.max_wait)
            self._sleep(wait)
            attempt += 1

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authorised request to ``path`` (relative to the instance URL); a 401
        refreshes the token once and retries. Errors other than 404 raise
        ConnectorError."""
        import httpx

        url = path if path.startswith(("https://", "http://")) else f"{self.instance_url}{path}"

        extra = kwargs.pop("headers", None) or {}

        def call() -> httpx.Response:
            headers = {
                **extra,
                "Authorization": f"Bearer {self.token()}",
                "Accept": "application/json",
            }
            return self._http.request(method, url, headers=headers, **kwargs)

        try:
            response = self._send(call)
            if response.status_code == 401:
                self.token(refresh=True)
                response = self._send(call)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"Salesforce request failed: {exc}") from None
        if response.status_code == 401:
            raise ConfigError(
                "Salesforce rejected a freshly issued token (401): check the connected "
                "app's OAuth scopes (api) and the integration user's permissions"
            )
        if response.status_code >= 400:
            raise ConnectorError(
                f"Salesforce {method} {path.split('?')[0]} failed with "
                f"{response.status_code}: {_error_text(response)}"
            )
        return response

    def query(
        self, soql: str, *, batch_size: int | None = None
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """The pages of a SOQL query as ``(totalSize, records)``, following
        ``nextRecordsUrl`` (``batch_size``: records per page, 200-2000)."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        response = self.request(
            "GET",
            f"/services/data/{self.api_version}/query",
            params={"q": soql},
            headers=headers,
        )
        while True:
            body = response.json()
            yield int(body.get("totalSize", 0)), list(body.get("records", []))
            next_url = body.get("nextRecordsUrl")
            if body.get("done", True) or not next_url:
                return
            response = self.request("GET", str(next_url), headers=headers)

    def create(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record (``POST /sobjects/<type>/``); its id."""
        response = self.request(
            "POST", f"/services/data/{self.api_version}/sobjects/{sobject}/", json=fields
        )
        body = response.json()
        if not body.get("success", False) or not body.get("id"):
            raise ConnectorError(f"Salesforce did not create the {sobject}: {body}")
        return str(body["id"])

    @classmethod
    def from_mapping(cls, mapping: SalesforceMapping, **kwargs: Any) -> SalesforceClient:
        """A client for the org a mapping file names (its ``[salesforce]`` table)."""
        return cls(
            SalesforceAuth.from_table(mapping.settings),
            api_version=mapping.api_version,
            instance_url=mapping.instance_url,
            **kwargs,
        )


# -- the mapping file ----------------------------------------------------------------------
@dataclass(frozen=True)
class SalesforceMapping:
    """A Salesforce mapping file (TOML)::

        [salesforce]
        login_url = "https://acme.my.salesforce.com"   # the token endpoint's host
        flow = "client_credentials"                    # or "jwt"
        client_id = "3MVG9..."                         # the connected app's consumer key
        client_secret_env = "SALESFORCE_CLIENT_SECRET" # the variable holding the secret
        # jwt: username = "integration@acme.com", private_key_file = "salesforce.key"

        [contact]
        identifiers = { Email = "email", Phone = "phone", MobilePhone = "phone", Id = "crm_id" }
        traits = { Title = "job_title", "Account.Name" = "company" }
        display_name = ["FirstName", "LastName"]

        [account]
        identifiers = { PersonEmail = "email" }        # person accounts
        traits = { Type = "account_type" }             # also set on the account's contacts

        [case]
        identifiers = { SuppliedEmail = "email" }      # when the case has no known contact

        [write_back]
        as = "task"                                    # or "case_comment"

    Only the objects with a table are pulled, in the order Contact, Account, Case.
    """

    settings: dict[str, Any]
    objects: dict[str, FieldMapping]
    source: str = "crm"
    api_version: str = DEFAULT_API_VERSION
    instance_url: str | None = None
    batch_size: int = 2000
    write_back_as: Literal["task", "case_comment"] = "task"

    @classmethod
    def load(cls, path: str | Path) -> SalesforceMapping:
        return cls.from_dict(load_toml(path))

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> SalesforceMapping:
        settings = doc.get("salesforce", {})
        if not isinstance(settings, dict):
            raise ConfigError("[salesforce] must be a table")
        objects: dict[str, FieldMapping] = {}
        for name in OBJECTS:
            table = doc.get(name.lower())
            if table is None:
                continue
            if not isinstance(table, dict):
                raise ConfigError(f"[{name.lower()}] must be a table")
            mapping = FieldMapping.from_table(table, name.lower())
            for field_name in mapping.fields:
                if not _FIELD.fullmatch(field_name):
                    raise ConfigError(f"{name.lower()}: {field_name!r} is not a field name")
            if name != "Case" and not mapping.identifiers and not mapping.traits:
                raise ConfigError(f"[{name.lower()}] maps no field to an identifier or trait")
            objects[name] = mapping
        if not objects:
            raise ConfigError("the mapping names no object: add [contact], [account] or [case]")
        contact = objects.get("Contact")
        if (
            contact is not None
            and not any(n == "Id" for n, _ in contact.identifiers)
            and ("Account" in objects or "Case" in objects)
        ):
            raise ConfigError(
                '[contact] must map Id to an identifier (e.g. Id = "crm_id") so accounts '
                "and cases find their contacts' profiles"
            )
        source = settings.get("source", "crm")
        if not isinstance(source, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", source):
            raise ConfigError(f"salesforce.source must be a plain name, not {source!r}")
        version = str(settings.get("api_version", DEFAULT_API_VERSION))
        if not re.fullmatch(r"v\d+\.\d", version):
            raise ConfigError(f"salesforce.api_version must look like v61.0, not {version!r}")
        instance = settings.get("instance_url")
        if instance is not None:
            _check_url(str(instance), "salesforce.instance_url")
        batch = settings.get("batch_size", 2000)
        if not isinstance(batch, int) or not 200 <= batch <= 2000:
            raise ConfigError("salesforce.batch_size must be between 200 and 2000")
        wb = doc.get("write_back", {})
        how = wb.get("as", "task") if isinstance(wb, dict) else None
        if how not in ("task", "case_comment"):
            raise ConfigError("write_back.as must be 'task' or 'case_comment'")
        return cls(
            settings=dict(settings),
            objects=objects,
            source=source,
            api_version=version,
            instance_url=str(instance).rstrip("/") if instance else None,
            batch_size=batch,
            write_back_as=how,
        )

    @property
    def contact_kind(self) -> str | None:
        """The identifier kind a Contact's Id is stored as (None if not mapped)."""
        contact = self.objects.get("Contact")
        if contact is None:
            return None
        return next((kind for name, kind in contact.identifiers if name == "Id"), None)

    def soql(self, sobject: str, cursor: tuple[str, str] | None) -> str:
        """The incremental query of ``sobject`` past ``cursor`` (SystemModstamp, Id)."""
        mapping = self.objects[sobject]
        fields = ["Id", "SystemModstamp", *mapping.fields]
        if sobject == "Case":
            fields += CASE_FIELDS
        if sobject == "Account" and self.contact_kind is not None:
            fields.append("(SELECT Id FROM Contacts)")
        soql = f"SELECT {', '.join(dict.fromkeys(fields))} FROM {sobject}"
        if cursor is not None:
            stamp, last_id = cursor
            if not _STAMP.fullmatch(stamp) or not _ID.fullmatch(last_id):
                raise ConfigError(
                    f"the stored {sobject} cursor {cursor!r} is not valid: run with --restart"
                )
            soql += (
                f" WHERE SystemModstamp > {stamp}"
                f" OR (SystemModstamp = {stamp} AND Id > '{last_id}')"
            )
        return soql + " ORDER BY SystemModstamp, Id"


# -- pull ----------------------------------------------------------------------------------
def pull(
    memory: Memory,
    mapping: SalesforceMapping,
    *,
    client: SalesforceClient | None = None,
    dry_run: bool = False,
    restart: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Import the mapped objects changed since the last run (all of them on the first
    run, or with ``restart``) into ``memory``'s tenant.

    If Salesforce fails mid-run (an error, or rate limits past the retries), the
    report says ``interrupted`` with the error among its failures; what was
    imported stays, and the next run resumes from the stored cursor.
    """
    own = client is None
    sf = client or SalesforceClient.from_mapping(mapping)
    try:
        with ConnectorRun(memory, CONNECTOR, dry_run=dry_run, progress=progress) as run:
            importer = _Importer(run, sf, mapping)
            for sobject in OBJECTS:
                if sobject not in mapping.objects:
                    continue
                try:
                    importer.pull(sobject, restart)
                except ConnectorError as exc:
                    run.report.add(ItemOutcome.FAILED, f"salesforce:{sobject}", str(exc))
                    run.report.interrupted = True
                    break
        return run.report
    finally:
        if own:
            sf.close()


class _Importer:
    """One pull: each object's pages, and each record written in one run item."""

    def __init__(self, run: ConnectorRun, sf: SalesforceClient, mapping: SalesforceMapping):
        self.run = run
        self.sf = sf
        self.mapping = mapping
        self.done = 0
        self.pending: set[str] = set()  # contacts a dry run would create (for their cases)

    def cursor(self, sobject: str) -> tuple[str, str] | None:
        raw = self.run.state.cursor(sobject)
        if raw is None:
            return None
        try:
            stamp, last_id = json.loads(raw)
            return str(stamp), str(last_id)
        except (ValueError, TypeError):
            raise ConfigError(
                f"the stored {sobject} cursor is not valid: run with --restart"
            ) from None

    def pull(self, sobject: str, restart: bool) -> None:
        run, mapping = self.run, self.mapping
        handle = {"Contact": self.contact, "Account": self.account, "Case": self.case}[sobject]
        cursor = None if restart else self.cursor(sobject)
        total: int | None = None
        last: tuple[str, str] | None = None
        pages = self.sf.query(mapping.soql(sobject, cursor), batch_size=mapping.batch_size)
        for size, records in pages:
            total = self.done + size if total is None else total
            for rec in records:
                rid = str(rec.get("Id", ""))
                with run.item(f"salesforce:{sobject}:{rid}") as item:
                    handle(item, rec, rid)
                if rec.get("SystemModstamp") and rid:
                    last = (str(rec["SystemModstamp"]), rid)
                self.done += 1
                run.tick(self.done, total)
            if last is not None:  # the page is done: a later failure resumes after it
                run.report.cursor = json.dumps(last)
                run.state.set_cursor(run.report.cursor, sobject)

    def contact_profile(self, contact_id: object) -> str | None:
        """The profile imported for a Contact id: None if that contact was not
        imported, "" if this dry run would have imported it."""
        kind = self.mapping.contact_kind
        if kind is None or not isinstance(contact_id, str) or not contact_id:
            return None
        if contact_id in self.pending:
            return ""
        value = f"{kind[7:]}={contact_id}" if kind.startswith("custom:") else contact_id
        kind = "custom" if kind.startswith("custom:") else kind
        profiles = self.run.memory.profiles
        profile = profiles.find(profiles.identifier(kind, value))
        return profile.id if profile is not None else None

    def contact(self, item: Item, rec: dict[str, Any], rid: str) -> None:
        mapped = self.mapping.objects["Contact"].map(rec, f"Contact {rid}")
        if apply_mapped(self.run, item, mapped, source=self.mapping.source) is None:
            self.pending.add(rid)  # a dry run: the profile would be created

    def account(self, item: Item, rec: dict[str, Any], rid: str) -> None:
        """A person account is a profile of its own; a business account's traits go
        on the profiles of its imported contacts."""
        source = self.mapping.source
        mapped = self.mapping.objects["Account"].map(rec, f"Account {rid}")
        if mapped.identifiers:
            apply_mapped(self.run, item, mapped, source=source)
            return
        related = field_value(rec, "Contacts")
        contacts = related.get("records", []) if isinstance(related, dict) else []
        profiles = [self.contact_profile(c.get("Id")) for c in contacts]
        known = [p for p in profiles if p is not None]
        if not known:
            item.skip("no contact of this account is imported")
            return
        for profile_id in dict.fromkeys(known):
            for key, value in mapped.traits.items():
                self.run.set_trait(item, profile_id or None, key, value, source=source)

    def case(self, item: Item, rec: dict[str, Any], rid: str) -> None:
        """A case becomes an observation of its contact: open, a complaint; closed,
        an event that supersedes it (one slot per case, ``salesforce_case_<id>``)."""
        source = self.mapping.source
        profile_id = self.contact_profile(rec.get("ContactId"))
        if profile_id is None:
            mapped = self.mapping.objects["Case"].map(rec, f"Case {rid}")
            if not mapped.identifiers:
                item.skip("the case's contact is not imported and it names no other identifier")
                return
            profile_id = apply_mapped(self.run, item, mapped, source=source)
        closed = bool(rec.get("IsClosed"))
        self.run.add_observation(
            item,
            profile_id or None,
            case_text(rec),
            ObservationKind.EVENT if closed else ObservationKind.COMPLAINT,
            source=source,
            trait_key=f"salesforce_case_{rid.lower()}",
            value=str(rec.get("Status") or ("Closed" if closed else "Open")),
        )


def case_text(rec: Mapping[str, Any]) -> str:
    """The observation a Case becomes: number, subject, status, (closing date) and
    the start of its description."""
    number = rec.get("CaseNumber") or rec.get("Id")
    status = rec.get("Status") or "unknown status"
    text = f"Salesforce case {number}: {rec.get('Subject') or '(no subject)'} ({status}"
    closed = rec.get("ClosedDate")
    if rec.get("IsClosed") and isinstance(closed, str):
        text += f", closed {closed[:10]}"
    text += ")."
    description = " ".join(str(rec.get("Description") or "").split())
    if description:
        if len(description) > _DESCRIPTION_CHARS:
            description = description[: _DESCRIPTION_CHARS - 1].rstrip() + "…"
        text += f" {description}"
    return text


# -- write-back ------------------------------------------------------------------------------
def write_back(
    memory: Memory,
    mapping: SalesforceMapping,
    conversation_id: str,
    *,
    client: SalesforceClient | None = None,
    case_id: str | None = None,
    dry_run: bool = False,
) -> RunReport:
    """Write a conversation's summary to Salesforce: a completed Task on the
    customer's Contact (``write_back.as = "task"``), or a private CaseComment on
    ``case_id`` (``"case_comment"``). Once per conversation: the created record's
    id is kept in the store, so a second call changes nothing. Audited
    (``salesforce_write_back``). The summary is sent as stored (redacted by the
    tenant's policy)."""
    if case_id is not None and not _ID.fullmatch(case_id):
        raise ValidationError(f"{case_id[:40]!r} is not a Salesforce record id")
    if mapping.write_back_as == "case_comment" and case_id is None:
        raise ValidationError("write_back.as is 'case_comment': give the case id")
    own = client is None
    sf = client or SalesforceClient.from_mapping(mapping)
    try:
        with (
            ConnectorRun(memory, CONNECTOR, dry_run=dry_run) as run,
            run.item(f"conversation:{conversation_id}") as item,
        ):
            _write_back(run, item, sf, mapping, conversation_id, case_id)
        return run.report
    finally:
        if own:
            sf.close()


def _write_back(
    run: ConnectorRun,
    item: Item,
    sf: SalesforceClient,
    mapping: SalesforceMapping,
    conversation_id: str,
    case_id: str | None,
) -> None:
    memory = run.memory
    conversation = memory.conversations.get(conversation_id)
    summary = memory.summaries.get(conversation_id)
    written = run.state.value("written", conversation_id)
    if written is not None:
        item.skip(f"already written as {written}")
        return
    subject = f"Conversation summary ({conversation.channel.value})"
    if mapping.write_back_as == "case_comment":
        sobject = "CaseComment"
        fields: dict[str, Any] = {
            "ParentId": case_id,
            "CommentBody": f"{subject}: {summary.text}",
            "IsPublished": False,
        }
    else:
        kind = mapping.contact_kind
        contact = next(
            (
                i.value
                for i in memory.profiles.identifiers(conversation.profile_id)
                if kind is not None and i.kind.value == kind and i.value.startswith("003")
            ),
            None,
        )
        if contact is None:
            raise ValidationError(
                "the customer has no Salesforce Contact id: import contacts first "
                "(with Id mapped to an identifier), or write a case comment"
            )
        sobject = "Task"
        fields = {
            "WhoId": contact,
            "Subject": subject,
            "Description": summary.text,
            "Status": "Completed",
            "ActivityDate": summary.ts.date().isoformat(),
        }
    target = case_id if sobject == "CaseComment" else fields["WhoId"]
    if run.dry_run:
        item.change(ItemOutcome.CREATED, f"{sobject} on {target}: {subject}")
        return
    created = sf.create(sobject, fields)
    run.state.set_value("written", conversation_id, f"{sobject} {created}")
    record(
        run.state._ctx,
        run.state._tenant,
        "salesforce_write_back",
        f"conversation:{conversation_id}",
        details={"sobject": sobject, "id": created},
    )
    item.change(ItemOutcome.CREATED, f"{sobject} {created} on {target}")
