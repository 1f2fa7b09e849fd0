"""The engine's one explicit context: everything the services share.

A :class:`Context` holds the storage backend, the (cached) embedder, the
settings, the extractor and reconciler, the policy cache, the knowledge
searcher and the locks. It has no customer-facing API: the services in
:mod:`memory_core.services` build on it, and :class:`memory_core.Memory` (the
tenant handle) composes those services. Helper functions in the governance,
extraction and knowledge modules take a ``Context`` as their first argument.

Picture::

    adapters (MCP, LangChain, LlamaIndex, CLI) -> memory_core.tools -> Memory handle
    Memory handle (one tenant) -> services (profiles, traits, conversations, ...)
    services -> Context (backend, embedder, settings, audit, policy guard, caches)
    Context -> Backend protocol (SQLite | Weaviate), Embedder protocol, LLM (LiteLLM)
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from memory_core.backends.base import Backend, Collection, SupportsExport, Vectors
from memory_core.config import DEFAULT_TENANT, Settings
from memory_core.embedding.base import CachedEmbedder, Embedder
from memory_core.errors import (
    ConfigError,
    EmbedderMismatchError,
    NotFoundError,
    ValidationError,
)
from memory_core.identity import normalize, parse_identifier
from memory_core.models import Identifier, Profile, Record
from memory_core.validation import record_id, shown

if TYPE_CHECKING:
    from memory_core.embedding.dual import DualEmbedder
    from memory_core.extraction.background import BackgroundWorker
    from memory_core.extraction.base import Extractor
    from memory_core.extraction.reconcile import Reconciler
    from memory_core.governance.screening import TenantPolicy
    from memory_core.knowledge.chunking import ChunkingConfig
    from memory_core.knowledge.search import KnowledgeSearcher
    from memory_core.models import DeletionReceipt, Message
    from memory_core.recall_sources import RecallSource

__all__ = ["Context", "ProfileRef", "check_external_id", "check_tenant_name"]

R = TypeVar("R", bound=Record)

ProfileRef = str | Identifier
"""A profile id (``prf_...``), an :class:`Identifier`, or ``kind:value`` text."""

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_tenant_name(tenant: object) -> str:
    """``tenant`` if it is a valid tenant name, else :class:`ValidationError`."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise ValidationError(
            f"invalid tenant name {shown(tenant)}: use 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def check_external_id(value: str, what: str) -> str:
    """``value`` if it can be a record id (1-200 characters, no whitespace); see
    :func:`memory_core.validation.record_id`."""
    return record_id(value, what)


