"""Access control for network servers: API keys scoped to one tenant and one role.

A key is issued once (``memory.governance.keys.add(role, name, expires_at=...)``);
the caller sees its secret token then and never again. A key may carry an expiry
(``expires_at``), checked on every request like revocation. The store keeps a per-key random
salt and the SHA-256 digest of salt + secret (the secret is 256 random bits, so
a fast hash is enough: there is nothing to guess), compared in constant time.

Tokens read ``cmk.<tenant>.<key id>.<secret>``: the tenant part only says where
to look the key up; what a token may do comes from the stored key alone, so a
token edited to name another tenant finds no key there and is refused.

Roles are ordered: ``read`` (recall, search, profile lookup) < ``write`` (also
ingest and profile updates) < ``admin`` (also deletion, policies, export, keys).
:data:`TOOL_ROLES` maps the MCP tools to the role they need.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from memory_core.backends.base import Collection
from memory_core.errors import AccessDenied, NotFoundError, ValidationError
from memory_core.models import AccessRole, ApiKey, as_utc, utcnow
from memory_core.validation import shown

if TYPE_CHECKING:
    from memory_core.context import Context

__all__ = [
    "TOKEN_PREFIX",
    "TOOL_ROLES",
    "AccessDenied",
    "IssuedKey",
    "Principal",
    "authorize",
    "hash_secret",
    "new_key",
    "required_role",
    "role_allows",
]

TOKEN_PREFIX = "cmk"
_TOKEN = re.compile(
    r"^cmk\.([A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(key_[0-9a-f]{16})\.([A-Za-z0-9_-]{32,128})$"
)
_RANK = {AccessRole.READ: 0, AccessRole.WRITE: 1, AccessRole.ADMIN: 2}
_DUMMY_SALT = bytes(16)

TOOL_ROLES: dict[str, AccessRole] = {
    "recall": AccessRole.READ,
    "search_knowledge": AccessRole.READ,
    "get_profile": AccessRole.READ,
    "list_observations": AccessRole.READ,
    "remember": AccessRole.WRITE,
    "update_profile": AccessRole.WRITE,
    "correct_observation": AccessRole.WRITE,
    "forget": AccessRole.ADMIN,
    "list_knowledge_sources": AccessRole.ADMIN,
    "add_knowledge_source": AccessRole.ADMIN,
    "refresh_knowledge_source": AccessRole.ADMIN,
    "remove_knowledge_source": AccessRole.ADMIN,
}
"""The role each MCP tool needs."""


class IssuedKey(NamedTuple):
    """A new key: its id (for listings and revocation) and the secret token,
    which is shown this once."""

    key_id: str
    secret: str


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: one tenant, one role."""

    tenant: str
    role: AccessRole
    key_id: str
    name: str

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        return f"key:{self.key_id}"

    def allows(self, role: AccessRole | str) -> bool:
        return role_allows(self.role, role)

    def require(self, role: AccessRole | str, tenant: str | None = None) -> None:
        """Raise :class:`AccessDenied` unless this principal may act with ``role``
        on ``tenant`` (default: its own)."""
        if tenant is not None and tenant != self.tenant:
            raise AccessDenied(f"this API key is not valid for tenant {tenant!r}")
        if not self.allows(role):
            raise AccessDenied(
                f"this API key has role {self.role.value!r}; this needs {AccessRole(role).value!r}"
            )


def role_allows(have: AccessRole | str, need: AccessRole | str) -> bool:
    """Whether role ``have`` may do what needs role ``need``."""
    return _RANK[AccessRole(have)] >= _RANK[AccessRole(need)]


def required_role(
    tool: str, *, read_only: bool | None = None, destructive: bool | None = None
) -> AccessRole:
    """The role an MCP tool needs: from :data:`TOOL_ROLES`, else from its hints
    (read-only: read; destructive: admin; otherwise write)."""
    if tool in TOOL_ROLES:
        return TOOL_ROLES[tool]
    if read_only:
        return AccessRole.READ
    return AccessRole.ADMIN if destructive else AccessRole.WRITE


def hash_secret(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(
    tenant: str,
    role: AccessRole | str,
    name: str,
    created_by: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A fresh key record and its token (to be shown once); ``expires_at`` (if
    given) must lie in the future."""
    try:
        role = AccessRole(role)
    except ValueError:
        raise ValidationError(f"unknown role {shown(role)}: use read, write or admin") from None
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("an API key needs a name of 1-100 characters, e.g. 'mcp-prod'")
    if expires_at is not None and not isinstance(expires_at, datetime):
        raise ValidationError(f"expires_at must be a datetime, not {type(expires_at).__name__}")
    expires_at = as_utc(expires_at) if expires_at is not None else None
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError(
            f"expires_at {expires_at.isoformat()} is not in the future: give the time the "
            "key stops working, e.g. 30 days from now"
        )
    key_id = f"key_{secrets.token_hex(8)}"
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = ApiKey(
        id=key_id,
        tenant=tenant,
        name=name,
        role=role,
        salt=salt.hex(),
        secret_hash=hash_secret(salt, secret),
        created_by=created_by,
        expires_at=expires_at,
    )
    return record, f"{TOKEN_PREFIX}.{tenant}.{key_id}.{secret}"


def authorize(
    memory: Context,
    token: str,
    *,
    tenant: str | None = None,
    role: AccessRole | str | None = None,
) -> Principal:
    """The principal a bearer token stands for; :class:`AccessDenied` if the token
    is malformed, unknown, revoked or expired, or (when given) not valid for
    ``tenant`` or lacking ``role``. Checked on every call: nothing is cached, so a
    revocation or an expiry takes effect on the next request."""
    match = _TOKEN.match(token.strip()) if isinstance(token, str) else None
    if match is None:
        raise AccessDenied("invalid API key")
    key_tenant, key_id, secret = match.groups()
    stored: ApiKey | None = None
    try:
        found = memory.backend.get(key_tenant, Collection.API_KEYS, [key_id])
        stored = found[0] if found and isinstance(found[0], ApiKey) else None
    except NotFoundError:
        stored = None
    salt = bytes.fromhex(stored.salt) if stored is not None else _DUMMY_SALT
    expected = stored.secret_hash if stored is not None else "0" * 64
    matches = hmac.compare_digest(hash_secret(salt, secret), expected)
    if stored is None or not matches or stored.revoked_at is not None:
        raise AccessDenied("invalid or revoked API key")
    if stored.expires_at is not None and stored.expires_at <= utcnow():
        raise AccessDenied(
            f"this API key expired at {stored.expires_at.isoformat(timespec='seconds')}; "
            "issue a new one (memory.governance.keys.add or `convmem keys create`)"
        )
    principal = Principal(
        tenant=stored.tenant, role=stored.role, key_id=stored.id, name=stored.name
    )
    if tenant is not None or role is not None:
        principal.require(role or AccessRole.READ, tenant)
    return principal
