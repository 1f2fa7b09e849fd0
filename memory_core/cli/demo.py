"""``convmem demo``: one customer across voice, SMS and chat, resolved to one
profile, then recalled for the next interaction."""

from __future__ import annotations

import tempfile
from functools import partial
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memory_core.cli.commands import read_conversations
from memory_core.cli.render import show_recall
from memory_core.config import load_settings
from memory_core.errors import ConfigError
from memory_core.memory import Memory


def _demo_file() -> Path:
    return Path(str(resources.files("memory_core") / "data" / "demo_conversations.jsonl"))


def run_demo(
    console: Console,
    *,
    db: Path | None,
    embedder: str | None,
    serve_console: bool = False,
    port: int = 0,
) -> None:
    if serve_console:
        _run_with_console(console, db=db, embedder=embedder, port=port)
        return
    with tempfile.TemporaryDirectory(prefix="convmem-demo-") as tmp:
        path = db if db is not None else Path(tmp) / "demo.db"
        settings = load_settings(backend=f"sqlite:///{path}", embedder=embedder)
        console.rule("[bold]Conversation Memory demo")
        console.print(f"store: {path}" + ("" if db else " (throwaway)"))
        with Memory.open(settings=settings) as memory:
            _run(console, memory)
    console.print(
        "\nSee this customer in the console for human agents, in a browser: "
        "[bold]convmem demo --console[/] (needs the 'api' extra: pip install '.\\[api]')"
    )


def _run(console: Console, memory: Memory) -> None:
    conversations = read_conversations(_demo_file())
    steps = Table(title="1. Ingest: one customer, three channels", expand=True)
    # Identifiers and ids are copied and compared: wrap them, never cut them short.
    steps.add_column("conversation", overflow="fold")
    steps.add_column("channel")
    steps.add_column("customer identifiers as received", overflow="fold")
    steps.add_column("resolved profile", overflow="fold")
    for conv in conversations:
        result = memory.ingest(conv)
        steps.add_row(
            conv.subject or result.conversation.id,
            conv.channel.value,
            ", ".join(conv.customer),
            result.profile.id,
        )
    console.print(steps)
    console.print(
        "The voice call and the SMS came from the same number written two ways: "
        "both normalise to [bold]+16175550142[/], so they share a profile. "
        "The chat came from an email address nobody knew yet, so it got its own profile."
    )

    console.rule("2. The chat agent links the email to the phone on the account")
    chat_profile = memory.profiles.get("email:dana.whitfield@example.com")
    survivor = memory.profiles.link(chat_profile.id, "phone:617 555 0142")
    ids = memory.profiles.identifiers(survivor.id)
    console.print(
        f"Profiles {chat_profile.id} and {survivor.id} are now one: [bold]{survivor.id}[/]"
    )
    console.print("identifiers: " + ", ".join(str(i) for i in ids))
    console.print(
        f"the old id {chat_profile.id} still resolves to "
        f"{memory.profiles.get(chat_profile.id).id}; live profiles: {len(memory.profiles.list())}"
    )
    memory.traits.set(survivor.id, "plan", "Premium", source="crm")

    console.rule("3. What the conversations taught: observations and summaries")
    memory.observations.extract_all()  # imported history is extracted on demand
    _show_extracted(console, memory, survivor.id)

    console.rule("4. Next interaction: recall for the agent")
    recalled = memory.recall(
        "phone:+16175550142",
        "Is the customer's wifi working now, and how do they want to be contacted?",
    )
    show_recall(console, recalled)


def _show_extracted(console: Console, memory: Memory, profile_id: str) -> None:
    observations = Table(title="Observations (what the customer told us)", expand=True)
    observations.add_column("kind", no_wrap=True)
    observations.add_column("observation", overflow="fold")
    observations.add_column("from", style="dim", overflow="fold")
    for obs in memory.observations.list(profile_id):
        channels = sorted({m.channel.value for m in memory.observations.explain(obs.id).messages})
        observations.add_row(obs.kind.value, obs.text, ", ".join(channels))
    console.print(observations)
    summaries = Table(title="Conversation summaries", expand=True)
    summaries.add_column("when", no_wrap=True)
    summaries.add_column("channel", no_wrap=True)
    summaries.add_column("summary", overflow="fold")
    summaries.add_column("outcome", no_wrap=True)
    for summary in sorted(memory.summaries.list(profile_id), key=lambda s: s.ts):
        summaries.add_row(
            f"{summary.ts:%Y-%m-%d}", summary.channel.value, summary.text, summary.outcome.value
        )
    console.print(summaries)


def _run_with_console(
    console: Console, *, db: Path | None, embedder: str | None, port: int
) -> None:
    """The demo in a store that is kept, then its console served until Ctrl-C."""
    try:
        from convmem_api.console.demo import serve_demo
    except ImportError as exc:  # fastapi, uvicorn, jinja2 ...
        raise ConfigError(
            f"the console needs the 'api' extra ({exc.name or exc} is missing): "
            "pip install 'conversation-memory[api]'"
        ) from exc
    path = db if db is not None else Path(tempfile.mkdtemp(prefix="convmem-demo-")) / "demo.db"
    settings = load_settings(backend=f"sqlite:///{path}", embedder=embedder)
    console.rule("[bold]Conversation Memory demo")
    console.print(f"store: {path} (kept: the console serves it)")
    with Memory.open(settings=settings) as memory:
        _run(console, memory)
        console.rule("The console for human agents")
        say = partial(console.print, soft_wrap=True, highlight=False)
        serve_demo(memory, say, port=port)