class _Tenants:
    """Which tenants exist (cached: a tenant is checked once per context)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def require(self, tenant: str) -> str:
        """``tenant`` if it exists (``default`` is created on first use), else NotFoundError."""
        if tenant in self._known:
            return tenant
        check_tenant_name(tenant)
        if tenant == DEFAULT_TENANT:
            self._backend.ensure_tenant(tenant)
        elif tenant not in self._backend.list_tenants():
            raise NotFoundError(
                f"tenant {tenant!r} does not exist; create it with "
                f"memory.tenants.add({tenant!r}) or `convmem tenants create {tenant}`",
                kind="tenant",
            )
        with self._lock:
            self._known.add(tenant)
        return tenant

    def known(self, tenant: str) -> None:
        with self._lock:
            self._known.add(tenant)

    def forget(self, tenant: str) -> None:
        with self._lock:
            self._known.discard(tenant)


#: The collections whose records carry vectors, in the order the model check reads them.
_VECTOR_COLLECTIONS = (
    Collection.MESSAGES,
    Collection.CHUNKS,
    Collection.OBSERVATIONS,
    Collection.SUMMARIES,
)

#: Recall's default floor with the bundled local model (docs/recall.md: a quarter of
#: the query's words, or a cosine of 0.35).
CALIBRATED_MIN_SCORE = 0.25


class Context:
    """The shared state of one engine (see the module docstring).

    Thread-safe: the services of every tenant handle share one context.
    """

    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        settings: Settings,
        *,
        extractor: Extractor | None = None,
        reconciler: Reconciler | None = None,
    ) -> None:
        self.backend = backend
        self.embedder: CachedEmbedder = (
            embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        )
        self.settings = settings
        if settings.second_embedder is not None and backend.name != "sqlite":
            raise ConfigError(
                f"the two-embedder mode (second_embedder={settings.second_embedder!r}) is "
                f"supported on the SQLite backend only, not on {backend.name!r}: unset "
                "second_embedder (CONVMEM_SECOND_EMBEDDER) for this store"
            )
        self.tenants = _Tenants(backend)
        #: Serialises identity resolution (profile creation, linking, merges).
        self.resolve_lock = threading.RLock()
        self._extractor = extractor
        self._reconciler = reconciler
        self._policies: dict[str, tuple[float, TenantPolicy]] = {}
        self._policies_lock = threading.Lock()
        self._searcher: KnowledgeSearcher | None = None
        self._chunking: ChunkingConfig | None = None
        self._sources: tuple[RecallSource, ...] | None = None
        self._vector_models_ok: set[str] = set()  # tenants whose vectors match the embedder
        self._background: BackgroundWorker | None = None  # extraction jobs, on first use
        self._background_lock = threading.Lock()
        self._dual: DualEmbedder | None = None  # the two-embedder mode's, built on first use
        self._dual_lock = threading.Lock()

    # -- identifiers and records --------------------------------------------------
    def parse(self, ref: str | Identifier) -> Identifier:
        """An identifier, normalised with the configured default region (and checked
        against ``settings.limits.identifier_chars``)."""
        region, limit = self.settings.default_region, self.settings.limits.identifier_chars
        if isinstance(ref, Identifier):
            return normalize(ref.kind, ref.value, default_region=region, max_chars=limit)
        if not isinstance(ref, str):
            raise ValidationError(
                "a profile reference is a profile id (prf_...), an Identifier or kind:value "
                f"text such as 'phone:+16175550142', not {type(ref).__name__}"
            )
        return parse_identifier(ref, default_region=region, max_chars=limit)

    def live_profile(self, tenant: str, profile_id: str) -> Profile:
        """The live profile for ``profile_id`` (merged-away ids resolve to the survivor)."""
        seen: set[str] = set()
        current = profile_id
        while True:
            found = self.backend.get(tenant, Collection.PROFILES, [current])
            if not found:
                raise NotFoundError(
                    f"profile {profile_id!r} does not exist in tenant {tenant!r}", kind="profile"
                )
            record = found[0]
            if record.merged_into is None:
                return record
            if current in seen:  # pragma: no cover - merge chains are flattened on write
                raise NotFoundError(f"profile {profile_id!r} has a merge cycle", kind="profile")
            seen.add(current)
            current = record.merged_into

    # -- extraction -----------------------------------------------------------------
    @property
    def extractor(self) -> Extractor:
        """An LLM extractor when ``settings.llm_model`` is set, a local GGUF one when
        ``settings.llm_gguf`` is, else the heuristic rules."""
        if self._extractor is None:
            from memory_core.extraction.heuristic import HeuristicExtractor
            from memory_core.extraction.llm import LLMExtractor

            model, gguf = self.settings.llm_model, self.settings.llm_gguf
            if gguf is not None:
                from memory_core.extraction.gguf import GGUFExtractor

                if model:
                    raise ConfigError(
                        "set llm_model (an LLM through LiteLLM) or llm_gguf (a local GGUF "
                        "model file), not both"
                    )
                self._extractor = GGUFExtractor(gguf, context_tokens=self.settings.llm_gguf_context)
            else:
                self._extractor = (
                    LLMExtractor(
                        model,
                        api_base=self.settings.llm_api_base,
                        timeout=self.settings.llm_timeout,
                    )
                    if model
                    else HeuristicExtractor(default_region=self.settings.default_region)
                )
        return self._extractor

    @extractor.setter
    def extractor(self, value: Extractor) -> None:
        self._extractor = value
        self._reconciler = None

    @property
    def background(self) -> BackgroundWorker:
        """The store's background extraction worker (its thread starts with the first job)."""
        with self._background_lock:
            if self._background is None:
                from memory_core.extraction.background import BackgroundWorker

                self._background = BackgroundWorker()
            return self._background

    @property
    def reconciler(self) -> Reconciler:
        """Rules, or rules plus an LLM for close calls when the extractor is an LLM."""
        if self._reconciler is None:
            from memory_core.extraction.llm import LLMExtractor
            from memory_core.extraction.reconcile import LLMReconciler, RuleReconciler

            ex = self.extractor
            self._reconciler = (
                LLMReconciler(ex.client) if isinstance(ex, LLMExtractor) else RuleReconciler()
            )
        return self._reconciler

    @reconciler.setter
    def reconciler(self, value: Reconciler) -> None:
        self._reconciler = value

    # -- governance -----------------------------------------------------------------
    def audit(
        self,
        tenant: str,
        action: str,
        target: str,
        details: Mapping[str, int | str] | None = None,
    ) -> None:
        """Append an event to ``tenant``'s audit log (joins the caller's batch)."""
        from memory_core.governance.audit import record

        record(self, tenant, action, target, details=details)

    def policy(self, tenant: str) -> TenantPolicy:
        """The tenant's compiled policy, cached for ``screening.POLICY_TTL`` seconds."""
        from memory_core.governance.screening import POLICY_TTL, compile_policy, load_policy

        now = time.monotonic()
        with self._policies_lock:
            entry = self._policies.get(tenant)
        if entry is not None and now - entry[0] < POLICY_TTL:
            return entry[1]
        policy, origin = load_policy(self, tenant)
        compiled = compile_policy(policy, origin, entry[1] if entry is not None else None)
        with self._policies_lock:
            self._policies[tenant] = (now, compiled)
        return compiled

    def forget_policy(self, tenant: str | None = None) -> None:
        """Drop the cached policy of one tenant (or all)."""
        with self._policies_lock:
            if tenant is None:
                self._policies.clear()
            else:
                self._policies.pop(tenant, None)

    def erased(
        self,
        receipt: DeletionReceipt,
        action: str,
        *,
        following: list[Message] | None = None,
    ) -> DeletionReceipt:
        """Complete a committed deletion: audit it, re-embed the turns after deleted
        messages (``following``), clear caches, purge the backend's files. Returns
        ``receipt`` with ``purged`` set (see :class:`DeletionReceipt`)."""
        from memory_core.governance.erasure import finish

        if action == "delete_tenant":
            self.forget_policy(receipt.tenant)
            self.forget_tenant_caches(receipt.tenant)
        return finish(self, receipt, action, following=following or ())

    def forget_tenant_caches(self, tenant: str) -> None:
        """Drop in-process caches of a tenant's records after a deletion there."""
        self._vector_models_ok.discard(tenant)
        if self._searcher is not None:
            self._searcher.forget(tenant)

    # -- vectors ----------------------------------------------------------------------
    def stored_vector_model(
        self, tenant: str, collections: Sequence[Collection] | None = None
    ) -> str | None:
        """The model that made the first stored vectors found in the tenant's
        ``collections`` (default: messages, then chunks, observations, summaries), or
        None when they hold none (or the backend cannot say)."""
        if not isinstance(self.backend, SupportsExport):
            return None
        for collection in collections or _VECTOR_COLLECTIONS:
            for pages, (_, vectors) in enumerate(
                self.backend.export(tenant, collection, batch_size=8)
            ):
                if vectors is not None:
                    return vectors.model_id
                if pages >= 3:  # records without vectors: look no further here
                    break
        return None

    def min_score(self) -> float:
        """Recall's default relevance floor (``Settings.recall_min_score``, see there)."""
        from memory_core.embedding.onnx import MODEL_ID

        configured = self.settings.recall_min_score
        if configured is not None:
            return configured
        return CALIBRATED_MIN_SCORE if self.embedder.model_id == MODEL_ID else 0.0

    @property
    def message_embedder(self) -> Embedder:
        """The embedder of messages: :attr:`embedder`, or in the two-embedder mode
        (``Settings.second_embedder``) a :class:`~memory_core.embedding.DualEmbedder`
        of it and the second model. Other records always use :attr:`embedder`."""
        dual = self.dual_embedder
        return self.embedder if dual is None else dual

    @property
    def dual_embedder(self) -> DualEmbedder | None:
        """The two-embedder mode's embedder of messages, or None when it is off
        (SQLite backend only: opening another with the mode on is a ConfigError)."""
        spec = self.settings.second_embedder
        if spec is None:
            return None
        if self._dual is None:
            from memory_core.embedding import DualEmbedder, make_second_embedder

            s = self.settings
            dual = DualEmbedder(
                self.embedder,
                make_second_embedder(spec),
                weight=s.second_embedder_weight,
                first_scale=(s.recall_cosine_zero, s.recall_cosine_one),
                second_scale=(s.second_cosine_zero, s.second_cosine_one),
            )
            with self._dual_lock:
                if self._dual is None:
                    self._dual = dual
        return self._dual

    def vector_model(self, collection: Collection) -> str:
        """The model id of the vectors ``collection`` holds with this configuration."""
        if collection is Collection.MESSAGES:
            return self.message_embedder.model_id
        return self.embedder.model_id

    def query_vectors(self, tenant: str, texts: Sequence[str]) -> Vectors:
        """The embeddings of search queries for ``tenant``'s store.

        Raises :class:`~memory_core.errors.EmbedderMismatchError` when the tenant's
        stored vectors come from another model than this configuration's for their
        collection (see :meth:`vector_model`): a search would silently fall back to
        keywords alone. Checked once per tenant and process (again after a deletion
        or ``convmem reembed``)."""
        model = self.embedder.model_id
        if tenant not in self._vector_models_ok:
            for collection in _VECTOR_COLLECTIONS:
                stored = self.stored_vector_model(tenant, [collection])
                configured = self.vector_model(collection)
                if stored is not None and stored != configured:
                    raise EmbedderMismatchError(
                        f"tenant {tenant!r} was embedded with {stored!r} but the "
                        f"configured embedder is {configured!r}: configure {stored!r} "
                        "again, or re-embed the store with the configured model "
                        "(`convmem reembed`)",
                        stored=stored,
                        configured=configured,
                    )
                if stored is not None:
                    break  # one collection tells: reembed and writes keep them alike
            self._vector_models_ok.add(tenant)
        return Vectors(model, self.embedder.embed_batch(list(texts)))

    def message_query_vectors(self, text: str, first: Vectors | None) -> Vectors | None:
        """The query vector that searches messages: ``first`` (the embedder's, from
        :meth:`query_vectors`), or in the two-embedder mode both models' query
        embedding (see :class:`~memory_core.embedding.DualEmbedder`)."""
        dual = self.dual_embedder
        if dual is None or first is None:
            return first
        return Vectors(dual.model_id, dual.embed_queries([text], first.array))

    # -- knowledge --------------------------------------------------------------------
    @property
    def searcher(self) -> KnowledgeSearcher:
        """The knowledge searcher (keeps per-tenant index caches)."""
        if self._searcher is None:
            from memory_core.knowledge.search import KnowledgeSearcher

            with self.resolve_lock:
                if self._searcher is None:
                    self._searcher = KnowledgeSearcher(self.backend)
        return self._searcher

    @property
    def chunking(self) -> ChunkingConfig:
        """How knowledge pages are cut into chunks (changing it re-indexes on refresh)."""
        if self._chunking is None:
            from memory_core.knowledge.chunking import ChunkingConfig

            self._chunking = ChunkingConfig()
        return self._chunking

    @chunking.setter
    def chunking(self, value: ChunkingConfig) -> None:
        self._chunking = value

    # -- recall -------------------------------------------------------------------------
    @property
    def recall_sources(self) -> tuple[RecallSource, ...]:
        """What recall draws from, in the order items are listed."""
        if self._sources is None:
            from memory_core.recall_sources import default_sources

            self._sources = default_sources(self)
        return self._sources

    def close(self) -> None:
        if self._background is not None:  # background extraction writes to the backend
            self._background.close()
        self.backend.close()
