"""Bearer authentication shared by the REST API and the console.

A request's credential is one of:

* a governance API key of the store (``cmk.<tenant>.<key id>.<secret>``,
  ``memory.governance.keys.add``): its tenant and its role (read, write, admin);
* a static token of the MCP tokens table (``--tokens-file`` /
  ``$CONVMEM_MCP_TOKENS``, :class:`convmem_mcp.auth.TokenTable`): admin of the
  tenant it is bound to.

The tenant of a request comes from its credential alone, never from the path
or the body. :func:`authenticate` is the one check; the REST API wraps it in a
FastAPI dependency (:mod:`convmem_api.deps`), the console calls it directly.
This module imports neither FastAPI nor the MCP SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from convmem_mcp.auth import TokenTable, digest
from memory_core.errors import AccessDenied, MemoryCoreError
from memory_core.governance import role_allows
from memory_core.memory import Memory
from memory_core.models import AccessRole

__all__ = ["Caller", "Unauthenticated", "authenticate", "bearer_token"]


class Unauthenticated(MemoryCoreError):
    """A request without a valid credential (answered 401 with ``WWW-Authenticate``):
    send ``Authorization: Bearer <API key or token>``."""


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: one tenant, one role, and how the audit log names it."""

    tenant: str
    role: AccessRole
    actor: str
    """The audit actor: ``key:<key id>`` for an API key, ``<tenant>/<fingerprint>``
    for a static token (the same names the MCP server uses)."""
    name: str = ""
    """The API key's name (empty for a static token)."""

    def allows(self, needed: AccessRole | str) -> bool:
        """Whether this caller's role may do what needs ``needed``."""
        return role_allows(self.role, needed)

    def require(self, needed: AccessRole | str) -> None:
        """Raise :class:`~memory_core.errors.AccessDenied` unless the role allows ``needed``."""
        if not self.allows(needed):
            raise AccessDenied(
                f"this credential has role {self.role.value!r}; this needs "
                f"{AccessRole(needed).value!r}"
            )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authenticate(memory: Memory, tokens: TokenTable | None, bearer: str | None) -> Caller:
    """The caller a bearer token stands for (the token itself, without ``Bearer``).

    ``memory`` is any handle of the store (API keys of every tenant are looked up
    through it); ``tokens`` the static tokens table (None: API keys only).
    Raises :class:`Unauthenticated` when the token is missing, unknown, revoked or
    expired. Blocking (a store read): call it from a worker thread in async code.
    """
    if not bearer:
        raise Unauthenticated(
            "this server requires a bearer token: send 'Authorization: Bearer <API key>'"
        )
    tenant = tokens.tenant_for(bearer) if tokens is not None else None
    if tenant is not None:
        return Caller(tenant=tenant, role=AccessRole.ADMIN, actor=f"{tenant}/{digest(bearer)[:16]}")
    if bearer.startswith("cmk."):
        try:
            found = memory.tenants.authorize(bearer)
        except AccessDenied as exc:
            raise Unauthenticated(str(exc)) from None
        return Caller(tenant=found.tenant, role=found.role, actor=found.actor, name=found.name)
    raise Unauthenticated("invalid or revoked credential")
