"""Knowledge over MCP, in process (``async with Client(server)``): the
``search_knowledge`` tool, knowledge inside ``recall``, and the knowledge-base
resources, each with its error paths. Real SQLite, real indexing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.server import MCPServer

from convmem_mcp.server import AppState, create_server
from memory_core.memory import Memory
from tests.knowledge.conftest import Site, site  # noqa: F401 - the live site fixture
from tests.mcp_server.conftest import PHONE, error_text, first_exchange, ok

RETURNS = """\
# Returns policy

## Damaged items

A router that arrives damaged can be returned within 60 days for a full refund.

## Change of mind

Unopened products can be returned within 30 days.
"""
RETURNS_URI = "https://help.example.com/returns"


def add_knowledge(memory: Memory, tenant: str = "default") -> dict[str, str]:
    """Two knowledge bases: help (a Markdown policy, tagged) and marketing (one line)."""
    knowledge = memory.tenant(tenant).knowledge
    help_kb = knowledge.bases.add("help", description="Policies")
    policy = knowledge.sources.add(
        "help",
        content=RETURNS,
        source_type="markdown",
        uri=RETURNS_URI,
        title="Returns policy",
        tags=["policy"],
    )
    marketing = knowledge.bases.add("marketing")
    sale = knowledge.sources.add(
        "marketing", content="Router sale: routers are 20% off.", title="Sale"
    )
    return {"help": help_kb.id, "policy": policy.id, "marketing": marketing.id, "sale": sale.id}


# -- search_knowledge ------------------------------------------------------------------


async def test_search_knowledge_returns_cited_passages_best_first(
    server: MCPServer[AppState], memory: Memory
) -> None:
    ids = add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        got = ok(
            await client.call_tool("search_knowledge", {"query": "can I return a damaged router?"})
        )
    assert got["query"] == "can I return a damaged router?"
    best = got["passages"][0]
    assert best["text"] == (
        "A router that arrives damaged can be returned within 60 days for a full refund."
    )
    assert best["citation"] == {
        "source_id": ids["policy"],
        "kb_id": ids["help"],
        "source_title": "Returns policy",
        "uri": RETURNS_URI,
        "page_title": "Returns policy",
        "heading_path": ["Returns policy", "Damaged items"],
        "position": 0,
        "page": None,
    }
    assert best["cite_as"] == f"Returns policy › Damaged items ({RETURNS_URI}, chunk 1)"
    scores = [p["score"] for p in got["passages"]]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


async def test_search_knowledge_filters_by_base_tag_source_limit_and_score(
    server: MCPServer[AppState], memory: Memory
) -> None:
    ids = add_knowledge(memory)
    query = {"query": "router"}
    async with Client(server, raise_exceptions=True) as client:

        async def sources(**extra: object) -> set[str]:
            got = ok(await client.call_tool("search_knowledge", {**query, **extra}))
            return {p["citation"]["source_id"] for p in got["passages"]}

        assert await sources() == {ids["policy"], ids["sale"]}
        assert await sources(knowledge_bases=["marketing"]) == {ids["sale"]}
        assert await sources(knowledge_bases=[ids["help"]]) == {ids["policy"]}
        assert await sources(source_tags=["policy"]) == {ids["policy"]}
        assert await sources(advanced={"sources": [ids["sale"]]}) == {ids["sale"]}
        top = ok(await client.call_tool("search_knowledge", {**query, "limit": 1}))
        assert len(top["passages"]) == 1
        close = {"query": "return a damaged router", "advanced": {"min_score": 0.5}}
        strict = ok(await client.call_tool("search_knowledge", close))
        assert [p["citation"]["heading_path"][-1] for p in strict["passages"]] == ["Damaged items"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"query": "router", "knowledge_bases": ["faq"]},
            "knowledge base 'faq' does not exist; the knowledge bases here are: 'help', "
            "'marketing'",
        ),
        ({"query": "router", "advanced": {"sources": ["src_nope"]}}, "src_nope"),
        ({"query": "router", "source_tags": ["not a tag!"]}, "invalid tag"),
        ({"query": "   "}, "query is empty"),
        ({"query": "router", "advanced": {"min_score": 1.5}}, "advanced.min_score"),
    ],
)
async def test_search_knowledge_errors_say_what_to_fix(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, object], expected: str
) -> None:
    add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("search_knowledge", arguments))
    assert expected in message
    assert "remember" not in message  # no customer hint on a knowledge error


async def test_search_knowledge_without_any_knowledge_base_says_how_to_add_one(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("search_knowledge", {"query": "returns"}))
    assert "no knowledge base" in message and "convmem knowledge add" in message


async def test_search_knowledge_stays_in_the_servers_tenant(memory: Memory) -> None:
    memory.tenants.add("acme")
    add_knowledge(memory, tenant="acme")
    async with Client(create_server(memory=memory), raise_exceptions=True) as default:
        message = error_text(await default.call_tool("search_knowledge", {"query": "router"}))
        assert "no knowledge base" in message
    async with Client(create_server(memory=memory, tenant="acme")) as acme:
        assert ok(await acme.call_tool("search_knowledge", {"query": "router"}))["passages"]


# -- knowledge in recall -----------------------------------------------------------------


async def test_recall_with_knowledge_adds_cited_passages_beside_the_customer(
    server: MCPServer[AppState], memory: Memory
) -> None:
    ids = add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange()))
        plain = ok(await client.call_tool("recall", {"customer": PHONE, "query": "router returns"}))
        assert all(i["type"] != "knowledge" for i in plain["items"])
        got = ok(
            await client.call_tool(
                "recall",
                {
                    "customer": PHONE,
                    "query": "return a damaged router",
                    "include_knowledge": True,
                    "max_knowledge": 2,
                    "knowledge_bases": ["help"],
                },
            )
        )
    knowledge = [i for i in got["items"] if i["type"] == "knowledge"]
    customer = [i for i in got["items"] if i["type"] != "knowledge"]
    assert len(knowledge) == 2
    assert {i["citation"]["source_id"] for i in knowledge} == {ids["policy"]}
    first = knowledge[0]
    assert first["text"].startswith("A router that arrives damaged")
    assert first["citation"]["heading_path"] == ["Returns policy", "Damaged items"]
    assert first["citation"]["uri"] == RETURNS_URI
    assert first["provenance"]["source"].startswith("Returns policy › Damaged items")
    assert customer and all(i["citation"] is None for i in customer)
    assert {i["provenance"]["conversation_id"] for i in customer if i["type"] == "message"} == {
        saved["conversation_id"]
    }
    assert (
        'type="knowledge' in got["context"] and "Returns policy › Damaged items" in got["context"]
    )
    assert "I was charged twice for Premium this month." in got["context"]


async def test_recall_with_knowledge_uses_the_conversation_when_no_query(
    server: MCPServer[AppState], memory: Memory
) -> None:
    add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        chat = ok(
            await client.call_tool(
                "remember",
                {
                    "channel": "chat",
                    "customer": PHONE,
                    "messages": [{"role": "customer", "text": "My router arrived damaged."}],
                },
            )
        )
        got = ok(
            await client.call_tool(
                "recall",
                {
                    "customer": PHONE,
                    "conversation_id": chat["conversation_id"],
                    "include_knowledge": True,
                },
            )
        )
    assert got["query"] == "My router arrived damaged."
    assert any(i["type"] == "knowledge" for i in got["items"])


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"include_knowledge": True}, "include_knowledge needs something to search for"),
        ({"include_knowledge": True, "query": "  "}, "give a query"),
        (
            {"include_knowledge": True, "query": "router", "knowledge_bases": ["faq"]},
            "knowledge base 'faq' does not exist; the knowledge bases here are: 'help'",
        ),
        ({"include_knowledge": True, "query": "router", "max_knowledge": 21}, "max_knowledge"),
    ],
)
async def test_recall_with_knowledge_errors_say_what_to_fix(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, object], expected: str
) -> None:
    add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        message = error_text(await client.call_tool("recall", {"customer": PHONE, **arguments}))
    assert expected in message


# -- resources ---------------------------------------------------------------------------


async def _read_json(client: Client, uri: str) -> object:
    content = (await client.read_resource(uri)).contents[0]
    assert content.mime_type == "application/json"
    return json.loads(getattr(content, "text", ""))


async def test_knowledge_base_resources_list_bases_and_their_sources(
    server: MCPServer[AppState], memory: Memory
) -> None:
    ids = add_knowledge(memory)
    broken = memory.knowledge.bases.add("web")
    failed = memory.knowledge.sources.add("web", "http://127.0.0.1:9/", title="Unreachable site")
    assert failed.status.value == "failed"
    async with Client(server, raise_exceptions=True) as client:
        listing = await _read_json(client, "convmem://knowledge")
        assert isinstance(listing, dict)
        by_name = {kb["name"]: kb for kb in listing["knowledge_bases"]}
        assert list(by_name) == ["help", "marketing", "web"]
        assert by_name["help"]["id"] == ids["help"]
        assert by_name["help"]["description"] == "Policies"
        assert by_name["help"]["sources"] == {"ready": 1}
        assert by_name["web"]["sources"] == {"failed": 1}
        assert by_name["help"]["uri"] == f"convmem://knowledge/{ids['help']}"

        failing = await _read_json(client, "convmem://knowledge?status=failed")
        assert isinstance(failing, dict)
        assert [kb["id"] for kb in failing["knowledge_bases"]] == [broken.id]

        one = await _read_json(client, by_name["help"]["uri"])
        assert isinstance(one, dict)
        assert (one["id"], one["name"]) == (ids["help"], "help")
        [source] = one["sources"]
        assert source["id"] == ids["policy"] and source["title"] == "Returns policy"
        assert (source["type"], source["uri"], source["status"]) == (
            "markdown",
            RETURNS_URI,
            "ready",
        )
        assert source["chunks"] == 2 and source["tags"] == ["policy"] and source["version"] == 1

        by_name_too = await _read_json(client, "convmem://knowledge/web")
        assert isinstance(by_name_too, dict)
        [site] = by_name_too["sources"]
        assert site["status"] == "failed" and site["error"]
        ready_only = await _read_json(client, "convmem://knowledge/web?status=ready")
        assert isinstance(ready_only, dict) and ready_only["sources"] == []


async def test_reading_an_unknown_knowledge_base_or_status_is_a_protocol_error(
    server: MCPServer[AppState], memory: Memory
) -> None:
    add_knowledge(memory)
    async with Client(server, raise_exceptions=True) as client:
        with pytest.raises(MCPError, match="knowledge base 'faq' does not exist"):
            await client.read_resource("convmem://knowledge/faq")
        with pytest.raises(MCPError, match="unknown source status 'broken'"):
            await client.read_resource("convmem://knowledge?status=broken")
        with pytest.raises(MCPError, match="unknown source status"):
            await client.read_resource("convmem://knowledge/help?status=broken")


async def test_knowledge_resources_stay_in_the_servers_tenant(memory: Memory) -> None:
    memory.tenants.add("acme")
    ids = add_knowledge(memory, tenant="acme")
    async with Client(create_server(memory=memory), raise_exceptions=True) as default:
        listing = await _read_json(default, "convmem://knowledge")
        assert listing == {"knowledge_bases": []}
        with pytest.raises(MCPError, match="does not exist"):
            await default.read_resource(f"convmem://knowledge/{ids['help']}")


# -- knowledge-base management (admin) ------------------------------------------------------


async def test_an_admin_agent_adds_refreshes_lists_and_removes_sources(
    server: MCPServer[AppState],
    memory: Memory,
    site: Site,  # noqa: F811 - the fixture imported above
) -> None:
    site.html(
        "/returns",
        "Returns",
        "<h2>Damaged items</h2><p>A router that arrives damaged can be returned within 60 "
        "days for a full refund.</p>",
    )
    async with Client(server, raise_exceptions=True) as client:

        async def call(tool: str, **arguments: object) -> dict[str, Any]:
            return ok(await client.call_tool(tool, arguments))

        web = await call(
            "add_knowledge_source",
            knowledge_base="help",  # a new name: the knowledge base is created
            url=f"{site.base}/returns",
            source_tags=["policy"],
            max_pages=5,
        )
        assert (web["type"], web["status"], web["tags"], web["version"]) == (
            "web",
            "ready",
            ["policy"],
            1,
        )
        text = await call(
            "add_knowledge_source",
            knowledge_base="help",
            text="# Shipping\n\nParcels ship within two business days.",
            title="Shipping",
        )
        assert (text["type"], text["status"]) == ("markdown", "ready")
        listing = await call("list_knowledge_sources")
        [help_kb] = listing["knowledge_bases"]
        assert help_kb["name"] == "help"
        assert [s["id"] for s in help_kb["sources"]] == [web["id"], text["id"]]
        found = await call("search_knowledge", query="return a damaged router", limit=1)
        assert found["passages"][0]["citation"]["source_id"] == web["id"]

        updated = await call(
            "refresh_knowledge_source",
            source_id=text["id"],
            text="# Shipping\n\nParcels ship the next business day.",
        )
        assert updated["version"] == 2
        shipping = await call("search_knowledge", query="when do parcels ship", limit=1)
        assert "next business day" in shipping["passages"][0]["text"]
        site.html("/returns", "Returns", "<p>Damaged routers: returns within 90 days.</p>")
        recrawled = await call("refresh_knowledge_source", source_id=web["id"])
        assert (recrawled["version"], recrawled["status"]) == (2, "ready")

        removed = await call("remove_knowledge_source", source_id=web["id"])
        assert removed["target"] == f"source:{web['id']}" and removed["deleted"]["chunks"] >= 1
        ready = await call("list_knowledge_sources", knowledge_base="help", status="ready")
        assert [s["id"] for s in ready["knowledge_bases"][0]["sources"]] == [text["id"]]
    assert [s.id for s in memory.knowledge.sources.list()] == [text["id"]]
    assert memory.governance.audit.list(action="add_source")


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("add_knowledge_source", {"knowledge_base": "help"}, "give url"),
        ("add_knowledge_source", {"knowledge_base": "help", "text": "Hi"}, "needs a title"),
        (
            "add_knowledge_source",
            {"knowledge_base": "help", "url": "/etc/passwd"},
            "invalid arguments: url:",
        ),
        (
            "add_knowledge_source",
            {"knowledge_base": "help", "url": "file:///etc/passwd"},
            "invalid arguments: url:",
        ),
        ("add_knowledge_source", {"knowledge_base": "kb_nope", "text": "x", "title": "t"}, "nope"),
        ("refresh_knowledge_source", {"source_id": "POLICY", "text": "x"}, None),
        ("refresh_knowledge_source", {"source_id": "POLICY"}, "was added as text"),
        ("refresh_knowledge_source", {"source_id": "src_nope"}, "does not exist"),
        ("remove_knowledge_source", {"source_id": "src_nope"}, "does not exist"),
        ("list_knowledge_sources", {"knowledge_base": "faq"}, "knowledge base 'faq'"),
        ("list_knowledge_sources", {"status": "broken"}, "invalid arguments: status:"),
    ],
)
async def test_knowledge_management_errors_say_what_to_fix(
    server: MCPServer[AppState],
    memory: Memory,
    tool: str,
    arguments: dict[str, object],
    expected: str | None,
) -> None:
    ids = add_knowledge(memory)
    arguments = {k: ids["policy"] if v == "POLICY" else v for k, v in arguments.items()}
    before = [(s.id, s.version) for s in memory.knowledge.sources.list()]
    async with Client(server, raise_exceptions=True) as client:
        result = await client.call_tool(tool, arguments)
    if expected is None:  # a text source refreshed with new text: fine
        assert ok(result)["version"] == 2
        return
    assert expected in error_text(result)
    assert [(s.id, s.version) for s in memory.knowledge.sources.list()] == before
