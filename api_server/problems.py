"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error a route raises on purpose is a typed engine error
(:class:`memory_core.errors.MemoryCoreError`); :func:`install` maps the tree to
HTTP statuses, and FastAPI's own request validation and routing errors to the
same shape:

============================================  ======
NotFoundError                                 404
ConflictError                                 409
ValidationError (InvalidIdentifierError)      422
PolicyDenied, AccessDenied                    403
Unauthenticated (no or an invalid token)      401 + ``WWW-Authenticate: Bearer``
BodyTooLarge (request over the size limit)    413
ConfigError, SourceError, ModelError ...      the table in :data:`STATUS`
============================================  ======

``type`` is ``https://convmem.dev/problems/<slug>`` (a stable identifier, not
a page to fetch); ``detail`` is the engine's message, which says what to do.
NotFound and Conflict problems carry the record ``kind``; validation problems
the list of ``errors`` (``loc``, ``msg``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from memory_core.errors import (
    AccessDenied,
    ConfigError,
    ConflictError,
    MemoryCoreError,
    ModelError,
    NotFoundError,
    PolicyDenied,
    SourceError,
    StorageError,
    ValidationError,
)

from .auth import Unauthenticated

__all__ = [
    "MEDIA_TYPE",
    "STATUS",
    "BodyTooLarge",
    "FieldError",
    "Problem",
    "install",
    "problem_response",
    "problem_responses",
]

MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://convmem.dev/problems/"
_log = logging.getLogger(__name__)


class BodyTooLarge(MemoryCoreError):
    """The request body is over the server's limit (413)."""


STATUS: tuple[tuple[type[MemoryCoreError], int, str], ...] = (
    # most specific first: PolicyDenied is a ValidationError
    (Unauthenticated, 401, "unauthenticated"),
    (PolicyDenied, 403, "policy-denied"),
    (AccessDenied, 403, "access-denied"),
    (NotFoundError, 404, "not-found"),
    (ConflictError, 409, "conflict"),
    (BodyTooLarge, 413, "body-too-large"),
    (ValidationError, 422, "validation"),
    (SourceError, 422, "source"),
    (ConfigError, 500, "config"),
    (ModelError, 502, "model"),
    (StorageError, 503, "storage"),
    (MemoryCoreError, 500, "error"),
)
"""Which status (and problem type slug) each engine error becomes, first match wins."""

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid request",
    500: "Internal error",
    502: "Model unavailable",
    503: "Storage unavailable",
}


class FieldError(BaseModel):
    """One invalid part of a request."""

    loc: list[str | int] = Field(description="Where: body/query/path, then the field path.")
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    instance: str | None = Field(default=None, description="The request path.")
    kind: str | None = Field(
        default=None, description="The kind of record not found or in conflict (profile, ...)."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Validation problems: each invalid field."
    )


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    instance: str | None = None,
    kind: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body = Problem(
        type=_TYPE_BASE + (slug or str(status)),
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        kind=kind,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _status(exc: MemoryCoreError) -> tuple[int, str]:
    for cls, status, slug in STATUS:
        if isinstance(exc, cls):
            return status, slug
    return 500, "error"  # pragma: no cover - MemoryCoreError is last in STATUS


def _bearer_challenge(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": 'Bearer realm="convmem"'} if status == 401 else None


async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MemoryCoreError)
    status, slug = _status(exc)
    if status >= 500:
        _log.warning("%s %s failed: %r", request.method, request.url.path, exc)
    return problem_response(
        status,
        str(exc),
        slug=slug,
        instance=request.url.path,
        kind=getattr(exc, "kind", None),
        headers=_bearer_challenge(status),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            loc=[p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
            msg=str(err.get("msg", "invalid")),
        )
        for err in exc.errors()
    ]
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e.loc)}: {e.msg}" if e.loc else e.msg for e in errors
    )
    return problem_response(
        422,
        f"invalid request: {detail}" if detail else "invalid request",
        slug="validation",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI: a body it could not read (not UTF-8, bad form)
        return problem_response(
            422,
            "the request body could not be parsed: send UTF-8 JSON (or multipart form data "
            "for uploads), as the operation's OpenAPI schema says",
            slug="validation",
            instance=request.url.path,
        )
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(exc.headers or {}) | (_bearer_challenge(exc.status_code) or {})
    return problem_response(
        exc.status_code, detail, instance=request.url.path, headers=headers or None
    )


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""
    app.add_exception_handler(MemoryCoreError, _engine_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses (problem+json bodies)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {
            "description": _TITLES.get(status, "Error"),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out
