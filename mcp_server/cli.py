"""``convmem serve``, ``convmem mcp-token`` and ``convmem bench-mcp``.

:func:`register` is the ``convmem.cli`` entry point (see ``pyproject.toml``).
The ``mcp`` SDK is imported only inside the commands that need it, so
``convmem`` works without the ``mcp`` extra.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from memory_core.config import Settings, load_settings
from memory_core.errors import ConfigError

__all__ = ["register"]

_DbOpt = Annotated[
    Path | None, typer.Option("--db", help="SQLite file to use (default: the configured store).")
]
_EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", help="Embedder: local (default), hash[:DIM], litellm:<model>."),
]


def register(app: typer.Typer) -> None:
    """Add the MCP commands to the ``convmem`` app."""
    app.command("serve")(serve)
    app.command("mcp-token")(mcp_token)
    app.command("bench-mcp")(bench_mcp)
    app.command("bench-api")(bench_api)


def _require_mcp() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the MCP server needs the 'mcp' extra: pip install 'conversation-memory[mcp]'"
        ) from exc


def _settings(db: Path | None, tenant: str | None, embedder: str | None) -> Settings:
    backend = f"sqlite:///{db.resolve()}" if db is not None else None
    return load_settings(backend=backend, tenant=tenant, embedder=embedder)


def _say(text: str) -> None:
    """Status lines go to stderr: over stdio, stdout carries the protocol."""
    print(text, file=sys.stderr, flush=True)


def serve(
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP (bearer tokens) instead of stdio.")
    ] = False,
    host: Annotated[str, typer.Option(help="HTTP: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port (0 picks a free one).")] = 8000,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", "-t", help="stdio: the tenant served (default: configured)."),
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            "--tokens-file",
            help='HTTP: JSON {"<token or sha256:hex>": "<tenant>"}; also $CONVMEM_MCP_TOKENS.',
        ),
    ] = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(help="HTTP: largest request body accepted (larger: 413).", min=1024),
    ] = 20 * 1024 * 1024,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="HTTP: a browser origin allowed to call the REST API (repeat; default: none).",
        ),
    ] = None,
    db: _DbOpt = None,
    embedder: _EmbedderOpt = None,
) -> None:
    """Serve memory to LLM agents over MCP (stdio), or over HTTP with --http: the
    REST API at /v1, the console at /console and MCP at /mcp, on one port.

    Over stdio the server acts for one tenant (--tenant). Over HTTP every request
    needs a bearer token, and the token decides the tenant: an API key of the
    store (`convmem keys create ROLE NAME --tenant T`) or a token of
    --tokens-file / $CONVMEM_MCP_TOKENS. With neither, the server refuses to start.
    Without the 'api' extra, HTTP serves MCP alone.
    """
    _require_mcp()
    from .auth import TokenTable
    from .server import create_server, run_http

    if not http:
        settings = _settings(db, tenant, embedder)
        _say(f"convmem MCP server on stdio (tenant {settings.tenant!r})")
        create_server(settings).run("stdio")
        return
    if tenant is not None:
        raise ConfigError(
            "--tenant applies to stdio only: over HTTP each bearer token names its tenant"
        )
    tokens = TokenTable.load(tokens_file)
    settings = _settings(db, None, embedder)
    keys = _api_keys(settings)
    if not len(tokens) and not keys:
        raise ConfigError(
            "refusing to serve HTTP without authentication: no API key is stored and no "
            "bearer token is configured. Create an API key (`convmem keys create write <name> "
            "--tenant <tenant>`, or memory.governance.keys.add) or configure tokens with "
            '$CONVMEM_MCP_TOKENS=\'{"<token>": "<tenant>"}\' or --tokens-file tokens.json '
            "(`convmem mcp-token <tenant>` makes a token)"
        )
    sources: list[str] = []
    if len(tokens):
        sources.append(f"tokens for {', '.join(tokens.tenants)}")
    if keys:
        counted = ", ".join(f"{tenant} ({n})" for tenant, n in sorted(keys.items()))
        sources.append(f"API keys for {counted}")
    accepted = "; ".join(sources)
    if not _has_api():
        _say("REST API and console not served: they need the 'api' extra")
        run_http(
            create_server(settings, tokens=tokens),
            host=host,
            port=port,
            on_ready=lambda url: _say(
                f"convmem MCP server listening on {url} (accepts {accepted})"
            ),
        )
        return
    from convmem_api.app import create_app

    from .server import serve_asgi

    app = create_app(
        settings,
        tokens=tokens,
        host=host,
        max_body_bytes=max_body_bytes,
        cors_origins=cors_origin or (),
    )

    def ready(base: str) -> None:
        _say(f"convmem REST API on {base}/v1 (OpenAPI {base}/openapi.json), console {base}/console")
        _say(f"convmem MCP server listening on {base}/mcp (accepts {accepted})")

    serve_asgi(app, host=host, port=port, on_ready=ready)


def _has_api() -> bool:
    try:
        import fastapi  # noqa: F401
    except ImportError:
        return False
    return True


def _api_keys(settings: Settings) -> dict[str, int]:
    """How many unrevoked API keys each tenant of the store has (tenants with none are
    left out). A SQLite store that does not exist yet is not created."""
    from memory_core.memory import Memory

    sqlite = settings.backend == "sqlite" or settings.backend.startswith("sqlite:///")
    if sqlite and not settings.sqlite_path().is_file():
        return {}
    # The embedder is never used here: "hash" avoids loading a model just to count keys.
    with Memory.open(settings=settings, embedder="hash") as memory:
        counts = {t: len(memory.tenant(t).governance.keys.list()) for t in memory.tenants.list()}
    return {tenant: n for tenant, n in counts.items() if n}


def mcp_token(
    tenant: Annotated[str, typer.Argument(help="The tenant this token gives access to.")],
) -> None:
    """Make a bearer token for `convmem serve --http`, and its config entry."""
    from .auth import TokenTable, digest, new_token

    token = new_token()
    TokenTable.from_mapping({token: tenant})  # checks the tenant name
    print(f"token:  {token}")
    print(f"config: {json.dumps({f'sha256:{digest(token)}': tenant})}")
    _say(
        "Give the token to the client (Authorization: Bearer <token>); put the config entry "
        "in --tokens-file or $CONVMEM_MCP_TOKENS. The config holds only the token's digest."
    )


def bench_mcp(
    calls: Annotated[int, typer.Option(help="Timed calls per tool and transport.")] = 200,
    warmup: Annotated[int, typer.Option(help="Untimed calls first, per tool and transport.")] = 20,
    messages: Annotated[int, typer.Option(help="Messages stored before measuring.")] = 500,
    embedder: Annotated[
        str, typer.Option(help="Embedder of the store (hash measures the protocol, not a model).")
    ] = "hash",
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    tokens_only: Annotated[
        bool, typer.Option("--tokens-only", help="Only the token costs (no servers started).")
    ] = False,
) -> None:
    """Per-tool MCP latency (p50/p95, warm) over stdio and HTTP, beside the Python API,
    and the token cost of the tool list and of a recall result, beside the previous tools.

    The same calls are made directly on the Python API in the same run, so the
    ratio is the protocol overhead.
    """
    _require_mcp()
    from rich.console import Console

    from .bench import print_mcp_bench, print_token_figures, run_mcp_bench, run_token_figures

    if tokens_only:
        figures = run_token_figures()
        if as_json:
            sys.stdout.write(figures.model_dump_json(indent=2) + "\n")
        else:
            print_token_figures(Console(), figures)
        return
    result = run_mcp_bench(calls=calls, warmup=warmup, messages=messages, embedder=embedder)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_mcp_bench(Console(), result)


def bench_api(
    calls: Annotated[int, typer.Option(help="Timed calls per way.")] = 200,
    warmup: Annotated[int, typer.Option(help="Untimed calls first, per way.")] = 20,
    messages: Annotated[int, typer.Option(help="Messages stored before measuring.")] = 500,
    embedder: Annotated[
        str, typer.Option(help="Embedder of the store (hash measures HTTP, not a model).")
    ] = "hash",
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """p50/p95 of POST /v1/profiles/{ref}/recall over HTTP (a live `convmem serve
    --http`) beside the same recall in process, in the same run."""
    _require_mcp()
    if not _has_api():
        raise ConfigError("bench-api needs the 'api' extra: pip install 'conversation-memory[api]'")
    from rich.console import Console

    from convmem_api.bench import print_api_bench, run_api_bench

    result = run_api_bench(calls=calls, warmup=warmup, messages=messages, embedder=embedder)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_api_bench(Console(), result)
