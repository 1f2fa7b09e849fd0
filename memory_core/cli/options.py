"""Options every ``convmem`` command that opens a store shares, and the settings
they select."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memory_core.config import Settings, load_settings

__all__ = ["DbOpt", "EmbedderOpt", "JsonOpt", "SecondEmbedderOpt", "TenantOpt", "settings_for"]

DbOpt = Annotated[
    Path | None, typer.Option("--db", help="SQLite file to use (default: the configured store).")
]
TenantOpt = Annotated[str | None, typer.Option("--tenant", "-t", help="Tenant to use.")]
EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", help="Embedder: local (default), hash[:DIM], litellm:<model>."),
]
SecondEmbedderOpt = Annotated[
    str | None,
    typer.Option(
        "--second-embedder",
        help="Opt-in two-embedder mode for messages: e5 (multilingual-e5-small, extra e5).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def settings_for(
    db: Path | None,
    tenant: str | None,
    embedder: str | None,
    second_embedder: str | None = None,
) -> Settings:
    """The configured settings, with ``--db`` / ``--tenant`` / ``--embedder`` /
    ``--second-embedder`` applied."""
    backend = f"sqlite:///{db.resolve()}" if db is not None else None
    return load_settings(
        backend=backend, tenant=tenant, embedder=embedder, second_embedder=second_embedder
    )
