"""What the MCP tools cost an LLM in tokens, now and before issue 14.

Two figures, both counted with the project's own estimator
(:func:`memory_core.recall.count_tokens`, words and punctuation; tiktoken's
encodings cannot be downloaded offline), and in characters:

* the **tool list**: per tool, its name, description and input schema - what a
  host hands the model on every turn - summed over the tools a caller of each
  role is listed (read, write, admin; stdio lists what admin does), and the
  whole ``tools/list`` result as it goes over the wire (titles, output schemas
  and annotations too);
* a **typical recall**: the text content of a ``recall`` result (what the model
  reads) for one seeded customer (:func:`seed_typical_customer`: three
  conversations on three channels, two of them ended and extracted, three
  traits set by the agent - one of which extraction found too).

:data:`PREVIOUS` holds the same figures for the tools as they were before issue
14 (commit 672bf4d), measured with the same seed and the same counting by
running :func:`listing_figures` and :func:`recall_figures`' code against that
commit's server (``recall`` then took ``profile`` where it takes ``customer``)::

    git archive 672bf4d | tar -x -C /tmp/v1   # then, with /tmp/v1 first on PYTHONPATH
    # (memory_core, and mcp_server importable as convmem_mcp):
    # await listing_figures(client), await recall_figures(client, {"profile": PHONE, ...})
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp import Client
from pydantic import BaseModel, computed_field

from memory_core import tools
from memory_core.memory import Memory
from memory_core.models import AccessRole
from memory_core.recall import count_tokens

__all__ = [
    "CUSTOMER",
    "PREVIOUS",
    "RECALL_QUERY",
    "Cost",
    "TokenFigures",
    "listing_figures",
    "measure_tokens",
    "recall_figures",
    "seed_typical_customer",
]

CUSTOMER = "phone:+16175550142"
RECALL_QUERY = "refund for the double charge"


class Cost(BaseModel):
    """A size in characters and in estimated tokens."""

    chars: int
    tokens: int

    @classmethod
    def of(cls, text: str) -> Cost:
        return cls(chars=len(text), tokens=count_tokens(text))


class TokenFigures(BaseModel):
    """Token costs of the tool list (per role) and of a typical recall result."""

    listed: dict[str, Cost]
    """Per role (read, write, admin): names, descriptions and input schemas of the
    tools that role is listed."""
    tools: dict[str, int]
    """Per role: how many tools it is listed."""
    wire: Cost
    """The whole tools/list result (every tool), as sent."""
    recall: Cost
    """The text content of a typical recall result."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratios(self) -> dict[str, float]:
        """Now / before (:data:`PREVIOUS`), in tokens."""
        out = {
            f"listed_{role}": round(cost.tokens / PREVIOUS.listed[role].tokens, 2)
            for role, cost in self.listed.items()
            if role in PREVIOUS.listed
        }
        out["wire"] = round(self.wire.tokens / PREVIOUS.wire.tokens, 2)
        out["recall"] = round(self.recall.tokens / PREVIOUS.recall.tokens, 2)
        return out


_ROLES = [role.value for role in AccessRole]
_BEFORE_LISTED = Cost(chars=14_558, tokens=5_832)  # every role was listed all 6 tools

PREVIOUS = TokenFigures.model_construct(
    listed=dict.fromkeys(_ROLES, _BEFORE_LISTED),
    tools=dict.fromkeys(_ROLES, 6),
    wire=Cost(chars=32_164, tokens=13_910),
    recall=Cost(chars=12_082, tokens=4_027),  # its context block alone: 2,561 / 937
)
"""The figures before issue 14 (commit 672bf4d; see the module docstring)."""


def seed_typical_customer(memory: Memory) -> None:
    """One customer as an agent meets them: a voice call about a double charge (ended),
    an email about a router and a move (ended), a chat in progress, and three traits
    the agent set (``preferred_channel: sms`` was also extracted from the call)."""
    t0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)

    def conversation(
        channel: str, turns: Sequence[tuple[str, str]], start: datetime, cid: str, ended: bool
    ) -> None:
        memory.ingest(
            {
                "id": cid,
                "channel": channel,
                "customer": [CUSTOMER],
                "ended": False,
                "messages": [
                    {"role": role, "text": text, "ts": start + timedelta(minutes=i)}
                    for i, (role, text) in enumerate(turns)
                ],
            }
        )
        if ended:
            memory.conversations.end(cid)

    conversation(
        "voice",
        [
            ("customer", "Hi, I was charged twice for my Premium plan this month."),
            (
                "human_agent",
                "I see the duplicate charge of $19.99. I have refunded it, it takes 3-5 "
                "business days.",
            ),
            ("customer", "Thanks. Please text me, don't call, I'm at work all day."),
            ("human_agent", "Noted, we will contact you by SMS from now on."),
        ],
        t0,
        "cnv_voice1",
        True,
    )
    conversation(
        "email",
        [
            ("customer", "My router keeps dropping the connection every evening."),
            (
                "human_agent",
                "Please restart it and update the firmware; if it persists we will replace it.",
            ),
            (
                "customer",
                "I moved to Denver last month, so send any replacement to my new address.",
            ),
        ],
        t0 + timedelta(days=9),
        "cnv_email1",
        True,
    )
    conversation(
        "chat",
        [("customer", "Did the refund for the double charge go through?")],
        t0 + timedelta(days=20),
        "cnv_chat1",
        False,
    )
    for key, value in (("preferred_channel", "sms"), ("tier", "gold"), ("language", "en")):
        memory.traits.set(CUSTOMER, key, value, source="agent")


async def listing_figures(client: Client) -> tuple[dict[str, Cost], dict[str, int], Cost]:
    """The tool-list costs per role, the tools per role, and the whole wire result."""
    listed = (await client.list_tools()).tools
    wire = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed]
    seen = {
        t["name"]: json.dumps(
            {"name": t["name"], "description": t["description"], "inputSchema": t["inputSchema"]}
        )
        for t in wire
    }
    per_role: dict[str, Cost] = {}
    counts: dict[str, int] = {}
    for role in _ROLES:
        names = [spec.name for spec in tools.tools_for(role) if spec.name in seen]
        per_role[role] = Cost.of("".join(seen[name] for name in names))
        counts[role] = len(names)
    return per_role, counts, Cost.of(json.dumps(wire))


async def recall_figures(client: Client, arguments: dict[str, Any]) -> Cost:
    """The cost of the text content of one recall call."""
    result = await client.call_tool("recall", arguments)
    if result.is_error:
        raise RuntimeError(f"recall failed: {result.content}")
    return Cost.of("".join(getattr(block, "text", "") for block in result.content))


async def measure_tokens(memory: Memory) -> TokenFigures:
    """The figures now, in process, on ``memory`` (a fresh handle: the typical customer
    is seeded into it)."""
    from .server import create_server

    seed_typical_customer(memory)
    async with Client(create_server(memory=memory), raise_exceptions=True) as client:
        listed, counts, wire = await listing_figures(client)
        recall = await recall_figures(client, {"customer": CUSTOMER, "query": RECALL_QUERY})
    return TokenFigures(listed=listed, tools=counts, wire=wire, recall=recall)
