"""Drive the Conversation Memory MCP server with the MCP Python SDK's client.

Starts `convmem serve` over stdio on a throwaway store (with the deterministic
`hash` embedder, so nothing is downloaded), stores an SMS exchange with the
`remember` tool, then asks `recall` what matters for a follow-up on another
channel, as an agent would before answering, and `search_knowledge` what the
returns policy (added to the store beforehand) says, with its citation.

    pip install 'conversation-memory[mcp]'
    python examples/mcp_client.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from mcp import Client, StdioServerParameters

from memory_core import Memory

RETURNS_POLICY = """\
# Returns

## Damaged items

A product that arrives damaged can be returned within 60 days for a full refund.
"""


def convmem() -> str:
    """The `convmem` command installed next to this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("convmem")
    found = str(beside) if beside.is_file() else shutil.which("convmem")
    if found is None:
        sys.exit("convmem is not installed: pip install 'conversation-memory[mcp]'")
    return found


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # An administrator's step, not the agent's: a knowledge base with one policy.
        with Memory.open(f"{tmp}/memory.db", embedder="hash") as memory:
            memory.tenants.add("demo")
            memory.tenant("demo").knowledge.bases.add("help")
            memory.tenant("demo").knowledge.sources.add(
                "help",
                content=RETURNS_POLICY,
                source_type="markdown",
                uri="https://help.example.com/returns",
                title="Returns policy",
            )

        server = StdioServerParameters(
            command=convmem(),
            args=["serve", "--db", f"{tmp}/memory.db", "--embedder", "hash", "--tenant", "demo"],
            cwd=tmp,
        )
        async with Client(server) as client:
            tools = await client.list_tools()
            print("tools:", ", ".join(t.name for t in tools.tools))

            stored = await client.call_tool(
                "remember",
                {
                    "channel": "sms",
                    "customer": "phone:+1 617 555 0142",
                    "messages": [
                        {"role": "customer", "text": "I was charged twice for Premium in May."},
                        {"role": "human_agent", "text": "Refund issued, 3-5 business days."},
                        {"role": "customer", "text": "Thanks. Please text me, don't call."},
                    ],
                },
            )
            saved = stored.structured_content
            assert not stored.is_error and saved is not None, stored.content
            print(f"remembered {saved['added']} messages in {saved['conversation_id']}")

            recalled = await client.call_tool(
                "recall",
                {"customer": "phone:(617) 555-0142", "query": "refund for the double charge"},
            )
            result = recalled.structured_content
            assert not recalled.is_error and result is not None, recalled.content
            print(f"recalled for profile {result['profile_id']}:")
            for item in result["items"]:
                where = item["provenance"].get("channel") or "-"
                print(f"  {item['score']:.2f}  [{where}] {item['text']}")
            print()
            print(recalled.content[0].text)  # the context block: what the agent reads

            found = await client.call_tool(
                "search_knowledge", {"query": "can I return a damaged product?", "limit": 1}
            )
            answer = found.structured_content
            assert not found.is_error and answer is not None, found.content
            for passage in answer["passages"]:
                print(f"\nknowledge: {passage['text']}\n  source: {passage['cite_as']}")


if __name__ == "__main__":
    asyncio.run(main())
