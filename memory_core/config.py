"""Configuration: one settings object, from arguments, ``CONVMEM_*`` environment
variables or a TOML file, in that order of precedence.

The TOML file is ``$CONVMEM_CONFIG`` when set, else ``convmem.toml`` in the
current directory when it exists. Nothing is read or written at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from memory_core.errors import ConfigError, NotFoundError
from memory_core.validation import Limits

__all__ = [
    "DEFAULT_TENANT",
    "Limits",
    "Settings",
    "default_data_dir",
    "load_settings",
    "require_store",
]

DEFAULT_TENANT = "default"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/convmem`` (``~/.local/share/convmem`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "convmem"


class WebhookSecrets(BaseModel):
    """A tenant's webhook credentials: ``convmem serve --http`` receives Segment
    events at ``/v1/webhooks/segment/<tenant>`` and Twilio's webhooks at
    ``/v1/webhooks/twilio/<tenant>`` for each tenant that has them."""

    model_config = ConfigDict(extra="forbid")

    #: The Segment Webhooks destination's shared secret (``X-Signature``).
    segment_secret: SecretStr | None = None
    #: The Twilio account's auth token (``X-Twilio-Signature``).
    twilio_auth_token: SecretStr | None = None
    #: The URL Twilio calls, when a proxy rewrites it (the signature covers it).
    twilio_public_url: str | None = None


class Settings(BaseSettings):
    """Every setting of the engine. Environment variables are ``CONVMEM_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="CONVMEM_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    #: ``sqlite`` (file ``memory.db`` in data_dir), ``sqlite:///abs/path.db``, or
    #: ``weaviate://host:port`` (with the weaviate extra).
    backend: str = "sqlite"
    #: API key of a Weaviate server with authentication (Weaviate Cloud, self-hosted).
    weaviate_api_key: SecretStr | None = None
    #: gRPC port of a ``weaviate://`` backend (default 50051; 443 with ``weaviates://``).
    weaviate_grpc_port: int | None = Field(default=None, gt=0, lt=65536)
    #: ``local`` (bundled MiniLM on onnxruntime), ``hash[:DIM]`` (tests), ``litellm:<model>``.
    embedder: str = "local"
    #: Opt-in two-embedder mode (docs/recall.md): messages are also embedded by this
    #: second model and recall ranks them by both. ``e5`` (multilingual-e5-small, extra
    #: ``e5``); unset = off. SQLite backend only; ingest is about 5x slower.
    second_embedder: str | None = None
    #: The second embedder's share of recall's dense score of messages (the rest is the
    #: first's); changing it needs no re-embedding.
    second_embedder_weight: float = Field(default=0.5, ge=0, le=1)
    #: The second embedder's cosine scale, as ``recall_cosine_zero``/``_one`` are the
    #: first's: 0 at this value (e5's cosines of unrelated texts are high)...
    second_cosine_zero: float = Field(default=0.77, ge=-1, lt=1)
    #: ... 1 at this one.
    second_cosine_one: float = Field(default=0.90, gt=-1, le=1)
    #: Region used to read phone numbers written without a country code.
    default_region: str = "US"
    #: Tenant used by the CLI and servers when none is named.
    tenant: str = DEFAULT_TENANT
    #: Messages are embedded with this many preceding turns of their conversation
    #: as context (keyword search indexes the message alone).
    embed_context_turns: int = Field(default=1, ge=0, le=5)
    #: Recall re-scoring of messages (docs/recall.md): a turn gains this share of its
    #: best adjacent turn's score (answers sit in runs of turns).
    recall_neighbour_weight: float = Field(default=0.5, ge=0, le=2)
    #: ... and of the best turn up to this many turns away, the share halving with each
    #: turn of distance (a reply two turns after the question that named the topic).
    recall_neighbour_reach: int = Field(default=2, ge=1, le=5)
    #: ... this share of the best score in its conversation (questions are about episodes).
    recall_session_weight: float = Field(default=0.2, ge=0, le=2)
    #: ... this much when its conversation was held on a day, month or year the query names.
    recall_date_weight: float = Field(default=0.2, ge=0, le=2)
    #: Relevance scale of cosine similarity: 0 at this value (unrelated texts reach it
    #: with the bundled MiniLM)...
    recall_cosine_zero: float = Field(default=0.2, ge=-1, lt=1)
    #: ... 1 at this one (paraphrases).
    recall_cosine_one: float = Field(default=0.8, gt=-1, le=1)
    #: Recall leaves out query-ranked items scoring below this (``RecallOptions.min_score``
    #: overrides it): a query nothing answers returns only the profile's traits. Unset:
    #: 0.25 with the bundled local model (the score scale is calibrated on it), 0 with
    #: any other embedder (``hash``, a LiteLLM model: their cosines have another scale).
    recall_min_score: float | None = Field(default=None, ge=0, le=1)
    #: BM25 term-frequency saturation of keyword search (both backends).
    bm25_k1: float = Field(default=1.2, ge=0, le=10)
    #: BM25 length normalisation of keyword search, 0 (none) to 1 (full).
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    #: ... of messages: turns are short and their length says little about how much
    #: of them is about a matched word, so full normalisation over-penalises them.
    bm25_message_b: float = Field(default=0.3, ge=0, le=1)
    #: LiteLLM model for extraction (e.g. ``openai/gpt-4o-mini``); unset = heuristic.
    llm_model: str | None = None
    #: Endpoint for the LLM (OpenAI-compatible servers, vLLM, a proxy); unset = provider's.
    llm_api_base: str | None = None
    #: Seconds per LLM request.
    llm_timeout: float = Field(default=60.0, gt=0)
    #: A local GGUF model file for offline LLM extraction through llama.cpp (the ``gguf``
    #: extra), instead of ``llm_model``; extraction then runs in the background
    #: (ending a conversation queues it; docs/extraction.md).
    llm_gguf: Path | None = None
    #: Context window (tokens) of the ``llm_gguf`` model: prompt and reply must fit.
    llm_gguf_context: int = Field(default=8192, ge=512, le=131072)
    #: Extract observations, traits and a summary when a conversation ends.
    auto_extract: bool = True
    #: Governance policy per tenant (``[policies.<tenant>]`` in the TOML file, ``"*"``
    #: for tenants without their own); see :class:`memory_core.governance.Policy`.
    policies: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Seconds between retention runs (``memory.gc()``) of a long-running server; 0 = never.
    gc_interval: float = Field(default=3600.0, ge=0)
    #: Webhook credentials per tenant (``[webhooks.<tenant>]``), see :class:`WebhookSecrets`.
    webhooks: dict[str, WebhookSecrets] = Field(default_factory=dict)
    #: Size limits of every field callers give (see :class:`Limits`, docs/limits.md).
    limits: Limits = Field(default_factory=Limits)

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from memory_core.governance.policy import check_policies

        return check_policies(value)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise ValueError("default_region must be a two-letter ISO country code, e.g. US")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("CONVMEM_CONFIG") or "convmem.toml"
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(toml).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        elif os.environ.get("CONVMEM_CONFIG"):
            raise ConfigError(f"CONVMEM_CONFIG points at {toml}, which is not a file")
        return tuple(sources)

    def sqlite_path(self) -> Path:
        """The SQLite file for a ``sqlite`` backend setting."""
        if self.backend == "sqlite":
            return self.data_dir / "memory.db"
        if self.backend.startswith("sqlite:///"):
            return Path(self.backend[len("sqlite:///") :])
        raise ConfigError(f"backend {self.backend!r} is not a SQLite backend")


def load_settings(**overrides: Any) -> Settings:
    """Settings from overrides, environment and TOML; a clear ConfigError if invalid."""
    from pydantic import ValidationError as PydanticValidationError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except PydanticValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc


def require_store(settings: Settings) -> Settings:
    """``settings``, checked to name a store that exists: commands that only read
    (recall, export, audit, listings, searches) must not create an empty store
    (nor its directories) where a path was mistyped. A SQLite store must be an
    existing file (NotFoundError naming the path); a server backend is checked
    when it is opened."""
    if settings.backend == "sqlite" or settings.backend.startswith("sqlite:///"):
        path = settings.sqlite_path()
        if not path.is_file():
            raise NotFoundError(
                f"there is no store at {path}: check the path (--db) or the configured "
                "backend; a store is created by the first write (e.g. `convmem ingest`)",
                kind="store",
            )
    return settings
