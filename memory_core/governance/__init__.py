"""Governance: what is remembered, who sees it, and forgetting for real.

- :class:`Policy` per tenant (settings file or ``memory.governance.policy.set``): what is
  remembered, what is redacted (:class:`Redactor`), how long records are kept;
- the append-only audit log (:func:`acting_as` names who acts);
- erasure that leaves nothing, retention (``memory.governance.gc``, :class:`RetentionScheduler`);
- subject access export (``memory.profiles.export``);
- API keys scoped to a tenant and a role (:func:`authorize`, :class:`Principal`).

The API lives on the tenant handle (``memory.governance``, see
:mod:`memory_core.services.governance`); this package holds the parts the
services call (:mod:`~memory_core.governance.screening`,
:mod:`~memory_core.governance.erasure`, :func:`~memory_core.governance.audit.record`).
"""

from memory_core.governance.access import (
    TOOL_ROLES,
    AccessDenied,
    IssuedKey,
    Principal,
    authorize,
    required_role,
    role_allows,
)
from memory_core.governance.audit import SYSTEM_TENANT, acting_as, current_actor
from memory_core.governance.export import ProfileExport
from memory_core.governance.policy import (
    CustomPattern,
    Detector,
    IdentityPolicy,
    Policy,
    RedactionPolicy,
    RememberPolicy,
    RetentionPolicy,
)
from memory_core.governance.redaction import NATIONAL_IDS, Finding, Redaction, Redactor
from memory_core.governance.retention import RetentionScheduler
from memory_core.governance.screening import (
    PolicyDenied,
    redact_pages,
    redact_texts,
    screen_conversation,
    screen_extraction,
    screen_observation,
    screen_trait,
)
from memory_core.governance.topics import SPECIAL_CATEGORIES, TOPIC_LEXICONS, TopicMatcher
from memory_core.models import AccessRole, ApiKey, AuditEvent

__all__ = [
    "NATIONAL_IDS",
    "SPECIAL_CATEGORIES",
    "SYSTEM_TENANT",
    "TOOL_ROLES",
    "TOPIC_LEXICONS",
    "AccessDenied",
    "AccessRole",
    "ApiKey",
    "AuditEvent",
    "CustomPattern",
    "Detector",
    "Finding",
    "IdentityPolicy",
    "IssuedKey",
    "Policy",
    "PolicyDenied",
    "Principal",
    "ProfileExport",
    "Redaction",
    "RedactionPolicy",
    "Redactor",
    "RememberPolicy",
    "RetentionPolicy",
    "RetentionScheduler",
    "TopicMatcher",
    "acting_as",
    "authorize",
    "current_actor",
    "redact_pages",
    "redact_texts",
    "required_role",
    "role_allows",
    "screen_conversation",
    "screen_extraction",
    "screen_observation",
    "screen_trait",
]
