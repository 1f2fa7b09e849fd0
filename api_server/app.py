"""The HTTP server: the REST API at ``/v1``, the console at ``/console`` and the
MCP streamable-HTTP endpoint at ``/mcp``, one FastAPI application on one port.

One set of credentials serves all three (:mod:`convmem_api.auth`): a governance
API key (its tenant and role) or a static token of the MCP tokens table (admin
of its tenant). The engine is opened once, in the app's lifespan, and shared:
the MCP server is built there on the same :class:`~memory_core.memory.Memory`
(``create_server(memory=...)``) and its session manager runs inside the app's
lifespan; it is mounted as the app's last route, so ``/mcp`` is exactly the
endpoint ``convmem serve --http`` always had. The console (``convmem_api.console``,
when present) is mounted at ``/console`` the same way.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convmem_mcp.auth import TokenTable
from memory_core.config import Settings, load_settings
from memory_core.governance import RetentionScheduler
from memory_core.memory import Memory

from . import problems
from .deps import ServerState
from .jobs import Jobs
from .problems import BodyTooLarge, Problem, problem_response, problem_responses
from .routes import customers, governance, jobs, knowledge

__all__ = ["API_PREFIX", "DEFAULT_MAX_BODY_BYTES", "create_app", "openapi_document", "route_roles"]

API_PREFIX = "/v1"
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024
"""The largest request body accepted by default (20 MiB); larger ones get 413."""

_log = logging.getLogger(__name__)
_ERRORS = (401, 403, 404, 409, 413, 422)

DESCRIPTION = """\
Conversation Memory over HTTP: customer profiles, conversations, observations,
traits, summaries, recall, enterprise knowledge and governance.

Every request needs `Authorization: Bearer <token>`: an API key of the store
(`cmk.<tenant>...`, role read, write or admin) or a static token of the server
(admin of its tenant). The tenant is the credential's, never a parameter.
Errors are RFC 9457 `application/problem+json`. Long operations answer
`202 Accepted` with `Location: /v1/jobs/{id}`. See docs/rest.md.
"""


class _Late:
    """An ASGI app set once the lifespan has opened the engine (404 before)."""

    def __init__(self, name: str, only: str | None = None) -> None:
        self.name = name
        self.only = only  # the one path forwarded (the rest: 404), or None: every path
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if self.app is None or (self.only is not None and path != self.only):
            if scope["type"] != "http":
                return
            detail = f"nothing is served at {path}" if self.app else f"no {self.name} here"
            await problem_response(404, detail, instance=path)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413: at once when
    Content-Length says so, else as soon as the streamed body passes it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = (
            f"the request body is over this server's limit of {self.limit:,} bytes: "
            "send less (for documents: split them), or ask the operator to raise it"
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await problem_response(413, detail, slug="body-too-large")(scope, receive, send)
                return
        seen = 0
        over = started = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge(detail)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if over:  # the app answered the aborted read (FastAPI: 400): answer 413 instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await problem_response(413, detail, slug="body-too-large")(scope, receive, send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await problem_response(413, detail, slug="body-too-large")(scope, receive, send)


ROUTERS = (customers.router, knowledge.router, jobs.router, governance.router)
"""The REST API's routers, included under :data:`API_PREFIX`."""


def route_roles() -> dict[tuple[str, str], str]:
    """``{(method, path): role}`` of every REST route (the role its dependency requires)."""
    roles: dict[tuple[str, str], str] = {}
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            role = _required_role(route)
            for method in sorted(route.methods or ()):
                roles[(method, API_PREFIX + route.path)] = role
    return roles


def _required_role(route: APIRoute) -> str:
    for dep in route.dependant.dependencies:
        role = getattr(dep.call, "required_role", None)
        if role is not None:
            return str(role.value if hasattr(role, "value") else role)
    raise AssertionError(f"route {route.path} has no role dependency")  # every route has one


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``: FastAPI's, with the Problem schema and
    each operation's ``x-required-role``."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    roles = route_roles()
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            role = roles.get((method.upper(), path))
            if role is not None:
                operation["x-required-role"] = role
                operation["description"] = (
                    operation.get("description", "") + f"\n\nNeeds role `{role}`."
                ).strip()
    return doc


