"""The tenant handle: :class:`Memory` composes the engine's services for one tenant.

``Memory(backend, embedder)`` (or :meth:`Memory.open`) builds one
:class:`~memory_core.context.Context` and is itself the handle of
``settings.tenant`` (``"default"`` unless configured);
``memory.tenant("acme")`` is the handle of another tenant over the same
context. Every operation reads and writes the handle's tenant only: there is no
``tenant=`` argument to forget.

Top level: :meth:`Memory.ingest`, :meth:`Memory.recall`, :meth:`Memory.tenant`.
Everything else lives in namespaces that share one vocabulary (``get``,
``list``, ``add``, ``update``, ``delete`` and a few domain verbs)::

    memory.profiles  memory.traits  memory.conversations  memory.observations
    memory.summaries  memory.knowledge  memory.governance  memory.tenants

:class:`memory_core.aio.AsyncMemory` mirrors all of it, awaitable.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from memory_core.backends.base import Backend
from memory_core.config import Settings, load_settings
from memory_core.context import Context, ProfileRef, check_tenant_name
from memory_core.embedding.base import Embedder
from memory_core.errors import ConfigError
from memory_core.models import ConversationIn
from memory_core.recall import RecallOptions, RecallResult
from memory_core.services.conversations import Conversations, IngestResult
from memory_core.services.governance import Governance
from memory_core.services.knowledge import Knowledge
from memory_core.services.observations import Observations
from memory_core.services.profiles import Profiles
from memory_core.services.recall import Recaller
from memory_core.services.summaries import Summaries
from memory_core.services.tenants import Tenants
from memory_core.services.traits import Traits

if TYPE_CHECKING:
    from memory_core.extraction.base import Extractor
    from memory_core.extraction.reconcile import Reconciler

__all__ = ["IngestResult", "Memory", "ProfileRef", "open_backend"]


class Memory:
    """Customer memory for one tenant, over a storage backend and an embedder.

    Build it from parts (``Memory(backend, embedder)``) or from settings with
    :meth:`open`. The object is the handle of ``settings.tenant`` (default
    ``"default"``, which always exists); :meth:`tenant` gives the handle of
    another tenant (create tenants with ``memory.tenants.add(name)``). Handles
    share one context: closing any of them closes the store.

    Thread-safe: one instance (and its handles) may be shared by the threads of
    a process.
    """

    profiles: Profiles
    """Profiles and identity: ``get``, ``find``, ``list``, ``add``, ``link``, ``merge``,
    ``identifiers``, ``export``, ``delete``."""
    traits: Traits
    """Typed profile attributes: ``set``, ``list``, ``views``, ``conflicts``, ``delete``,
    ``declare``, ``schema``."""
    conversations: Conversations
    """Conversations and messages: ``add``, ``get``, ``list``, ``end``, ``delete``,
    ``add_message(s)``, ``get_message``, ``list_messages``, ``delete_message``."""
    observations: Observations
    """What was learned: ``list``, ``get``, ``add``, ``history``, ``explain``, ``retract``,
    ``delete``, ``extract``, ``extract_profile``, ``extract_all``, ``extraction_status``."""
    summaries: Summaries
    """Per-conversation summaries: ``get``, ``list``."""
    knowledge: Knowledge
    """Enterprise knowledge: ``bases``, ``sources``, ``search``."""
    governance: Governance
    """Policies, audit, API keys, redaction, retention."""
    tenants: Tenants
    """Tenant administration (across tenants): ``add``, ``list``, ``delete``, ``authorize``,
    ``audit``, ``gc``."""

    def __init__(
        self,
        backend: Backend,
        embedder: Embedder,
        *,
        extractor: Extractor | None = None,
        reconciler: Reconciler | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or load_settings()
        ctx = Context(backend, embedder, settings, extractor=extractor, reconciler=reconciler)
        self._bind(ctx, check_tenant_name(settings.tenant))

    def _bind(self, ctx: Context, tenant: str) -> None:
        self._ctx = ctx
        self._name = tenant
        self.profiles = Profiles(self)
        self.traits = Traits(self)
        self.conversations = Conversations(self)
        self.observations = Observations(self)
        self.summaries = Summaries(self)
        self.knowledge = Knowledge(self)
        self.governance = Governance(self)
        self.tenants = Tenants(self)
        self._recaller = Recaller(self)

    # -- construction -----------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | str | None = None,
        extractor: Extractor | None = None,
        reconciler: Reconciler | None = None,
        settings: Settings | None = None,
    ) -> Memory:
        """Open the configured store. ``path`` selects an embedded SQLite file;
        ``embedder`` an embedder instance or spec (``local``, ``hash``, ``litellm:<model>``)."""
        from memory_core.embedding import make_embedder

        settings = settings or load_settings()
        if path is not None:
            settings = settings.model_copy(update={"backend": f"sqlite:///{Path(path)}"})
        backend = open_backend(settings)
        if embedder is None:
            embedder = settings.embedder
        try:
            model = make_embedder(embedder) if isinstance(embedder, str) else embedder
            return cls(
                backend, model, extractor=extractor, reconciler=reconciler, settings=settings
            )
        except BaseException:  # a refused configuration leaves no open store behind
            backend.close()
            raise

    def tenant(self, name: str) -> Memory:
        """The handle of tenant ``name`` over the same store (it must exist when used;
        create it with ``memory.tenants.add(name)``)."""
        handle = object.__new__(type(self))
        handle._bind(self._ctx, check_tenant_name(name))
        return handle

    @property
    def name(self) -> str:
        """The tenant this handle reads and writes."""
        return self._name

    @property
    def backend(self) -> Backend:
        """The storage backend (advanced use: shared by every handle)."""
        return self._ctx.backend

    @property
    def embedder(self) -> Embedder:
        """The embedder (with its cache)."""
        return self._ctx.embedder

    @property
    def settings(self) -> Settings:
        return self._ctx.settings

    def close(self) -> None:
        """Close the store (for every handle over it)."""
        self._ctx.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Memory tenant={self._name!r} backend={type(self._ctx.backend).__name__}>"

    # -- the two everyday calls ---------------------------------------------------
    def ingest(self, conversation: ConversationIn | dict[str, Any]) -> IngestResult:
        """Ingest a conversation: resolve the customer, store and index its messages.

        Re-ingesting a conversation id appends messages not seen before and skips
        the rest (known by id; without an id, by role, text and ``ts``); when
        nothing is new nothing is written, so re-running an import is harmless.
        The conversation ends unless ``ended`` is false, and an ended conversation
        takes no new messages (``ConflictError``).
        """
        return self.conversations._ingest(conversation)

    def recall(
        self,
        ref: ProfileRef,
        query: str | None = None,
        *,
        conversation_id: str | None = None,
        options: RecallOptions | None = None,
    ) -> RecallResult:
        """What matters about this customer now.

        With a ``query``, items are ranked by hybrid relevance to it; with no
        query but a ``conversation_id``, the last turns of that conversation
        are the query; with neither, the most recent messages come back.
        Traits come first, then observations and summaries, then messages as
        supporting evidence, then knowledge when asked for.
        """
        return self._recaller.recall(ref, query, conversation_id=conversation_id, options=options)


def open_backend(settings: Settings) -> Backend:
    """The backend named by ``settings.backend``."""
    spec = settings.backend
    if spec == "sqlite" or spec.startswith("sqlite:///"):
        from memory_core.backends.sqlite import SQLiteBackend

        path = settings.sqlite_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteBackend(
            path,
            bm25_k1=settings.bm25_k1,
            bm25_b=settings.bm25_b,
            bm25_message_b=settings.bm25_message_b,
        )
    from memory_core.backends.weaviate_connect import is_weaviate_url

    if is_weaviate_url(spec):
        try:
            from memory_core.backends.weaviate import WeaviateBackend
        except ImportError as exc:
            raise ConfigError(
                f"backend {spec!r} needs the weaviate extra: "
                f"pip install 'conversation-memory[weaviate]' ({exc})"
            ) from exc
        key = settings.weaviate_api_key
        return WeaviateBackend.from_url(
            spec,
            api_key=None if key is None else key.get_secret_value(),
            grpc_port=settings.weaviate_grpc_port,
            bm25_k1=settings.bm25_k1,
            bm25_b=settings.bm25_b,
            bm25_message_b=settings.bm25_message_b,
        )
    raise ConfigError(
        f"unknown backend {spec!r}; use 'sqlite', 'sqlite:///path/to/file.db' "
        "or 'weaviate://host:port'"
    )
