"""What agents learn, over MCP in process: observations recorded with
``remember``, ending a conversation (which runs extraction), summaries in
``get_profile``, and forgetting an observation. Real SQLite, the heuristic
extractor (the default with no model configured)."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.server import MCPServer

from convmem_mcp.server import AppState
from memory_core.memory import Memory
from tests.mcp_server.conftest import PHONE, error_text, first_exchange, ok

TEXT_ME = {"role": "customer", "text": "Please text me, don't call.", "id": "sms-1"}
NOTED = {"role": "human_agent", "text": "Noted, texts only from now on.", "id": "sms-2"}


# -- remember: observations -----------------------------------------------------------


async def test_remember_records_observations_with_messages_of_the_same_call(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(
            await client.call_tool(
                "remember",
                first_exchange(
                    messages=[TEXT_ME],
                    observations=[
                        {
                            "text": "Prefers a call back in the morning",
                            "kind": "preference",
                            "evidence": ["sms-1"],
                        },
                        {"text": "Lives in Boston", "trait_key": "location", "value": "Boston"},
                    ],
                ),
            )
        )
    assert saved["added"] == 1 and saved["status"] == "open" and saved["summary"] is None
    first, second = saved["observations"]
    assert (first["kind"], first["text"], first["decision"]) == (
        "preference",
        "Prefers a call back in the morning",
        "add",
    )
    assert (second["kind"], second["decision"]) == ("context", "add")
    stored = {o.id: o for o in memory.observations.list(PHONE)}
    assert set(stored) == {first["id"], second["id"]}
    note = stored[first["id"]]
    assert (note.source, note.evidence) == ("agent", ("sms-1",))
    assert note.conversation_id == saved["conversation_id"]  # traced to its evidence
    assert stored[second["id"]].trait_key == "location"


async def test_remember_observations_alone_reconcile_with_what_is_known(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange()))
        moved: dict[str, Any] = {"text": "Lives in Boston", "trait_key": "location"}
        first = ok(
            await client.call_tool(
                "remember",
                {"customer": PHONE, "observations": [{**moved, "value": "Boston"}]},
            )
        )
        assert first["conversation_id"] is None and first["channel"] is None
        assert first["profile_id"] == saved["profile_id"] and first["added"] == 0
        again = ok(
            await client.call_tool(
                "remember",
                {
                    "customer": saved["profile_id"],
                    "observations": [{**moved, "text": "lives in  Boston", "value": "Boston"}],
                },
            )
        )
        assert again["observations"][0]["id"] == first["observations"][0]["id"]
        assert again["observations"][0]["decision"] == "duplicate"
        update = ok(
            await client.call_tool(
                "remember",
                {
                    "conversation_id": saved["conversation_id"],
                    "observations": [{**moved, "text": "Lives in Chicago", "value": "Chicago"}],
                },
            )
        )
    [changed] = update["observations"]
    assert changed["decision"] == "update"
    assert changed["supersedes"] == first["observations"][0]["id"]
    assert update["conversation_id"] == saved["conversation_id"] and update["added"] == 0
    assert [o.text for o in memory.observations.list(PHONE)] == ["Lives in Chicago"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "nothing to remember"),
        ({"observations": [{"text": "Likes cats"}]}, "say who they are about"),
        (
            {"customer": "phone:+16175550199", "observations": [{"text": "Likes cats"}]},
            "observations are recorded for a known customer",
        ),
        (
            {"customer": PHONE, "observations": [{"text": "Card 4111 1111 1111 1111 on file"}]},
            "observations.0: not remembered, the text contains a payment card number",
        ),
        (
            {"customer": PHONE, "observations": [{"text": "Likes cats", "evidence": ["m-9"]}]},
            "observations.0.evidence: 'm-9' is not a message of this customer",
        ),
        (
            {"customer": PHONE, "observations": [{"text": "Likes cats", "value": "cats"}]},
            "a value needs its trait_key",
        ),
        (
            {"customer": PHONE, "observations": [{"text": "Likes cats", "kind": "hobby"}]},
            "observations.0.kind",
        ),
        ({"end_conversation": True}, "end_conversation needs the conversation"),
        ({"conversation_id": "cnv_nope", "end_conversation": True}, "no conversation 'cnv_nope'"),
    ],
)
async def test_remember_refuses_what_it_cannot_do_before_writing(
    server: MCPServer[AppState], memory: Memory, arguments: dict[str, Any], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        message = error_text(await client.call_tool("remember", arguments))
    assert expected in message
    assert memory.observations.list(PHONE) == []


async def test_an_observation_citing_another_customers_message_stores_nothing(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        other = first_exchange(customer="email:bob@example.com")
        other["messages"] = [{"role": "customer", "text": "I live in Denver.", "id": "bob-1"}]
        ok(await client.call_tool("remember", other))
        arguments = first_exchange(
            observations=[{"text": "Lives in Denver", "evidence": ["bob-1"]}]
        )
        message = error_text(await client.call_tool("remember", arguments))
    assert "'bob-1' is not a message of this customer" in message
    assert memory.profiles.find(PHONE) is None  # the messages were not stored either


async def test_an_observation_the_tenants_policy_refuses_stores_nothing(
    server: MCPServer[AppState], memory: Memory
) -> None:
    memory.governance.policy.set({"remember": {"deny_trait_keys": ["location"]}})
    refused = first_exchange(
        observations=[
            {"text": "Prefers email", "kind": "preference"},
            {"text": "Lives in Boston", "trait_key": "location", "value": "Boston"},
        ]
    )
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("remember", refused))
        assert "observations.1: not remembered under the policy" in message
        assert "trait key 'location' is not remembered" in message
        assert memory.profiles.find(PHONE) is None  # the messages were not stored either
        health = first_exchange(observations=[{"text": "Is being treated for diabetes"}])
        message = error_text(await client.call_tool("remember", health))
    assert "observations.0: not remembered under the policy" in message  # built-in topics
    assert memory.profiles.find(PHONE) is None


# -- ending a conversation -------------------------------------------------------------


async def test_ending_a_conversation_summarises_it_and_extracts_observations(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        args = first_exchange()
        args["messages"] = [TEXT_ME, *args["messages"]]
        saved = ok(await client.call_tool("remember", {**args, "end_conversation": True}))
        assert saved["status"] == "ended" and saved["summary"]
        view = ok(await client.call_tool("get_profile", {"customer": PHONE}))
    record = memory.observations.extraction_status(saved["conversation_id"])
    assert record is not None and record.status.value == "done"
    assert "Prefers SMS over phone calls" in [o.text for o in memory.observations.list(PHONE)]
    assert saved["summary"] == memory.summaries.get(saved["conversation_id"]).text
    [conversation] = view["recent_conversations"]
    assert conversation["summary"] == saved["summary"]
    assert conversation["outcome"] in {"resolved", "unresolved", "escalated", "unknown"}


async def test_a_conversation_can_be_ended_later_without_new_messages(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        saved = ok(await client.call_tool("remember", first_exchange(messages=[TEXT_ME, NOTED])))
        assert (
            memory.observations.extraction_status(saved["conversation_id"]) is None
        )  # open: not yet
        ended = ok(
            await client.call_tool(
                "remember", {"conversation_id": saved["conversation_id"], "end_conversation": True}
            )
        )
        assert (ended["status"], ended["added"], ended["profile_id"]) == (
            "ended",
            0,
            saved["profile_id"],
        )
        assert ended["summary"]
        again = ok(
            await client.call_tool(
                "remember", {"conversation_id": saved["conversation_id"], "end_conversation": True}
            )
        )
    assert again["status"] == "ended" and again["summary"] is None  # already ended: no-op
    assert [o.text for o in memory.observations.list(PHONE)] == ["Prefers SMS over phone calls"]


# -- get_profile: summaries ------------------------------------------------------------


async def test_get_profile_shows_summaries_of_ended_conversations_only(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        done = ok(await client.call_tool("remember", first_exchange(end_conversation=True)))
        live = ok(await client.call_tool("remember", first_exchange(channel="chat")))
        view = ok(await client.call_tool("get_profile", {"customer": PHONE}))
        one = ok(await client.call_tool("get_profile", {"customer": PHONE, "max_conversations": 1}))
    summaries = {c["id"]: c["summary"] for c in view["recent_conversations"]}
    assert summaries[done["conversation_id"]] == done["summary"] is not None
    assert summaries[live["conversation_id"]] is None
    assert [c["id"] for c in one["recent_conversations"]] == [live["conversation_id"]]


# -- forget: observations --------------------------------------------------------------


async def test_forget_an_observation_returns_its_receipt(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        noted = ok(
            await client.call_tool(
                "remember",
                {
                    "customer": PHONE,
                    "observations": [
                        {"text": "Lives in Boston", "trait_key": "location", "value": "Boston"}
                    ],
                },
            )
        )
        moved = ok(
            await client.call_tool(
                "remember",
                {
                    "customer": PHONE,
                    "observations": [
                        {"text": "Lives in Chicago", "trait_key": "location", "value": "Chicago"}
                    ],
                },
            )
        )
        latest = moved["observations"][0]["id"]
        receipt = ok(await client.call_tool("forget", {"observation_id": latest}))
        assert receipt["target"] == f"observation:{latest}"
        assert receipt["deleted"] == {"observations": 2}  # with the version it replaced
        missing = error_text(await client.call_tool("forget", {"observation_id": latest}))
        recalled = ok(await client.call_tool("recall", {"customer": PHONE, "query": "where"}))
    assert f"observation {latest!r} does not exist" in missing
    assert memory.observations.list(PHONE, include_superseded=True) == []
    assert noted["observations"][0]["id"] not in {i["id"] for i in recalled["items"]}
    assert [e.target for e in memory.governance.audit.list(action="delete_observation")] == [
        f"observation:{latest}"
    ]


async def test_a_refusal_after_messages_were_stored_says_what_was_done(
    server: MCPServer[AppState], memory: Memory
) -> None:
    # The policy drops the AI agent's messages at ingest, so evidence citing one only
    # turns out to be missing once the messages are written.
    memory.governance.policy.set({"remember": {"exclude_roles": ["ai_agent"]}})
    arguments = first_exchange(
        messages=[
            {"role": "customer", "text": "I have two cats.", "id": "c-1"},
            {"role": "ai_agent", "text": "Cats are great!", "id": "a-1"},
        ],
        observations=[
            {"text": "Has two cats", "evidence": ["c-1"]},
            {"text": "Was told cats are great", "evidence": ["a-1"]},
        ],
        conversation_id="chat-7",
        end_conversation=True,
    )
    async with Client(server, raise_exceptions=True) as client:
        message = error_text(await client.call_tool("remember", arguments))
    assert "observations.1: evidence must be ids of this customer's messages" in message
    assert "Already done: 1 message(s) stored in conversation chat-7" in message
    assert "the 1 observation(s) before it recorded (the conversation was not ended)" in message
    assert [m.id for m in memory.conversations.list_messages("chat-7")] == ["c-1"]
    assert [o.text for o in memory.observations.list(PHONE)] == ["Has two cats"]
    assert memory.conversations.get("chat-7").status.value == "open"


# -- list_observations and correct_observation -------------------------------------------


async def _note(client: Client, **observation: Any) -> dict[str, Any]:
    """remember one observation about PHONE; its output."""
    saved = ok(
        await client.call_tool("remember", {"customer": PHONE, "observations": [observation]})
    )
    result: dict[str, Any] = saved["observations"][0]
    return result


async def test_list_observations_newest_first_with_history_on_request(
    server: MCPServer[AppState],
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        boston = await _note(client, text="Lives in Boston", trait_key="location", value="Boston")
        email = await _note(client, text="Prefers email", kind="preference")
        chicago = await _note(
            client, text="Lives in Chicago", trait_key="location", value="Chicago"
        )
        current = ok(await client.call_tool("list_observations", {"customer": PHONE}))
        history = ok(
            await client.call_tool(
                "list_observations", {"customer": PHONE, "include_superseded": True}
            )
        )
        preferences = ok(
            await client.call_tool("list_observations", {"customer": PHONE, "kind": "preference"})
        )
        one = ok(await client.call_tool("list_observations", {"customer": PHONE, "limit": 1}))
    assert [o["id"] for o in current["observations"]] == [chicago["id"], email["id"]]
    assert current["observations"][0]["value"] == "Chicago"
    assert current["observations"][0]["supersedes"] == boston["id"]
    old = {o["id"]: o for o in history["observations"]}[boston["id"]]
    assert (old["status"], old["superseded_by"]) == ("superseded", chicago["id"])
    assert [o["text"] for o in preferences["observations"]] == ["Prefers email"]
    assert [o["id"] for o in one["observations"]] == [chicago["id"]]


async def test_correct_observation_retracts_it_and_records_the_correction(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        boston = await _note(client, text="Lives in Boston", trait_key="location", value="Boston")
        fixed = ok(
            await client.call_tool(
                "correct_observation",
                {
                    "observation_id": boston["id"],
                    "text": "Lives in Austin",
                    "value": "Austin",
                    "reason": "customer moved",
                },
            )
        )
        recalled = ok(await client.call_tool("recall", {"customer": PHONE, "query": "lives"}))
        again = error_text(
            await client.call_tool(
                "correct_observation", {"observation_id": boston["id"], "text": "Lives in Waco"}
            )
        )
    assert (fixed["retracted"]["id"], fixed["retracted"]["status"]) == (boston["id"], "deleted")
    new = fixed["observation"]
    assert (new["text"], new["trait_key"], new["value"]) == (
        "Lives in Austin",
        "location",
        "Austin",
    )
    assert new["source"] == "agent" and new["status"] == "active"
    assert [o.text for o in memory.observations.list(PHONE)] == ["Lives in Austin"]
    history = memory.observations.get(boston["id"])
    assert history.revisions[-1].note == "retracted: corrected: customer moved"
    texts = [i["text"] for i in recalled["items"]]
    assert "Lives in Austin" in texts and "Lives in Boston" not in texts
    assert f"observation {boston['id']!r} is not current (it is deleted)" in again
    assert [a.target for a in memory.governance.audit.list(action="retract_observation")] == [
        f"observation:{boston['id']}"
    ]


async def test_correct_observation_without_text_only_retracts(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        note = await _note(client, text="Is planning to cancel", kind="intent")
        out = ok(
            await client.call_tool(
                "correct_observation", {"observation_id": note["id"], "reason": "changed mind"}
            )
        )
    assert out["observation"] is None and out["retracted"]["status"] == "deleted"
    assert memory.observations.list(PHONE) == []


@pytest.mark.parametrize(
    ("correction", "expected"),
    [
        ({"value": "Austin"}, "value needs text"),
        ({"text": "Card 4111 1111 1111 1111 on file"}, "text: not remembered"),
        ({"text": "Lives in Austin", "reason": "x" * 201}, "invalid arguments: reason:"),
        ({"observation_id": "obs_nope"}, "does not exist"),
    ],
)
async def test_a_refused_correction_changes_nothing(
    server: MCPServer[AppState], memory: Memory, correction: dict[str, Any], expected: str
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        boston = await _note(client, text="Lives in Boston", trait_key="location", value="Boston")
        message = error_text(
            await client.call_tool(
                "correct_observation", {"observation_id": boston["id"], **correction}
            )
        )
    assert expected in message
    assert [o.text for o in memory.observations.list(PHONE)] == ["Lives in Boston"]


async def test_a_slotless_observation_takes_no_value(
    server: MCPServer[AppState], memory: Memory
) -> None:
    async with Client(server, raise_exceptions=True) as client:
        ok(await client.call_tool("remember", first_exchange()))
        note = await _note(client, text="Prefers email", kind="preference")
        message = error_text(
            await client.call_tool(
                "correct_observation",
                {"observation_id": note["id"], "text": "Prefers SMS", "value": "sms"},
            )
        )
    assert "fills no slot (no trait_key): give text alone" in message
    assert [o.text for o in memory.observations.list(PHONE)] == ["Prefers email"]
