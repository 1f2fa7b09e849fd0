"""Re-embed a tenant's store with the configured embedding model (``convmem reembed``).

Vectors of different models cannot be compared, so a store built with one model
is searched by meaning only with that model (recall refuses a mismatch with
:class:`~memory_core.errors.EmbedderMismatchError`). Re-embedding reads every
searchable record (messages, observations, summaries, knowledge chunks), embeds
the text its vector was made from again, and writes it back beside the record,
page by page: each page is committed on its own, so an interrupted run resumes
where it stopped (pages already holding the configured model's vectors are
skipped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from memory_core.backends.base import COLLECTIONS, Collection, SupportsExport, Vectors
from memory_core.errors import ConfigError
from memory_core.memory import Memory

__all__ = ["ReembedReport", "reembed"]

#: The collections whose records carry vectors, in the order they are re-embedded.
VECTOR_COLLECTIONS: tuple[Collection, ...] = tuple(c for c in COLLECTIONS if c.spec.searchable)


@dataclass
class ReembedReport:
    """What one run did: records re-embedded and already current, per collection."""

    tenant: str
    model_id: str
    reembedded: dict[str, int] = field(default_factory=dict)
    current: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.reembedded.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "tenant": self.tenant,
            "model_id": self.model_id,
            "reembedded": dict(self.reembedded),
            "current": dict(self.current),
        }


def reembed(
    memory: Memory,
    *,
    batch_size: int = 256,
    progress: Callable[[str, int, int], None] | None = None,
) -> ReembedReport:
    """Re-embed every searchable record of ``memory``'s tenant with the configured
    embedder. ``progress(collection, done, total)`` is called after each page.
    Safe to interrupt and run again: what already has the model's vectors is skipped."""
    ctx = memory._ctx
    backend = ctx.backend
    if not isinstance(backend, SupportsExport):
        raise ConfigError(f"the {backend.name} backend cannot read its vectors back to re-embed")
    tenant = memory.name
    ctx.tenants.require(tenant)
    report = ReembedReport(tenant=tenant, model_id=ctx.embedder.model_id)
    for collection in VECTOR_COLLECTIONS:
        # Messages: both models' vector in the two-embedder mode (Context.message_embedder).
        embedder = ctx.message_embedder if collection is Collection.MESSAGES else ctx.embedder
        model = embedder.model_id
        name = collection.value
        total = backend.count(tenant, collection)
        done = 0
        report.reembedded[name] = report.current[name] = 0
        for records, vectors in backend.export(tenant, collection, batch_size=batch_size):
            if vectors is not None and vectors.model_id == model:
                report.current[name] += len(records)
            else:
                texts = memory.profiles._reembedding_texts(collection, list(records))
                matrix = embedder.embed_batch(texts)
                with backend.batch():
                    backend.upsert(tenant, collection, records, Vectors(model, matrix))
                report.reembedded[name] += len(records)
            done += len(records)
            if progress is not None:
                progress(name, done, total)
    ctx.forget_tenant_caches(tenant)
    details: dict[str, int | str] = {"model_id": report.model_id, "records": report.total}
    if ctx.settings.second_embedder is not None:
        details["messages_model_id"] = ctx.message_embedder.model_id
    ctx.audit(tenant, "reembed", f"tenant:{tenant}", details)
    return report
