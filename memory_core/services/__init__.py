"""The engine's services: one class per concept, each bound to a tenant handle
(:class:`memory_core.Memory`) and built over the shared
:class:`~memory_core.context.Context`."""

from memory_core.services.conversations import Conversations, IngestResult
from memory_core.services.governance import ApiKeys, AuditLog, Governance, Policies
from memory_core.services.knowledge import Knowledge, KnowledgeBases, KnowledgeSources
from memory_core.services.observations import Observations
from memory_core.services.profiles import Profiles
from memory_core.services.recall import Recaller
from memory_core.services.summaries import Summaries
from memory_core.services.tenants import Tenants
from memory_core.services.traits import Traits

__all__ = [
    "ApiKeys",
    "AuditLog",
    "Conversations",
    "Governance",
    "IngestResult",
    "Knowledge",
    "KnowledgeBases",
    "KnowledgeSources",
    "Observations",
    "Policies",
    "Profiles",
    "Recaller",
    "Summaries",
    "Tenants",
    "Traits",
]
