"""The exceptions Conversation Memory raises.

Every error the engine raises on purpose derives from :class:`MemoryCoreError`,
so callers can catch one type. The tree::

    MemoryCoreError
    ├── ConfigError              bad or missing configuration
    ├── ValidationError          bad input at the API boundary (also a ValueError)
    │   └── InvalidIdentifierError   an identifier that cannot be normalised
    ├── NotFoundError            a tenant/profile/conversation/... that does not exist
    ├── ConflictError            the request contradicts stored state (e.g. appending
    │                            to an ended conversation, a duplicate id)
    ├── StorageError             the backend failed; the store is left consistent
    │   └── SchemaMismatchError  the store was written by an incompatible version
    └── ModelError               an embedding model or LLM failed or is unavailable

Messages say what went wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "InvalidIdentifierError",
    "MemoryCoreError",
    "ModelError",
    "NotFoundError",
    "SchemaMismatchError",
    "StorageError",
    "ValidationError",
]


class MemoryCoreError(Exception):
    """Root of every error raised by Conversation Memory."""


class ConfigError(MemoryCoreError):
    """The configuration is invalid or incomplete."""


class ValidationError(MemoryCoreError, ValueError):
    """Input rejected at the API boundary; nothing was written."""


class InvalidIdentifierError(ValidationError):
    """An identifier (phone, email, ...) could not be normalised."""


class NotFoundError(MemoryCoreError, LookupError):
    """The tenant, profile, conversation, message or other record does not exist."""


class ConflictError(MemoryCoreError):
    """The request contradicts what is stored (duplicate id, ended conversation...)."""


class StorageError(MemoryCoreError):
    """The storage backend failed. The store is left as it was before the call."""


class SchemaMismatchError(StorageError):
    """The store's schema was written by an incompatible version of this software."""


class ModelError(MemoryCoreError):
    """An embedding model or LLM could not be loaded or called."""
