"""Governance (admin only): the tenant's policy, its audit log (filtered, and
exported as JSON lines), a retention run, and its API keys."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from memory_core.governance.policy import Policy
from memory_core.models import ApiKey, AuditEvent, DeletionReceipt

from ..deps import Admin
from ..models import ApiKeyOut, IssuedKeyOut, IssueKey

__all__ = ["JSONL", "router"]

router = APIRouter(tags=["governance"])

JSONL = "application/jsonl"
KeyId = Annotated[str, Path(min_length=1, max_length=100)]
Since = Annotated[datetime | None, Query(description="Events at or after this time.")]
Until = Annotated[datetime | None, Query(description="Events before this time.")]
Action = Annotated[str | None, Query(max_length=100, description="e.g. delete_profile")]


@router.get("/policy", summary="The tenant's governance policy", response_model=Policy)
def get_policy(api: Admin) -> JSONResponse:
    return _policy(api.memory.governance.policy.get())


@router.put(
    "/policy",
    summary="Store the tenant's policy (applies to what is written next)",
    response_model=Policy,
)
def set_policy(api: Admin, body: Policy) -> JSONResponse:
    return _policy(api.run(api.memory.governance.policy.set, body))


@router.delete(
    "/policy",
    summary="Remove the stored policy: the settings' applies again",
    response_model=Policy,
)
def reset_policy(api: Admin) -> JSONResponse:
    return _policy(api.run(api.memory.governance.policy.set, None))


def _policy(policy: Policy) -> JSONResponse:
    """The policy as JSON, its periods as RFC 3339 durations (``P400DT1H``): pydantic
    writes ``P1Y35D`` for 400 days, which RFC 3339 (the schema's ``format: duration``)
    does not allow, and which reads back as 400 days here but not elsewhere."""
    body = jsonable_encoder(policy.model_dump(mode="python"), custom_encoder={timedelta: _iso})
    return JSONResponse(body)


def _iso(period: timedelta) -> str:
    """``period`` as an RFC 3339 duration: days, then hours, minutes and seconds."""
    minutes, seconds = divmod(period.seconds, 60)
    hours, minutes = divmod(minutes, 60)
    second = f"{seconds}.{period.microseconds:06d}".rstrip("0") if period.microseconds else ""
    parts = [(hours, "H"), (minutes, "M")]
    time = "".join(f"{n}{unit}" for n, unit in parts if n)
    time += f"{second or seconds}S" if (seconds or second) else ""
    date = f"{period.days}D" if period.days else ""
    return f"P{date}T{time}" if time else f"P{date}" if date else "PT0S"


@router.get("/audit", summary="The tenant's audit events, oldest first, filtered")
def list_audit(
    api: Admin,
    since: Since = None,
    until: Until = None,
    action: Action = None,
    target: Annotated[str | None, Query(max_length=300, description="e.g. profile:prf_...")] = None,
    actor: Annotated[str | None, Query(max_length=200, description="e.g. key:key_...")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditEvent]:
    return api.memory.governance.audit.list(
        since=since, until=until, action=action, target=target, actor=actor, limit=limit
    )


@router.get(
    "/audit/export",
    summary="The tenant's audit events as JSON lines (one event per line)",
    response_class=Response,
    responses={200: {"content": {JSONL: {"schema": {"type": "string"}}}}},
)
def export_audit(
    api: Admin, since: Since = None, until: Until = None, action: Action = None
) -> Response:
    fd, name = tempfile.mkstemp(prefix="convmem-audit-", suffix=".jsonl")
    os.close(fd)
    try:
        api.run(api.memory.governance.audit.export, name, since=since, until=until, action=action)
        data = FilePath(name).read_bytes()
    finally:
        os.unlink(name)
    return Response(
        content=data,
        media_type=JSONL,
        headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


@router.post("/retention/run", summary="Delete what the retention policy says has expired")
def run_retention(api: Admin) -> DeletionReceipt:
    return api.run(api.memory.governance.gc)


@router.get("/keys", summary="The tenant's API keys (never their secrets)")
def list_keys(api: Admin, include_revoked: bool = False) -> list[ApiKeyOut]:
    return [_key(k) for k in api.memory.governance.keys.list(include_revoked=include_revoked)]


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key (the token is shown once)",
)
def issue_key(api: Admin, body: IssueKey, response: Response) -> IssuedKeyOut:
    issued = api.run(
        api.memory.governance.keys.add, body.role, body.name, expires_at=body.expires_at
    )
    response.headers["Location"] = f"/v1/keys/{issued.key_id}"
    return IssuedKeyOut(
        key=_key(api.memory.governance.keys.get(issued.key_id)), token=issued.secret
    )


@router.get("/keys/{key_id}", summary="An API key's record")
def get_key(api: Admin, key_id: KeyId) -> ApiKeyOut:
    return _key(api.memory.governance.keys.get(key_id))


@router.delete("/keys/{key_id}", summary="Revoke an API key at once (idempotent)")
def revoke_key(api: Admin, key_id: KeyId) -> ApiKeyOut:
    return _key(api.run(api.memory.governance.keys.revoke, key_id))


def _key(record: ApiKey) -> ApiKeyOut:
    shown: ApiKeyOut = ApiKeyOut.model_validate(record.model_dump(exclude={"salt", "secret_hash"}))
    return shown
