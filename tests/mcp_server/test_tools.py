"""The MCP server end to end in process (``async with Client(server)``): the tool
list and schemas, every tool's happy path and error path, resources, prompts."""

from __future__ import annotations

import pytest
from mcp import Client, MCPError
from mcp.server import MCPServer
from mcp.types import TextContent

from convmem_mcp.auth import TokenTable
from convmem_mcp.server import AppState, create_server
from convmem_mcp.tokens import seed_typical_customer
from memory_core import tools
from memory_core.memory import Memory
from tests.mcp_server.conftest import PHONE, error_text, first_exchange, ok

EXPECTED_TOOLS = {
    "recall",
    "search_knowledge",
    "remember",
    "get_profile",
    "update_profile",
    "list_observations",
    "correct_observation",
    "forget",
    "list_knowledge_sources",
    "add_knowledge_source",
    "refresh_knowledge_source",
    "remove_knowledge_source",
}


# -- listing ----------------------------------------------------------------------


async def test_lists_the_tools_with_the_input_models_as_schemas(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        # Over stdio and in process there is no API key: every tool is listed.
        assert set(listed) == EXPECTED_TOOLS == {spec.name for spec in tools.TOOLS}
        for spec in tools.TOOLS:
            tool = listed[spec.name]
            model_schema = spec.input_model.model_json_schema()
            assert tool.description == spec.description
            assert tool.title == spec.title
            assert tool.input_schema == tools.input_schema(spec.input_model)
            assert set(tool.input_schema["properties"]) == set(spec.input_model.model_fields)
            assert set(tool.input_schema.get("required", [])) == set(
                model_schema.get("required", [])
            )
            for name, prop in tool.input_schema["properties"].items():
                field = spec.input_model.model_fields[name]
                if name == "advanced":  # one object, its options named in its description
                    options = getattr(field.annotation, "model_fields", {})
                    assert all(option in prop["description"] for option in options)
                else:
                    assert prop.get("description") == field.description
            assert tool.output_schema == tools.output_schema(spec.output_model)
            assert set(tool.output_schema["properties"]) == set(spec.output_model.model_fields)
            assert "tenant" not in tool.input_schema["properties"]


async def test_annotations_mark_read_only_and_destructive_tools(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ann = {t.name: t.annotations for t in (await client.list_tools()).tools}
        assert ann["recall"] is not None and ann["recall"].read_only_hint is True
        search = ann["search_knowledge"]
        assert search is not None and (search.read_only_hint, search.idempotent_hint) == (
            True,
            True,
        )
        assert ann["get_profile"] is not None and ann["get_profile"].read_only_hint is True
        assert ann["forget"] is not None and ann["forget"].destructive_hint is True
        assert ann["update_profile"] is not None and ann["update_profile"].destructive_hint is True
        assert ann["remember"] is not None
        assert (ann["remember"].read_only_hint, ann["remember"].destructive_hint) == (False, False)
        crawling = {"add_knowledge_source", "refresh_knowledge_source"}  # they reach the web
        assert all(a is not None and a.open_world_hint is (n in crawling) for n, a in ann.items())


async def test_schema_bounds_are_enforced_before_the_tool_runs(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(
            await client.call_tool("recall", {"customer": PHONE, "max_messages": 500})
        )
        assert message == (
            "invalid arguments: max_messages: Input should be less than or equal to 50"
        )
        message = error_text(
            await client.call_tool("remember", {"customer": PHONE, "observations": [{"text": ""}]})
        )
        assert message.startswith("invalid arguments: observations.0.text: ")
        message = error_text(await client.call_tool("search_knowledge", {"query": "x", "limit": 0}))
        assert message.startswith("invalid arguments: limit: ")
        for message in (
            error_text(await client.call_tool("recall", {"customer": 7})),
            error_text(await client.call_tool("recall", {"customer": PHONE, "max_traits": "x"})),
        ):  # clean text: no pydantic banner, no documentation URL
            assert message.startswith("invalid arguments: ")
            assert "http" not in message and "validation error" not in message


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        (
            "recall",
            {"customer": PHONE, "since": "2025-01-01"},
            "invalid arguments: since: unknown argument at the top level: it is an advanced "
            "option, advanced={'since': ...}",
        ),
        (
            "recall",
            {"customer": PHONE, "advanced": {"min_scor": 0.5}},
            "invalid arguments: advanced.min_scor: unknown argument",
        ),
        ("recall", {"profile": PHONE}, "profile: unknown argument (the arguments are: customer,"),
        (
            "search_knowledge",
            {"query": "x", "top_k": 3},
            "invalid arguments: top_k: unknown argument (the arguments are: query, "
            "knowledge_bases, source_tags, limit, advanced)",
        ),
        ("forget", {"target": "profile", "id": PHONE}, "target: unknown argument"),
        ("get_profile", {"customer": PHONE, "recent_conversations": 2}, "unknown argument"),
    ],
)
async def test_unknown_arguments_are_refused_by_name(
    server: MCPServer[AppState], tool: str, arguments: dict[str, object], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True
    assert expected in error_text(result)


async def test_json_text_for_a_list_argument_is_read_as_the_list(
    server: MCPServer[AppState],
) -> None:
    # Some clients (Claude Desktop) send list and object arguments as JSON text.
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        got = ok(
            await client.call_tool(
                "recall", {"customer": PHONE, "advanced": '{"channels": ["voice"]}'}
            )
        )
        assert got["items"] == []
        # A text argument is left as sent, even when it reads as JSON.
        as_text = ok(await client.call_tool("recall", {"customer": PHONE, "query": '["refund"]'}))
        assert as_text["query"] == '["refund"]'


# -- remember -----------------------------------------------------------------------


async def test_remember_starts_a_conversation_then_appends_to_it(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        first = ok(await client.call_tool("remember", first_exchange(subject="billing")))
        assert first["added"] == 2 and first["status"] == "open" and first["channel"] == "sms"
        conv = first["conversation_id"]
        more = ok(
            await client.call_tool(
                "remember",
                {
                    "conversation_id": conv,
                    "messages": [{"role": "customer", "text": "Thanks!", "id": "sms-3"}],
                    "end_conversation": True,
                },
            )
        )
        assert (more["conversation_id"], more["profile_id"]) == (conv, first["profile_id"])
        assert more["status"] == "ended" and more["message_ids"] == ["sms-3"]
        stored = memory.conversations.list_messages(conv)
        assert [m.text for m in stored][-1] == "Thanks!"
        assert memory.profiles.get(PHONE).id == first["profile_id"]


async def test_remember_with_known_message_ids_is_safe_to_retry(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        args = first_exchange(conversation_id="crm-case-7")
        args["messages"] = [{**m, "id": f"m{i}"} for i, m in enumerate(args["messages"])]
        first = ok(await client.call_tool("remember", args))
        again = ok(await client.call_tool("remember", args))
        assert (first["added"], again["added"], again["skipped"]) == (2, 0, 2)
        assert again["conversation_id"] == "crm-case-7"


async def test_remember_links_new_identifiers_and_reports_merges(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        a = ok(await client.call_tool("remember", first_exchange()))
        b = ok(
            await client.call_tool(
                "remember",
                {
                    "channel": "email",
                    "customer": "email:Ann@Example.com",
                    "messages": [{"role": "customer", "text": "Hi, it's Ann."}],
                },
            )
        )
        assert a["profile_id"] != b["profile_id"]
        both = ok(
            await client.call_tool(
                "remember",
                {
                    "channel": "chat",
                    "customer": PHONE,
                    "link_identifiers": ["email:ann@example.com"],
                    "messages": [{"role": "customer", "text": "Same person, two addresses."}],
                },
            )
        )
        assert both["profile_id"] == a["profile_id"]  # the older profile survives
        assert both["merged_profile_ids"] == [b["profile_id"]]


@pytest.mark.parametrize("who", ["identifier", "profile id", "identifier to link"])
async def test_remember_refuses_another_customers_conversation_without_merging(
    server: MCPServer[AppState], memory: Memory, who: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ann = ok(await client.call_tool("remember", first_exchange()))
        bob_args = {
            "channel": "email",
            "customer": "email:bob@example.com",
            "messages": [{"role": "customer", "text": "Bob here, my parcel is late."}],
        }
        bob = ok(await client.call_tool("remember", bob_args))
        intruder = {
            "identifier": {"customer": "email:bob@example.com"},
            "profile id": {"customer": bob["profile_id"]},
            "identifier to link": {"link_identifiers": ["email:bob@example.com"]},
        }[who]
        message = error_text(
            await client.call_tool(
                "remember",
                {
                    **intruder,
                    "conversation_id": ann["conversation_id"],
                    "messages": [{"role": "customer", "text": "Bob again, in Ann's thread."}],
                    "observations": [{"text": "Prefers email.", "kind": "preference"}],
                },
            )
        )
        assert "belongs to another customer" in message
        # Nothing merged, nothing written to either customer.
        assert memory.profiles.get("email:bob@example.com").id == bob["profile_id"]
        assert memory.profiles.get(PHONE).id == ann["profile_id"] != bob["profile_id"]
        texts = [m.text for m in memory.conversations.list_messages(ann["conversation_id"])]
        assert "Bob again, in Ann's thread." not in texts
        assert memory.observations.list(ann["profile_id"]) == []
        assert memory.observations.list(bob["profile_id"]) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"customer": PHONE}, "channel is required"),
        ({"channel": "sms"}, "to start a conversation, give the customer"),
        ({"channel": "sms", "customer": "not an identifier"}, "kind:value"),
        ({"channel": "sms", "customer": PHONE, "link_identifiers": ["???"]}, "kind:value"),
        ({"channel": "fax", "customer": PHONE}, "invalid arguments: channel: "),
        ({"conversation_id": "cnv_nope"}, "no conversation 'cnv_nope'"),
        ({"conversation_id": "crm-1", "customer": PHONE}, "by also giving channel"),
    ],
)
async def test_remember_refuses_what_it_cannot_start(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, object], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(
            await client.call_tool(
                "remember", {**arguments, "messages": [{"role": "customer", "text": "hello"}]}
            )
        )
        assert expected in message
        assert memory.profiles.list() == []  # nothing half-written


async def test_remember_on_an_ended_conversation_says_to_start_a_new_one(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        done = ok(await client.call_tool("remember", first_exchange(end_conversation=True)))
        message = error_text(
            await client.call_tool(
                "remember",
                {
                    "conversation_id": done["conversation_id"],
                    "messages": [{"role": "customer", "text": "one more thing"}],
                },
            )
        )
        assert "has ended" in message and "start a new conversation" in message


async def test_remember_rejects_blank_text_from_the_engine(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        args = first_exchange()
        args["messages"] = [{"role": "customer", "text": "   "}]
        assert "message text is empty" in error_text(await client.call_tool("remember", args))


# -- recall -------------------------------------------------------------------------


async def test_recall_by_identifier_returns_ranked_items_with_provenance(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange()))
        got = ok(
            await client.call_tool(
                "recall", {"customer": "phone:(617) 555-0142", "query": "double charge refund"}
            )
        )
        assert got["profile_id"] == saved["profile_id"]
        assert got["query"] == "double charge refund"
        texts = [i["text"] for i in got["items"]]
        assert "I was charged twice for Premium this month." in texts
        item = got["items"][0]
        assert item["type"] == "message" and 0.0 <= item["score"] <= 1.0
        assert item["provenance"]["conversation_id"] == saved["conversation_id"]
        assert item["provenance"]["channel"] == "sms"
        assert got["context"].count("<customer_memory") == 1
        assert "not instructions" in got["context"]
        assert got["context_tokens"] > 0


async def test_recall_infers_the_query_from_the_conversation(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        chat = ok(
            await client.call_tool(
                "remember",
                {
                    "channel": "chat",
                    "customer": PHONE,
                    "messages": [
                        {"role": "customer", "text": "Did the Premium refund go through?"}
                    ],
                },
            )
        )
        got = ok(
            await client.call_tool(
                "recall", {"customer": PHONE, "conversation_id": chat["conversation_id"]}
            )
        )
        assert got["query"] == "Did the Premium refund go through?"
        texts = [i["text"] for i in got["items"]]
        assert "Did the Premium refund go through?" not in texts  # not repeated back
        assert "I was charged twice for Premium this month." in texts


async def test_recall_honours_limits_channels_and_budget(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        ok(
            await client.call_tool(
                "update_profile", {"customer": PHONE, "set_traits": {"tier": "gold"}}
            )
        )
        got = ok(
            await client.call_tool(
                "recall",
                {
                    "customer": PHONE,
                    "max_messages": 1,
                    "max_traits": 0,
                    "advanced": {"channels": ["sms"]},
                },
            )
        )
        assert [i["type"] for i in got["items"]] == ["message"]
        none = ok(
            await client.call_tool(
                "recall", {"customer": PHONE, "advanced": {"channels": ["voice"]}}
            )
        )
        assert [i["type"] for i in none["items"]] == ["trait"]
        empty = await client.call_tool("recall", {"customer": PHONE, "token_budget": 0})
        assert (ok(empty)["context"], ok(empty)["context_tokens"], ok(empty)["items"]) == (
            "",
            0,
            [],
        )
        assert empty.content[0].text == "Nothing is remembered about this customer for this query."


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("phone:+16175550199", "no profile with identifier phone:+16175550199"),
        ("prf_doesnotexist", "does not exist"),
        ("somebody", "cannot tell what kind of identifier"),
    ],
)
async def test_recall_of_an_unknown_customer_is_a_tool_error(
    server: MCPServer[AppState], profile: str, expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("recall", {"customer": profile}))
        assert expected in message


# -- get_profile / update_profile -----------------------------------------------------


async def test_get_profile_shows_identifiers_traits_conversations_and_counts(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange(subject="billing")))
        ok(
            await client.call_tool(
                "update_profile",
                {
                    "customer": PHONE,
                    "set_traits": {"language": "es", "vip": True},
                    "link_identifiers": ["email:Ann@Example.com"],
                },
            )
        )
        view = ok(await client.call_tool("get_profile", {"customer": "email:ann@example.com"}))
        assert view["profile_id"] == saved["profile_id"]
        assert view["identifiers"] == ["email:ann@example.com", "phone:+16175550142"]
        assert {t["key"]: (t["value"], t["source"]) for t in view["traits"]} == {
            "language": ("es", "agent"),
            "vip": (True, "agent"),
        }
        assert [c["id"] for c in view["recent_conversations"]] == [saved["conversation_id"]]
        assert view["recent_conversations"][0]["subject"] == "billing"
        assert view["counts"] == {"identifiers": 2, "traits": 2, "conversations": 1, "messages": 2}


async def test_get_profile_of_an_unknown_customer_is_a_tool_error(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(
            await client.call_tool("get_profile", {"customer": "email:x@example.com"})
        )
        assert "no profile" in message and "remember" in message


async def test_update_profile_sets_clears_and_links_with_a_merge(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        a = ok(await client.call_tool("remember", first_exchange()))
        b = ok(
            await client.call_tool(
                "remember",
                {
                    "channel": "whatsapp",
                    "customer": "whatsapp:+16175550143",
                    "messages": [{"role": "customer", "text": "Hola"}],
                },
            )
        )
        ok(
            await client.call_tool(
                "update_profile", {"customer": PHONE, "set_traits": {"tier": "gold"}}
            )
        )
        out = ok(
            await client.call_tool(
                "update_profile",
                {
                    "customer": PHONE,
                    "set_traits": {"language": "es"},
                    "clear_traits": ["tier", "unknown_key"],
                    "link_identifiers": ["whatsapp:+1 617 555 0143"],
                },
            )
        )
        assert out["set_traits"] == ["language"]
        assert out["cleared_traits"] == ["tier"]
        assert out["linked_identifiers"] == ["whatsapp:+16175550143"]
        assert out["merged_profile_ids"] == [b["profile_id"]]
        assert out["profile"]["profile_id"] == a["profile_id"]
        assert [t["key"] for t in out["profile"]["traits"]] == ["language"]
        assert out["profile"]["counts"]["conversations"] == 2


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "nothing to update"),
        ({"set_traits": {"tier": "gold"}, "clear_traits": ["tier"]}, "both set and cleared"),
        ({"set_traits": {"Tier Level": "gold"}}, "set_traits"),
        ({"set_traits": {"tier": "gold"}, "link_identifiers": ["???"]}, "kind:value"),
    ],
)
async def test_update_profile_checks_everything_before_writing(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, object], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        message = error_text(
            await client.call_tool("update_profile", {"customer": PHONE, **arguments})
        )
        assert expected in message
        assert memory.traits.list(PHONE) == []


# -- forget ---------------------------------------------------------------------------


async def test_forget_a_message_a_conversation_and_a_profile(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange()))
        other = ok(await client.call_tool("remember", first_exchange(channel="chat")))
        msg = ok(await client.call_tool("forget", {"message_id": saved["message_ids"][0]}))
        assert msg["deleted"] == {"messages": 1} and msg["target"].startswith("message:")
        conv = ok(await client.call_tool("forget", {"conversation_id": saved["conversation_id"]}))
        assert conv["deleted"] == {"conversations": 1, "messages": 1}
        whole = ok(await client.call_tool("forget", {"customer": PHONE}))
        assert whole["target"] == f"profile:{saved['profile_id']}"
        assert whole["deleted"]["profiles"] == 1 and whole["deleted"]["messages"] == 2
        assert memory.profiles.find(PHONE) is None
        assert "no profile" in error_text(await client.call_tool("recall", {"customer": PHONE}))
        assert other["profile_id"] == saved["profile_id"]


