"""What the server's read-only resources show, as typed views over :class:`Memory`:
the knowledge bases of a tenant, one knowledge base with its sources (the
``list_knowledge_sources`` tool's view of one, from :mod:`memory_core.tools`), and
a conversation transcript. Plain functions ``view(memory, ...)`` over a tenant
handle, run by :mod:`convmem_mcp.server` on the request's tenant; no MCP SDK
import here.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from memory_core.errors import ValidationError
from memory_core.memory import Memory
from memory_core.models import KnowledgeBase, Source, SourceStatus
from memory_core.tools import KnowledgeBaseView, SourceOut, knowledge_base_view

__all__ = [
    "KNOWLEDGE_URI",
    "KnowledgeBaseOut",
    "KnowledgeBaseView",
    "KnowledgeBasesView",
    "SourceOut",
    "knowledge_base",
    "knowledge_bases",
    "transcript",
]

KNOWLEDGE_URI = "convmem://knowledge"


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KnowledgeBaseOut(_View):
    id: str
    name: str
    description: str
    created_at: datetime
    uri: str = Field(description="This knowledge base's own resource, with its sources.")
    sources: dict[SourceStatus, int] = Field(
        description="Its sources counted by status (statuses with none are left out)."
    )


class KnowledgeBasesView(_View):
    knowledge_bases: list[KnowledgeBaseOut] = Field(description="By name.")


def _status(status: str | None) -> SourceStatus | None:
    if not status:
        return None
    try:
        return SourceStatus(status)
    except ValueError:
        raise ValidationError(
            f"unknown source status {status!r}; use one of "
            + ", ".join(s.value for s in SourceStatus)
        ) from None


def _kb_out(kb: KnowledgeBase, sources: list[Source]) -> KnowledgeBaseOut:
    counts = Counter(s.status for s in sources)
    return KnowledgeBaseOut(
        id=kb.id,
        name=kb.name,
        description=kb.description,
        created_at=kb.created_at,
        uri=f"{KNOWLEDGE_URI}/{kb.id}",
        sources={status: counts[status] for status in SourceStatus if counts[status]},
    )


def knowledge_bases(memory: Memory, status: str | None = None) -> KnowledgeBasesView:
    """The tenant's knowledge bases with their sources counted by status; with
    ``status``, only those having a source in that status."""
    wanted = _status(status)
    by_kb: dict[str, list[Source]] = {}
    for source in memory.knowledge.sources.list():
        by_kb.setdefault(source.kb_id, []).append(source)
    views = [_kb_out(kb, by_kb.get(kb.id, [])) for kb in memory.knowledge.bases.list()]
    if wanted is not None:
        views = [v for v in views if wanted in v.sources]
    return KnowledgeBasesView(knowledge_bases=views)


def knowledge_base(memory: Memory, kb_ref: str, status: str | None = None) -> KnowledgeBaseView:
    """One knowledge base (by id or name) with its sources, those in ``status`` only if given."""
    wanted = _status(status)
    kb = memory.knowledge.bases.get(kb_ref)
    return knowledge_base_view(kb, memory.knowledge.sources.list(kb.id, status=wanted))


def transcript(memory: Memory, conversation_id: str) -> str:
    """One conversation as text: a heading line, then one line per message, oldest first."""
    conv = memory.conversations.get(conversation_id)
    head = (
        f"conversation {conv.id} ({conv.channel.value}, {conv.status.value}) "
        f"with profile {conv.profile_id}, started {conv.started_at.isoformat()}"
    )
    if conv.subject:
        head += f" - {conv.subject}"
    lines = [head]
    lines += [
        f"[{m.ts.isoformat()}] {m.role.value}: {m.text}"
        for m in memory.conversations.list_messages(conv.id)
    ]
    return "\n".join(lines)
