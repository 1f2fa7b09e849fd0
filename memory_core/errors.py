"""The exceptions Conversation Memory raises.

Every error the engine raises on purpose derives from :class:`MemoryCoreError`,
so callers can catch one type. The tree::

    MemoryCoreError
    ├── ConfigError              bad or missing configuration
    │   └── EmbedderMismatchError  the store was embedded with another model than the
    │                            configured one (``convmem reembed`` re-embeds it)
    ├── ValidationError          bad input at the API boundary (also a ValueError)
    │   ├── InvalidIdentifierError   an identifier that cannot be normalised
    │   └── PolicyDenied         the tenant's policy does not let this be remembered
    ├── NotFoundError            a tenant/profile/conversation/... that does not exist
    │                            (also a LookupError; ``kind`` names the record kind)
    ├── ConflictError            the request contradicts stored state (e.g. appending
    │                            to an ended conversation, a duplicate id)
    │   └── IdentifierLimitError a profile would hold more identifiers than the
    │                            tenant's identity policy allows (max_identifiers)
    ├── AccessDenied             an API key that is unknown, revoked, for another
    │                            tenant or of too low a role (also a PermissionError)
    ├── ConnectorError           an external system a connector reads or writes (CRM,
    │                            warehouse ...) failed or refused; the run stops and the
    │                            next one resumes from its cursor
    ├── SourceError              a knowledge source could not be read; it is marked failed
    │   ├── CrawlError           the crawl of a web source could not start
    │   └── NothingToIndex       no page of the source has text
    ├── StorageError             the backend failed; the store is left consistent
    │   └── SchemaMismatchError  the store was written by an incompatible version
    └── ModelError               an embedding model or LLM failed or is unavailable
        └── LLMReplyError        the LLM gave no usable reply after every attempt
                                 (``usage`` is what the attempts cost)

The classes are defined here and also importable where they are raised
(``memory_core.governance.AccessDenied``, ``memory_core.extraction.LLMReplyError``,
``memory_core.knowledge.crawl.CrawlError`` ...). Every one pickles with its
attributes (so it crosses process boundaries intact).

Messages say what went wrong and what to do about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory_core.models import Usage

__all__ = [
    "AccessDenied",
    "ConfigError",
    "ConflictError",
    "ConnectorError",
    "CrawlError",
    "EmbedderMismatchError",
    "IdentifierLimitError",
    "InvalidIdentifierError",
    "LLMReplyError",
    "MemoryCoreError",
    "ModelError",
    "NotFoundError",
    "NothingToIndex",
    "PolicyDenied",
    "SchemaMismatchError",
    "SourceError",
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


class PolicyDenied(ValidationError):
    """The tenant's policy does not let this be remembered (a denied observation
    kind, trait key or topic); nothing was written. A :class:`ValidationError`."""


class NotFoundError(MemoryCoreError, LookupError):
    """The tenant, profile, conversation, message or other record does not exist.

    :attr:`kind` names the kind of record that was looked for: ``"tenant"``,
    ``"profile"``, ``"conversation"``, ``"message"``, ``"observation"``,
    ``"summary"``, ``"knowledge_base"``, ``"source"``, ``"api_key"``,
    ``"identifier"`` ..., or ``None`` when the raiser did not say.
    """

    def __init__(self, *args: object, kind: str | None = None) -> None:
        super().__init__(*args)
        self.kind = kind


class ConflictError(MemoryCoreError):
    """The request contradicts what is stored (duplicate id, ended conversation...).

    :attr:`kind` names the kind of record in conflict (as for
    :class:`NotFoundError`), or ``None``.
    """

    def __init__(self, *args: object, kind: str | None = None) -> None:
        super().__init__(*args)
        self.kind = kind


class IdentifierLimitError(ConflictError):
    """Linking or merging would give a profile more identifiers than the tenant's
    identity policy allows (``identity.max_identifiers``); nothing was written."""


class AccessDenied(MemoryCoreError, PermissionError):
    """A token is unknown, revoked, for another tenant, or its role is too low."""


class ConnectorError(MemoryCoreError):
    """An external system a connector reads or writes (Salesforce, a SQL warehouse
    ...) failed, refused or kept rate-limiting. The run stops; what it wrote so far
    stays, and the next run resumes from the stored cursor."""


class SourceError(MemoryCoreError):
    """A knowledge source could not be read. Indexing marks the source ``failed``
    with the reason; its last published version stays searchable."""


class CrawlError(SourceError):
    """The crawl could not start (start URL unreachable, not a page, ...)."""


class NothingToIndex(SourceError):
    """No page of the source has text; the caller marks the source failed."""


class StorageError(MemoryCoreError):
    """The storage backend failed. The store is left as it was before the call."""


class SchemaMismatchError(StorageError):
    """The store's schema was written by an incompatible version of this software."""


class EmbedderMismatchError(ConfigError):
    """The store's vectors were made by another embedding model than the configured
    one: similarity between them would be meaningless. Configure the model the
    store was built with, or re-embed it (``convmem reembed``)."""

    def __init__(self, *args: object, stored: str = "", configured: str = "") -> None:
        super().__init__(*args)
        self.stored = stored
        self.configured = configured


class ModelError(MemoryCoreError):
    """An embedding model or LLM could not be loaded or called."""


class LLMReplyError(ModelError):
    """The LLM gave no usable reply (or could not be reached) after every attempt.

    :attr:`usage` is what the attempts cost (failed calls included).
    """

    def __init__(self, message: str, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException pickles as ``cls(*args)``: ``usage`` is not in ``args``.
        return (type(self), (str(self), self.usage), self.__dict__)