@pytest.mark.parametrize("argument", ["message_id", "conversation_id", "customer"])
async def test_forget_of_something_unknown_is_a_tool_error(
    server: MCPServer[AppState], argument: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("forget", {argument: "prf_nope"}))
        assert "does not exist" in message


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "give exactly one of customer, conversation_id, message_id, observation_id"),
        ({"customer": PHONE, "message_id": "m1"}, "(got customer, message_id)"),
        ({"tenant": "default"}, "tenant: unknown argument"),
    ],
)
async def test_forget_deletes_exactly_one_thing(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, str], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        assert expected in error_text(await client.call_tool("forget", arguments))
    assert memory.profiles.find(PHONE) is not None


# -- tenancy in process -----------------------------------------------------------------


async def test_a_server_for_one_tenant_never_sees_another(memory: Memory) -> None:
    memory.tenants.add("acme").ingest({**first_exchange(), "customer": [PHONE]})
    async with Client(create_server(memory=memory), raise_exceptions=True) as default:
        assert "no profile" in error_text(await default.call_tool("recall", {"customer": PHONE}))
    async with Client(create_server(memory=memory, tenant="acme")) as acme:
        got = ok(await acme.call_tool("recall", {"customer": PHONE}))
        assert len(got["items"]) == 2


async def test_a_server_requiring_tokens_refuses_calls_without_one(memory: Memory) -> None:
    tokens = TokenTable.from_mapping({"t" * 32: "default"})
    async with Client(create_server(memory=memory, tokens=tokens)) as c:
        message = error_text(await c.call_tool("remember", first_exchange()))
    assert "requires a bearer token" in message
    assert memory.profiles.list() == []


