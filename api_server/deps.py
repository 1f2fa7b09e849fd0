"""What every REST route depends on: the authenticated caller with the handle of
its tenant, checked against the role the route needs.

``Reader``, ``Writer`` and ``Admin`` are the route parameters; each resolves to
an :class:`Api` (the caller's tenant handle, the caller, the server's jobs)
or answers 401/403 before the route runs. The role a route needs is also
published in the OpenAPI document (``x-required-role``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from convmem_mcp.auth import TokenTable
from memory_core.governance import acting_as
from memory_core.memory import Memory
from memory_core.models import AccessRole

from .auth import Caller, authenticate
from .jobs import Jobs

__all__ = ["Admin", "Api", "Reader", "ServerState", "Writer", "requires"]

T = TypeVar("T")

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (`cmk.<tenant>....`, with its role) or a static token "
    "of the server's tokens table (admin of its tenant).",
)


@dataclass
class ServerState:
    """What the app's lifespan sets up (``app.state.convmem``)."""

    memory: Memory
    tokens: TokenTable
    jobs: Jobs


@dataclass(frozen=True)
class Api:
    """A request's way to the engine: its tenant's handle, who calls, the jobs."""

    memory: Memory
    caller: Caller
    jobs: Jobs

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with the caller as the audit actor."""
        with acting_as(self.caller.actor):
            return fn(*args, **kwargs)


def server_state(request: Request) -> ServerState:
    state = getattr(request.app.state, "convmem", None)
    assert isinstance(state, ServerState), "the app's lifespan has not run"
    return state


def requires(role: AccessRole) -> Callable[..., Api]:
    """The dependency of a route that needs ``role`` (read < write < admin)."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Api:
        # A sync dependency: FastAPI runs it in a worker thread (API keys are a store read).
        state = server_state(request)
        bearer = credentials.credentials if credentials is not None else None
        caller = authenticate(state.memory, state.tokens, bearer)
        caller.require(role)
        return Api(memory=state.memory.tenant(caller.tenant), caller=caller, jobs=state.jobs)

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the app and tests
    dependency.__name__ = f"requires_{role.value}"
    return dependency


Reader = Annotated[Api, Depends(requires(AccessRole.READ))]
Writer = Annotated[Api, Depends(requires(AccessRole.WRITE))]
Admin = Annotated[Api, Depends(requires(AccessRole.ADMIN))]
