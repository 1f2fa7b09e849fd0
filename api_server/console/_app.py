"""The console's routes (Starlette), sign-in and CSRF checks."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import jinja2
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from convmem_api.auth import Caller, Unauthenticated, authenticate
from convmem_api.console import _views as views
from convmem_mcp.auth import TokenTable
from memory_core import tools
from memory_core.errors import (
    AccessDenied,
    ConflictError,
    MemoryCoreError,
    NotFoundError,
    PolicyDenied,
    ValidationError,
)
from memory_core.governance import acting_as
from memory_core.memory import Memory
from memory_core.models import AccessRole, ObservationStatus

__all__ = ["COOKIE", "ROLES", "build"]

COOKIE = "convmem_console"
"""The sign-in cookie: the credential itself (HttpOnly, SameSite=Strict), so a
revoked or expired key stops working at the next request."""

ROLES: dict[str, AccessRole] = {
    "view": AccessRole.READ,  # look up, profile card, transcripts, recall, knowledge search
    "correct_observation": AccessRole.WRITE,  # also retract (as the correct_observation tool)
    "set_trait": AccessRole.WRITE,  # as update_profile
    "merge_profiles": AccessRole.WRITE,  # as in the REST API (POST /v1/profiles/merge)
    "split_profile": AccessRole.WRITE,  # undoes a merge
}
"""The role each console action needs (the buttons shown follow it), the same as
the REST API's for the same operation."""

_HERE = Path(__file__).parent
_MAX_FORM_BYTES = 64 * 1024
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make form posts send Origin: null
    "Cache-Control": "no-store",
}
_STATUS: tuple[tuple[type[MemoryCoreError], int], ...] = (
    (NotFoundError, 404),
    (ValidationError, 422),
    (ConflictError, 409),
    (AccessDenied, 403),
    (PolicyDenied, 403),
)

T = TypeVar("T")


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["score"] = lambda v: f"{float(v):.3f}"
    return env


class Console:
    """The console's state: the store, the credentials it accepts, templates, and
    the secret its CSRF tokens are keyed with (new at every start)."""

    def __init__(self, memory: Memory, tokens: TokenTable | None, poll_interval: float) -> None:
        self.memory = memory
        self.tokens = tokens
        self.poll_interval = poll_interval
        self.env = _environment()
        self._secret = secrets.token_bytes(32)

    # -- credentials -------------------------------------------------------------

    def csrf(self, credential: str) -> str:
        """The CSRF token of a signed-in credential (HMAC of its digest)."""
        digest = hashlib.sha256(credential.encode("utf-8", "surrogatepass")).digest()
        return hmac.new(self._secret, digest, hashlib.sha256).hexdigest()

    async def caller(self, request: Request) -> tuple[Caller, str] | None:
        """The signed-in caller and its credential, or None."""
        credential = request.cookies.get(COOKIE)
        if not credential:
            return None
        try:
            found = await anyio.to_thread.run_sync(
                authenticate, self.memory, self.tokens, credential
            )
        except Unauthenticated:
            return None
        return found, credential

    # -- rendering ---------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        caller: Caller | None = None,
        credential: str = "",
        **context: Any,
    ) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        html = self.env.get_template(template).render(
            base=base,
            caller=caller,
            csrf=self.csrf(credential) if credential else "",
            can={action: caller.allows(role) for action, role in ROLES.items()}
            if caller is not None
            else {},
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    def error(
        self, request: Request, exc: MemoryCoreError, caller: Caller | None, credential: str
    ) -> HTMLResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        return self.page(
            request, "error.html", status, caller=caller, credential=credential, message=str(exc)
        )


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_base(request) + path, status_code=303, headers=_SECURITY_HEADERS)


def _same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this server (when the browser says)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def _form(request: Request) -> FormData:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > _MAX_FORM_BYTES):
        raise ValidationError(f"the form is larger than {_MAX_FORM_BYTES} bytes")
    return await request.form(max_files=0, max_fields=50, max_part_size=_MAX_FORM_BYTES)


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


Handler = Callable[[Request, Caller, str, Memory], Awaitable[Response]]