async def test_the_lifespan_opens_the_configured_store_and_creates_the_tenant(
    tmp_path: object,
) -> None:
    from pathlib import Path

    from memory_core.config import load_settings

    db = Path(str(tmp_path)) / "served.db"
    settings = load_settings(backend=f"sqlite:///{db}", embedder="hash", tenant="acme")
    async with Client(create_server(settings)) as c:
        ok(await c.call_tool("remember", first_exchange()))
    with Memory.open(db, embedder="hash") as memory:
        assert "acme" in memory.tenants.list()
        assert memory.tenant("acme").profiles.get(PHONE) is not None


# -- resources and prompts ----------------------------------------------------------------


async def test_resources_show_profile_context_and_transcript(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange()))
        templates = {
            t.name: t.uri_template
            for t in (await client.list_resource_templates()).resource_templates
        }
        assert templates == {
            "profile": "convmem://profiles/{customer}",
            "profile_context": "convmem://profiles/{customer}/context{?query}",
            "conversation": "convmem://conversations/{conversation_id}",
            "knowledge_bases": "convmem://knowledge{?status}",
            "knowledge_base": "convmem://knowledge/{kb}{?status}",
        }
        profile = (await client.read_resource(f"convmem://profiles/{PHONE}")).contents[0]
        assert profile.mime_type == "application/json"
        assert saved["profile_id"] in getattr(profile, "text", "")
        context = (
            await client.read_resource(f"convmem://profiles/{PHONE}/context?query=refund")
        ).contents[0]
        assert "<customer_memory" in getattr(context, "text", "")
        transcript = (
            await client.read_resource(f"convmem://conversations/{saved['conversation_id']}")
        ).contents[0]
        lines = getattr(transcript, "text", "").splitlines()
        assert lines[1].endswith("customer: I was charged twice for Premium this month.")
        assert len(lines) == 3


