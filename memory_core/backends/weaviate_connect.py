"""Connecting to Weaviate from a backend URL.

``weaviate://host[:port]`` is plain HTTP (port 8080 by default);
``weaviates://host[:port]`` (or ``weaviate+https://``) is TLS (port 443).
Query parameters: ``grpc_port`` (default 50051, or 443 with TLS), ``grpc_host``
(default: the same host), ``prefix`` (collection name prefix, default
``Convmem``). Hosts of Weaviate Cloud (``*.weaviate.cloud``, ``*.weaviate.network``)
connect through ``connect_to_weaviate_cloud``, which knows their gRPC address.

The client is created with ``skip_init_checks=True``: it then makes no call
besides the server's own endpoints (the default init checks include a version
lookup on pypi.org).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from memory_core.errors import ConfigError

__all__ = ["SCHEMES", "WeaviateTarget", "is_weaviate_url", "parse_weaviate_url"]

SCHEMES = {"weaviate": False, "weaviate+http": False, "weaviates": True, "weaviate+https": True}
_CLOUD_SUFFIXES = (".weaviate.cloud", ".weaviate.network")


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
    unknown = set(query) - {"grpc_port", "grpc_host", "prefix"}
    if unknown:
        raise ConfigError(
            f"invalid Weaviate URL {url!r}: unknown parameter(s) {', '.join(sorted(unknown))}; "
            "known: grpc_port, grpc_host, prefix"
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
    )
