"""Bearer tokens for the HTTP transport, each bound to exactly one tenant.

Tokens are configured as a JSON object ``{"<token>": "<tenant>", ...}`` in the
environment variable ``CONVMEM_MCP_TOKENS`` and/or a file given with
``convmem serve --http --tokens-file tokens.json``. A key may also be the
token's digest, ``"sha256:<64 hex digits>"``, so the file need not hold the
secret itself (``convmem mcp-token TENANT`` prints both forms).

Only SHA-256 digests are kept in memory, and a presented token is compared
against every digest in constant time. The tenant of a request comes from its
token alone: nothing a client sends can name another tenant.

This module does not import the MCP SDK.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from memory_core.errors import ConfigError

__all__ = ["MIN_TOKEN_LENGTH", "TOKENS_ENV", "TokenTable", "digest", "new_token"]

TOKENS_ENV = "CONVMEM_MCP_TOKENS"
MIN_TOKEN_LENGTH = 16

_DIGEST_KEY = re.compile(r"^sha256:([0-9a-f]{64})$")
# Same rule as the engine's tenant names (memory_core.memory).
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def digest(token: str) -> str:
    """The hex SHA-256 digest of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class TokenTable:
    """Which tenant each bearer token belongs to, held as SHA-256 digests."""

    __slots__ = ("_entries",)

    def __init__(self, digests: Mapping[str, str]) -> None:
        """``digests`` maps hex SHA-256 digests of tokens to tenant names."""
        for tenant in digests.values():
            if not isinstance(tenant, str) or not _TENANT.match(tenant):
                raise ConfigError(
                    f"invalid tenant name {tenant!r} in the MCP tokens: use 1-64 letters, "
                    "digits, '_' or '-', starting with a letter or digit"
                )
        self._entries: tuple[tuple[bytes, str], ...] = tuple(
            (bytes.fromhex(d), tenant) for d, tenant in sorted(digests.items())
        )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str], *, origin: str = "tokens") -> TokenTable:
        """From ``{token or "sha256:<hex>": tenant}``, as written in the configuration."""
        return cls(_digests(mapping, origin))

    @classmethod
    def load(
        cls, file: Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> TokenTable:
        """Tokens from ``$CONVMEM_MCP_TOKENS`` and ``file`` (JSON objects), merged; the
        table is empty when neither is set."""
        env = os.environ if environ is None else environ
        merged: dict[str, str] = {}
        raw = env.get(TOKENS_ENV)
        if raw:
            merged.update(_digests(_parse(raw, TOKENS_ENV), TOKENS_ENV))
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read the tokens file {file}: {exc}") from exc
            merged.update(_digests(_parse(text, str(file)), str(file)))
        return cls(merged)

    def tenant_for(self, token: str) -> str | None:
        """The tenant of this token, or None. Compares against every entry in constant time."""
        presented = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: str | None = None
        for stored, tenant in self._entries:
            if hmac.compare_digest(presented, stored):
                found = tenant
        return found

    @property
    def tenants(self) -> list[str]:
        """Every tenant that has a token, sorted."""
        return sorted({tenant for _, tenant in self._entries})

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # never show digests
        return f"TokenTable({len(self)} tokens, tenants={self.tenants!r})"


def _digests(mapping: Mapping[str, str], origin: str) -> dict[str, str]:
    """``{token or "sha256:<hex>": tenant}`` -> ``{hex digest: tenant}``, checked."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f'{origin}: expected a JSON object {{"<token>": "<tenant>"}}')
    out: dict[str, str] = {}
    for key, tenant in mapping.items():
        if not isinstance(key, str) or not isinstance(tenant, str):
            raise ConfigError(f"{origin}: tokens and tenants must be strings")
        match = _DIGEST_KEY.match(key)
        if match:
            out[match.group(1)] = tenant
        elif len(key) < MIN_TOKEN_LENGTH or key != key.strip():
            raise ConfigError(
                f"{origin}: a token for tenant {tenant!r} is too weak: use at least "
                f"{MIN_TOKEN_LENGTH} characters without surrounding spaces "
                "(`convmem mcp-token TENANT` makes one)"
            )
        else:
            out[digest(key)] = tenant
    return out


def _parse(text: str, origin: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f'{origin}: not valid JSON ({exc.msg}); expected {{"<token>": "<tenant>"}}'
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f'{origin}: expected a JSON object {{"<token>": "<tenant>"}}')
    return data