def build(memory: Memory, *, tokens: TokenTable | None, poll_interval: float) -> Starlette:
    """The console application (see :func:`convmem_api.console.create_console`)."""
    console = Console(memory, tokens, poll_interval)

    def signed_in(
        need: str, *, post: bool = False
    ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        """Wrap a handler: require a signed-in caller with the role of action ``need``
        (and, for a POST, a same-origin request carrying the CSRF token); the handler
        gets the caller's tenant handle. Engine errors become error pages."""

        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                found = await console.caller(request)
                if found is None:
                    if post:
                        return PlainTextResponse(
                            "sign in first", status_code=401, headers=_SECURITY_HEADERS
                        )
                    return _redirect(request, "/signin")
                caller, credential = found
                try:
                    if post:
                        form = await _form(request)
                        token = _field(form, "csrf")
                        if not _same_origin(request) or not hmac.compare_digest(
                            token.encode(), console.csrf(credential).encode()
                        ):
                            return PlainTextResponse(
                                "this form has expired or comes from another site: reload "
                                "the page and try again",
                                status_code=403,
                                headers=_SECURITY_HEADERS,
                            )
                        request.state.form = form
                    if not caller.allows(ROLES[need]):
                        raise AccessDenied(
                            f"this key has role {caller.role.value!r}; "
                            f"this needs {ROLES[need].value!r}"
                        )
                    handle = console.memory.tenant(caller.tenant)
                    return await handler(request, caller, credential, handle)
                except MemoryCoreError as exc:
                    return console.error(request, exc, caller, credential)

            return endpoint

        return wrap

    async def run(caller: Caller, fn: Callable[[], T]) -> T:
        """Run blocking engine work in a worker thread, audited as the caller."""

        def audited() -> T:
            with acting_as(caller.actor):
                return fn()

        return await anyio.to_thread.run_sync(audited)

    # -- sign-in ---------------------------------------------------------------------

    async def signin(request: Request) -> Response:
        if request.method == "GET":
            return console.page(request, "signin.html", error="")
        if not _same_origin(request):
            return PlainTextResponse("cross-site sign-in refused", 403, headers=_SECURITY_HEADERS)
        try:
            form = await _form(request)
        except ValidationError as exc:
            return console.page(request, "signin.html", 422, error=str(exc))
        key = _field(form, "key")
        try:
            await anyio.to_thread.run_sync(authenticate, console.memory, console.tokens, key)
        except Unauthenticated:
            return console.page(
                request,
                "signin.html",
                401,
                error="That key is not valid (unknown, revoked or expired).",
            )
        response = _redirect(request, "/")
        response.set_cookie(
            COOKIE,
            key,
            path=(_base(request) or "") + "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def signout(request: Request) -> Response:
        found = await console.caller(request)
        if found is not None:
            form = await _form(request)
            if not hmac.compare_digest(
                _field(form, "csrf").encode(), console.csrf(found[1]).encode()
            ):
                return PlainTextResponse("expired form", 403, headers=_SECURITY_HEADERS)
        response = _redirect(request, "/signin")
        response.delete_cookie(COOKIE, path=(_base(request) or "") + "/")
        return response

    # -- pages -----------------------------------------------------------------------

    @signed_in("view")
    async def home(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        identifier = request.query_params.get("identifier", "").strip()
        if identifier:
            profile = await run(caller, partial(m.profiles.find, identifier))
            if profile is not None:
                return _redirect(request, f"/profiles/{quote(profile.id)}")
        return console.page(
            request,
            "lookup.html",
            404 if identifier else 200,
            caller=caller,
            credential=credential,
            identifier=identifier,
            missing=bool(identifier),
            profiles=await run(caller, partial(m.profiles.list, limit=20)),
        )

    @signed_in("view")
    async def profile(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        ref = request.path_params["profile_id"]
        card = await run(caller, partial(views.profile_card, m, ref))
        if card.profile.id != ref:  # a merged-away id: show the survivor
            return _redirect(request, f"/profiles/{quote(card.profile.id)}")
        query = request.query_params.get("recall")
        recalled: tools.RecallOutput | None = None
        recall_error = ""
        if query is not None:
            knowledge = request.query_params.get("knowledge") == "1"
            try:
                recalled = await run(
                    caller, partial(views.recall, m, card.profile.id, query.strip(), knowledge)
                )
            except (ValidationError, NotFoundError) as exc:
                recall_error = str(exc)
        return console.page(
            request,
            "profile.html",
            caller=caller,
            credential=credential,
            card=card,
            recall_query=query or "",
            recalled=recalled,
            recall_error=recall_error,
        )

    @signed_in("view")
    async def conversation(
        request: Request, caller: Caller, credential: str, m: Memory
    ) -> Response:
        since = datetime.now(UTC)
        page = await run(
            caller, partial(views.conversation_page, m, request.path_params["conversation_id"])
        )
        return console.page(
            request,
            "conversation.html",
            caller=caller,
            credential=credential,
            page=page,
            since=since.isoformat(),
            open=page.conversation.status.value == "open",
        )

    @signed_in("view")
    async def events(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        cid = request.path_params["conversation_id"]
        try:
            after = int(request.query_params.get("after", "0"))
            since = datetime.fromisoformat(request.query_params.get("since", ""))
        except ValueError:
            raise ValidationError("after must be a count and since an ISO 8601 time") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        await run(caller, partial(m.conversations.get, cid))  # 404 before streaming
        fragments = console.env.get_template("_items.html").module
        message_html = fragments.message  # type: ignore[attr-defined]  # Jinja macros
        observation_html = fragments.live_observation  # type: ignore[attr-defined]
        seen: set[str] = set()

        async def stream() -> AsyncIterator[dict[str, str]]:
            nonlocal after
            while True:
                if await console.caller(request) is None:  # signed out or key revoked
                    yield {"event": "signedout", "data": ""}
                    return
                news = await run(caller, partial(views.live_news, m, cid, after, seen, since))
                after += len(news.messages)
                for message in news.messages:
                    yield {
                        "event": "msg",
                        "id": message.id,
                        "data": str(message_html(message)),
                    }
                for observation in news.observations:
                    yield {
                        "event": "obs",
                        "id": observation.id,
                        "data": str(observation_html(observation)),
                    }
                if news.ended:
                    yield {"event": "ended", "data": ""}
                    return
                await anyio.sleep(console.poll_interval)

        return EventSourceResponse(stream(), headers=_SECURITY_HEADERS, ping=15)

    @signed_in("view")
    async def knowledge(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        query = request.query_params.get("q", "").strip()
        found: tools.SearchKnowledgeOutput | None = None
        error = ""
        if query:
            try:
                found = await run(caller, partial(views.search_knowledge, m, query))
            except (NotFoundError, ValidationError) as exc:
                error = str(exc)
        return console.page(
            request,
            "knowledge.html",
            caller=caller,
            credential=credential,
            query=query,
            found=found,
            error=error,
        )

    # -- actions ---------------------------------------------------------------------

    def back(request: Request, profile_id: str, anchor: str = "") -> RedirectResponse:
        return _redirect(request, f"/profiles/{quote(profile_id)}{anchor}")

    async def fix(request: Request, caller: Caller, m: Memory, text: str | None) -> Response:
        """Retract an observation (``text`` None) or correct it, as the correct_observation
        tool does; an observation no longer current is left as it is."""
        form: FormData = request.state.form
        oid = request.path_params["observation_id"]
        reason = _field(form, "reason") or "console"
        old = await run(caller, partial(m.observations.get, oid))
        if old.status is not ObservationStatus.ACTIVE:
            return back(request, old.profile_id, "#history")
        if text is None:
            await run(caller, partial(m.observations.retract, oid, reason=reason))
        else:
            request_in = tools.CorrectObservationInput(observation_id=oid, text=text, reason=reason)
            await run(caller, partial(tools.correct_observation, m, request_in))
        return back(request, old.profile_id, "#observations")

    @signed_in("correct_observation", post=True)
    async def retract(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        return await fix(request, caller, m, None)

    @signed_in("correct_observation", post=True)
    async def correct(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        text = _field(request.state.form, "text")
        if not text:
            raise ValidationError("give the corrected statement (or retract the observation)")
        return await fix(request, caller, m, text)

    @signed_in("set_trait", post=True)
    async def set_trait(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        form: FormData = request.state.form
        pid = request.path_params["profile_id"]
        key, value = _field(form, "key"), _field(form, "value")
        if not key:
            raise ValidationError("name the trait to set (e.g. preferred_channel)")
        profile = await run(caller, partial(m.profiles.get, pid))
        await run(caller, partial(m.traits.set, profile.id, key, value, source="agent"))
        return back(request, profile.id, "#traits")

    @signed_in("merge_profiles", post=True)
    async def merge(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        form: FormData = request.state.form
        pid = request.path_params["profile_id"]
        other = _field(form, "other")
        if not other:
            raise ValidationError("name the other profile: its id or any identifier")
        reason = _field(form, "reason") or "merged in the console"
        survivor = await run(caller, partial(m.profiles.merge, pid, other, reason=reason))
        return back(request, survivor.id)

    @signed_in("split_profile", post=True)
    async def split(request: Request, caller: Caller, credential: str, m: Memory) -> Response:
        form: FormData = request.state.form
        merged = _field(form, "merged")
        if not merged:
            raise ValidationError("name the profile to split off (its prf_ id)")
        reason = _field(form, "reason") or "split in the console"
        restored = await run(caller, partial(m.profiles.unmerge, merged, reason=reason))
        return back(request, restored.id)

    routes = [
        Route("/", home, name="home"),
        Route("/signin", signin, methods=["GET", "POST"], name="signin"),
        Route("/signout", signout, methods=["POST"], name="signout"),
        Route("/knowledge", knowledge, name="knowledge"),
        Route("/profiles/{profile_id}", profile, name="profile"),
        Route("/profiles/{profile_id}/traits", set_trait, methods=["POST"]),
        Route("/profiles/{profile_id}/merge", merge, methods=["POST"]),
        Route("/profiles/{profile_id}/split", split, methods=["POST"]),
        Route("/observations/{observation_id}/retract", retract, methods=["POST"]),
        Route("/observations/{observation_id}/correct", correct, methods=["POST"]),
        Route("/conversations/{conversation_id}", conversation, name="conversation"),
        Route("/conversations/{conversation_id}/events", events, name="events"),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)
