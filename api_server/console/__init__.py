"""The console for human agents, served under ``/console`` beside the REST API.

Server-rendered pages (Jinja2 templates and a small script shipped in this
package; nothing is fetched from elsewhere at run time): look up a customer by
any identifier, read the profile card (identifiers, traits with their sources
and conflicts, the observation timeline with its history and evidence,
conversations with summaries and transcripts), see what recall would hand an AI
agent, search the knowledge bases, follow an open conversation live (server-sent
events), and act on memory (correct or retract an observation, set a trait,
merge profiles), each action audited under the signing-in key's actor name.

Sign-in takes an API key (or a static token), kept in an HttpOnly,
``SameSite=Strict`` cookie; every form that changes something carries a CSRF
token. The key's role decides which actions are offered, and the server checks
the role again on every action. Every request acts on the handle of the key's
tenant, never on a tenant named by the client.

Starlette, Jinja2 and sse-starlette are imported only when :func:`create_console`
is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from convmem_mcp.auth import TokenTable
    from memory_core.memory import Memory

__all__ = ["create_console"]


def create_console(
    memory: Memory,
    *,
    tokens: TokenTable | None = None,
    poll_interval: float = 1.0,
) -> ASGIApp:
    """The console as an ASGI application, to mount at ``/console``.

    ``memory`` is any handle of the store (each request acts on the handle of
    its key's tenant); ``tokens`` the static tokens table the server accepts
    besides API keys (None: API keys only); ``poll_interval`` how often, in
    seconds, the live view of an open conversation looks for news.
    """
    from convmem_api.console._app import build

    app: ASGIApp = build(memory, tokens=tokens, poll_interval=poll_interval)
    return app