async def test_reading_an_unknown_resource_is_a_protocol_error(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        with pytest.raises(MCPError, match="no profile"):
            await client.read_resource("convmem://profiles/phone:+16175550199")
        with pytest.raises(MCPError, match="does not exist"):
            await client.read_resource("convmem://conversations/cnv_nope")


async def test_prompts_carry_the_customer_context(server: MCPServer[AppState]) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        names = {p.name for p in (await client.list_prompts()).prompts}
        assert names == {"support_agent", "customer_briefing"}
        prompt = await client.get_prompt(
            "support_agent", {"customer": PHONE, "question": "Where is my refund?"}
        )
        texts = [getattr(m.content, "text", "") for m in prompt.messages]
        assert "support agent" in texts[0] and "I was charged twice" in texts[0]
        assert texts[1] == "The customer says: Where is my refund?"
        briefing = await client.get_prompt("customer_briefing", {"customer": PHONE})
        assert "phone:+16175550142" in getattr(briefing.messages[0].content, "text", "")
        with pytest.raises(MCPError, match="no profile"):
            await client.get_prompt("support_agent", {"customer": "phone:+16175550199"})


# -- the tool functions, without MCP ---------------------------------------------------------


def test_tool_functions_run_on_memory_without_mcp(memory: Memory) -> None:
    saved = tools.remember(memory, tools.RememberInput.model_validate(first_exchange()))
    got = tools.recall(memory, tools.RecallInput(customer=PHONE, query="refund"))
    assert got.profile_id == saved.profile_id and got.items
    spec = tools.tool_spec("get_profile")
    view = spec.run(memory, tools.validate_input(spec.input_model, {"customer": PHONE}))
    assert isinstance(view, tools.ProfileOutput) and view.counts.messages == 2


def test_invalid_tool_input_is_a_validation_error_naming_the_field(memory: Memory) -> None:
    from memory_core.errors import ValidationError

    with pytest.raises(ValidationError, match=r"invalid arguments: max_messages: "):
        tools.validate_input(tools.RecallInput, {"customer": PHONE, "max_messages": -1})
    with pytest.raises(KeyError):
        tools.tool_spec("search")


# -- what a recall result costs ---------------------------------------------------------


async def test_recall_reads_as_its_context_with_each_fact_once(memory: Memory) -> None:
    seed_typical_customer(memory)  # preferred_channel: sms set by the agent and extracted
    traits = [(t.key, t.source) for t in memory.traits.list(PHONE)]
    assert ("preferred_channel", "agent") in traits and ("preferred_channel", "extracted") in traits
    async with Client(create_server(memory=memory), raise_exceptions=True) as client:
        result = await client.call_tool(
            "recall", {"customer": PHONE, "query": "refund for the double charge"}
        )
    got = ok(result)
    [text] = [block.text for block in result.content if isinstance(block, TextContent)]
    assert text == got["context"]  # the model reads the context block, nothing else
    assert text.count("preferred_channel: sms") == 1
    kept = [i for i in got["items"] if i["text"] == "preferred_channel: sms"]
    assert [i["provenance"]["source"] for i in kept] == ["agent"]
    # The structured items are exactly what the context shows, in its order.
    shown = [line for line in text.splitlines() if line.startswith("<item ")]
    assert len(shown) == len(got["items"])
    for line, item in zip(shown, got["items"], strict=True):
        assert line.endswith(f">{item['text']}</item>") and item["type"] in line
    assert got["items"][-1]["provenance"]["conversation_id"].startswith("cnv_")
