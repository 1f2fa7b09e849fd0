"""Connecting to Weaviate from a backend URL.

``weaviate://host[:port]`` is plain HTTP (port 8080 by default);
``weaviates://host[:port]`` (or ``weaviate+https://``) is TLS (port 443).
Query parameters: ``grpc_port`` (default 50051, or 443 with TLS), ``grpc_host``
(default: the same host), ``prefix`` (collection name prefix, default
``Convmem``), ``replication`` (copies of every tenant's shard in a cluster,
default 1: set on the collections when they are created) and ``consistency``
(``ONE``, ``QUORUM`` or ``ALL``: how many replicas acknowledge each read and
write; default ``QUORUM`` when ``replication`` > 1, else the server's). Hosts
of Weaviate Cloud (``*.weaviate.cloud``, ``*.weaviate.network``) connect through
``connect_to_weaviate_cloud``, which knows their gRPC address.

The client is created with ``skip_init_checks=True``: it then makes no call
besides the server's own endpoints (the default init checks include a version
lookup on pypi.org).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from memory_core.errors import ConfigError

__all__ = [
    "CONSISTENCY_LEVELS",
    "SCHEMES",
    "WeaviateTarget",
    "is_weaviate_url",
    "parse_weaviate_url",
]

SCHEMES = {"weaviate": False, "weaviate+http": False, "weaviates": True, "weaviate+https": True}
_CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network")
_PARAMETERS = ("grpc_port", "grpc_host", "prefix", "replication", "consistency")
#: Replicas that must answer a read or acknowledge a write (Weaviate's levels).
CONSISTENCY_LEVELS = ("ONE", "QUORUM", "ALL")


def is_weaviate_url(spec: str) -> bool:
    return spec.split("://", 1)[0].lower() in SCHEMES and "://" in spec


@dataclass(frozen=True)
class WeaviateTarget:
    """Where a Weaviate server is, parsed from a backend URL."""

    host: str
    port: int
    secure: bool
    grpc_host: str
    grpc_port: int
    prefix: str | None = None
    replication: int = 1
    consistency: str | None = None

    @property
    def is_cloud(self) -> bool:
        return self.secure and self.host.endswith(_CLOUD_SUFFIXES)

    @property
    def http_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}"

    def __str__(self) -> str:  # for messages: never holds credentials
        return self.http_url


def parse_weaviate_url(url: str, *, grpc_port: int | None = None) -> WeaviateTarget:
    """``url`` as a :class:`WeaviateTarget`; ``grpc_port`` is used when the URL names none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid Weaviate URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"invalid Weaviate URL {url!r}: use weaviate://host:port (HTTP) or "
            "weaviates://host (TLS)"
        )
    if not parts.hostname:
        raise ConfigError(f"invalid Weaviate URL {url!r}: no host")
    if parts.username or parts.password:
        raise ConfigError(
            "do not put credentials in the Weaviate URL; set weaviate_api_key "
            "(CONVMEM_WEAVIATE_API_KEY) instead"
        )
    if parts.path not in ("", "/"):
        raise ConfigError(f"invalid Weaviate URL {url!r}: a path is not supported")
    secure = SCHEMES[scheme]
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - set(_PARAMETERS)
    if unknown:
        raise ConfigError(
            f"invalid Weaviate URL {url!r}: unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(_PARAMETERS)}"
        )
    try:
        replication = int(query.get("replication") or 1)
    except ValueError:
        replication = 0
    if not 1 <= replication <= 64:
        raise ConfigError(
            f"invalid Weaviate URL {url!r}: replication must be a number of copies, 1 to 64"
        )
    consistency = (query.get("consistency") or "").upper() or None
    if consistency is None and replication > 1:
        consistency = "QUORUM"
    if consistency is not None and consistency not in CONSISTENCY_LEVELS:
        raise ConfigError(
            f"invalid Weaviate URL {url!r}: consistency must be one of "
            f"{', '.join(CONSISTENCY_LEVELS)}"
        )
    grpc = query.get("grpc_port")
    try:
        grpc_number = int(grpc) if grpc is not None else grpc_port
    except ValueError:
        raise ConfigError(f"invalid Weaviate URL {url!r}: grpc_port must be a number") from None
    if grpc_number is None:
        grpc_number = 443 if secure else 50051
    return WeaviateTarget(
        host=parts.hostname,
        port=port or (443 if secure else 8080),
        secure=secure,
        grpc_host=query.get("grpc_host") or parts.hostname,
        grpc_port=grpc_number,
        prefix=query.get("prefix") or None,
        replication=replication,
        consistency=consistency,
    )