def create_app(
    settings: Settings | None = None,
    *,
    memory: Memory | None = None,
    tokens: TokenTable | None = None,
    host: str = "127.0.0.1",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cors_origins: Sequence[str] = (),
    mcp: bool = True,
    job_workers: int = 2,
) -> FastAPI:
    """The Conversation Memory HTTP application.

    ``settings`` say which store the lifespan opens (default :func:`load_settings`);
    pass ``memory`` to serve an open engine instead (the caller keeps it and closes
    it). ``tokens``: static bearer tokens, each admin of its tenant (those tenants
    are created at start-up); API keys of the store are always accepted. ``host``
    is where the server listens (the MCP endpoint checks Host/Origin against DNS
    rebinding on loopback). Request bodies over ``max_body_bytes`` get 413.
    ``cors_origins`` lists the browser origins allowed to call the API (default
    none: CORS off). ``mcp=False`` leaves out ``/mcp`` (it also needs the ``mcp``
    extra).
    """
    settings = settings or (memory.settings if memory is not None else load_settings())
    table = tokens if tokens is not None else TokenTable({})
    late_mcp = _Late("MCP endpoint", only="/mcp")
    late_console = _Late("console")
    late_hooks = _Late("webhook")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = memory is None
        engine: Memory = (
            memory
            if memory is not None
            else await anyio.to_thread.run_sync(partial(Memory.open, settings=settings))
        )
        workers = Jobs(job_workers)
        try:
            for name in table.tenants:
                await anyio.to_thread.run_sync(engine.tenants.add, name)
            app.state.convmem = ServerState(memory=engine, tokens=table, jobs=workers)
            async with AsyncExitStack() as stack:
                if mcp and _has_mcp():  # its lifespan also runs the retention scheduler
                    late_mcp.app = await _start_mcp(stack, settings, engine, table, host)
                elif settings.gc_interval:
                    retention = RetentionScheduler(engine.tenants, settings.gc_interval)
                    retention.start()  # every tenant's retention, every gc_interval seconds
                    stack.push_async_callback(_in_thread, retention.stop)
                late_console.app = await _start_console(stack, engine, table)
                late_hooks.app = _webhooks(engine, settings)
                yield
        finally:
            late_mcp.app = late_console.app = late_hooks.app = None
            await anyio.to_thread.run_sync(workers.close)
            if owned:
                await anyio.to_thread.run_sync(engine.close)

    app = FastAPI(
        title="Conversation Memory",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # FastAPI's docs pages load their scripts from a CDN
        redoc_url=None,
    )
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, responses=problem_responses(*_ERRORS))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/console", include_in_schema=False)
    def console_root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    app.router.routes.append(Mount("/console", app=late_console))
    app.router.routes.append(Mount(f"{API_PREFIX}/webhooks", app=late_hooks))
    app.router.routes.append(Mount("", app=late_mcp))  # /mcp; any other path: 404
    app.openapi = partial(_cached_openapi, app)  # type: ignore[method-assign]
    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location"],
        )
    return app


async def _in_thread(fn: Callable[[], object]) -> None:
    await anyio.to_thread.run_sync(fn)


def _cached_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        app.openapi_schema = openapi_document(app)
    return app.openapi_schema


def _has_mcp() -> bool:
    try:
        import mcp  # noqa: F401
    except ImportError:
        _log.warning("the mcp extra is not installed: /mcp is not served")
        return False
    return True


async def _start_mcp(
    stack: AsyncExitStack, settings: Settings, engine: Memory, tokens: TokenTable, host: str
) -> ASGIApp:
    """The MCP server over ``engine``, its streamable-HTTP app running (session
    manager and server lifespan entered on ``stack``)."""
    from convmem_mcp.server import create_server, http_app

    server = create_server(settings, memory=engine, tokens=tokens)
    starlette_app = http_app(server, host=host)
    await stack.enter_async_context(starlette_app.router.lifespan_context(starlette_app))
    served: ASGIApp = starlette_app
    return served


class _Webhooks:
    """Each configured tenant's webhook receivers, by exact path
    (``/segment/<tenant>``, ``/twilio/<tenant>``; a trailing slash is ignored)."""

    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")  # the mount's prefix: the path stays whole
        here = path[len(root) :] if root and path.startswith(root + "/") else path
        found = self.apps.get(here.rstrip("/"))
        if found is None:
            await problem_response(404, f"no webhook is configured at {path}", instance=path)(
                scope, receive, send
            )
            return
        await found(scope, receive, send)


def _webhooks(engine: Memory, settings: Settings) -> ASGIApp | None:
    """The receivers of ``settings.webhooks`` (None when there are none). The
    connectors are imported only when a tenant has webhook credentials."""
    apps: dict[str, ASGIApp] = {}
    for tenant, secrets in settings.webhooks.items():
        handle = engine.tenants.add(tenant)  # a webhook may be the tenant's first write
        if secrets.segment_secret is not None:
            from memory_core.connectors.segment import segment_webhook_app

            secret = secrets.segment_secret.get_secret_value()
            apps[f"/segment/{tenant}"] = segment_webhook_app(handle, secret)
        if secrets.twilio_auth_token is not None:
            from memory_core.connectors.twilio import twilio_webhook_app

            token = secrets.twilio_auth_token.get_secret_value()
            apps[f"/twilio/{tenant}"] = twilio_webhook_app(
                handle, token, public_url=secrets.twilio_public_url
            )
    return _Webhooks(apps) if apps else None


async def _start_console(
    stack: AsyncExitStack, engine: Memory, tokens: TokenTable
) -> ASGIApp | None:
    """The console of ``convmem_api.console`` when it provides ``create_console``."""
    try:
        from . import console
    except ImportError:
        return None
    factory = getattr(console, "create_console", None)
    if factory is None:
        return None
    kwargs = {"tokens": tokens} if "tokens" in inspect.signature(factory).parameters else {}
    made: ASGIApp = factory(engine, **kwargs)
    router = getattr(made, "router", None)
    lifespan_context = getattr(router, "lifespan_context", None)
    if lifespan_context is not None:
        await stack.enter_async_context(lifespan_context(made))
    return made


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("conversation-memory")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
