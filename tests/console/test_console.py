"""The console through httpx against the real application and a real SQLite
store: every page and action, the role matrix, CSRF, and tenant isolation."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from markupsafe import escape
from starlette.applications import Starlette
from starlette.routing import Mount

from convmem_api.console import create_console
from convmem_api.console._app import COOKIE
from convmem_mcp.auth import TokenTable
from memory_core import tools
from memory_core.backends.base import Collection, Where
from memory_core.models import ObservationStatus
from tests.console.conftest import OTHER_PHONE, OTHER_SECRET, PHONE, Demo, csrf_of, mounted

BASE = "http://console.test"


def shown(text: str) -> str:
    """``text`` as the console's templates escape it."""
    return str(escape(text))


@asynccontextmanager
async def _client(demo: Demo, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the console, signed in with ``key`` (unless None)."""
    transport = httpx.ASGITransport(app=mounted(demo.memory))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        if key is not None:
            signed = await client.post("/console/signin", data={"key": key})
            assert signed.status_code == 303, signed.text
        yield client


@pytest.fixture
async def admin(demo: Demo) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(demo, demo.keys.admin) as client:
        yield client


async def _form_token(client: httpx.AsyncClient, demo: Demo) -> str:
    page = await client.get(f"/console/profiles/{demo.profile_id}")
    assert page.status_code == 200
    return csrf_of(page.text)


def _merged_away(demo: Demo) -> str:
    """The id of the chat's profile, which the demo merged into Dana's."""
    found = demo.memory.backend.find(
        "default", Collection.MERGES, Where(eq={"survivor_id": demo.profile_id})
    )
    assert len(found) == 1
    return found[0].id


def _active(demo: Demo) -> list[str]:
    return [o.id for o in demo.memory.observations.list(demo.profile_id)]


# -- sign-in ------------------------------------------------------------------------------


async def test_pages_need_a_signed_in_key(demo: Demo) -> None:
    async with _client(demo, None) as client:
        home = await client.get("/console/")
        assert home.status_code == 303
        assert home.headers["location"] == "/console/signin"
        card = await client.get(f"/console/profiles/{demo.profile_id}")
        assert card.status_code == 303
        oid = _active(demo)[0]
        posted = await client.post(f"/console/observations/{oid}/retract", data={"csrf": "x"})
        assert posted.status_code == 401
        assert demo.memory.observations.get(oid).status is ObservationStatus.ACTIVE
        page = await client.get("/console/signin")
        assert page.status_code == 200
        assert 'name="key"' in page.text


async def test_sign_in_sets_a_strict_http_only_cookie_scoped_to_the_console(demo: Demo) -> None:
    async with _client(demo, None) as client:
        signed = await client.post("/console/signin", data={"key": demo.keys.read})
        assert signed.status_code == 303
        assert signed.headers["location"] == "/console/"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/console/" in cookie
        home = await client.get("/console/")
        assert home.status_code == 200
        assert "viewer-rita" in home.text  # the key's name is shown
        csp = home.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


@pytest.mark.parametrize(
    "key", ["", "nonsense-key", "cmk.default.key_0000000000000000." + "a" * 43]
)
async def test_an_invalid_key_is_refused(demo: Demo, key: str) -> None:
    async with _client(demo, None) as client:
        refused = await client.post("/console/signin", data={"key": key})
        assert refused.status_code == 401
        assert "not valid" in refused.text
        assert "set-cookie" not in refused.headers


async def test_a_static_token_of_the_server_signs_in_as_admin_of_its_tenant(demo: Demo) -> None:
    token = "static-token-for-other-0123456789"
    table = TokenTable.from_mapping({token: "other"})
    app = Starlette(routes=[Mount("/console", create_console(demo.memory, tokens=table))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://console.test") as client:
        signed = await client.post("/console/signin", data={"key": token})
        assert signed.status_code == 303
        assert "Secure" in signed.headers["set-cookie"]  # served over https
        card = await client.get(f"/console/profiles/{demo.other_profile_id}")
        assert card.status_code == 200
        assert 'id="merge"' in card.text  # admin
        missing = await client.get(f"/console/profiles/{demo.profile_id}")
        assert missing.status_code == 404


async def test_a_revoked_key_stops_working_at_the_next_request(demo: Demo) -> None:
    async with _client(demo, demo.keys.write) as client:
        assert (await client.get("/console/")).status_code == 200
        demo.memory.governance.keys.revoke(demo.keys.write_id)
        assert (await client.get("/console/")).status_code == 303


async def test_sign_out_forgets_the_key(admin: httpx.AsyncClient, demo: Demo) -> None:
    token = await _form_token(admin, demo)
    out = await admin.post("/console/signout", data={"csrf": token})
    assert out.status_code == 303
    assert (await admin.get("/console/")).status_code == 303


# -- look-up and the profile card ----------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [PHONE, "phone:(617) 555-0142", "email:Dana.Whitfield@Example.com", "chat_id:web-88231"],
)
async def test_look_up_by_any_identifier(demo: Demo, identifier: str) -> None:
    async with _client(demo, demo.keys.read) as client:
        found = await client.get("/console/", params={"identifier": identifier})
        assert found.status_code == 303
        assert found.headers["location"] == f"/console/profiles/{demo.profile_id}"
        by_id = await client.get("/console/", params={"identifier": demo.profile_id})
        assert by_id.headers["location"] == f"/console/profiles/{demo.profile_id}"


async def test_an_unknown_identifier_says_so(demo: Demo) -> None:
    async with _client(demo, demo.keys.read) as client:
        missing = await client.get("/console/", params={"identifier": "phone:+15550000000"})
        assert missing.status_code == 404
        assert "No customer has the identifier" in missing.text


async def test_the_profile_card_shows_identity_traits_observations_and_conversations(
    demo: Demo,
) -> None:
    memory = demo.memory
    memory.traits.set(demo.profile_id, "plan", "Basic", source="extracted")  # disagrees with crm
    async with _client(demo, demo.keys.read) as client:
        card = await client.get(f"/console/profiles/{demo.profile_id}")
    assert card.status_code == 200
    page = card.text
    for ident in memory.profiles.identifiers(demo.profile_id):
        assert shown(ident.value) in page
    for channel in ("voice", "sms", "chat"):
        assert f"<li>{channel}</li>" in page
    # traits with source and time, and the conflict visible
    assert re.search(r'class="trait conflicted" data-key="plan"', page)
    assert re.search(r'class="conflict" data-key="plan">.*?Basic.*?extracted', page, re.S)
    assert "Premium" in page and "crm" in page
    # observations with the messages they came from
    for obs in memory.observations.list(demo.profile_id):
        assert f'id="obs-{obs.id}"' in page
        assert shown(obs.text) in page
        for mid in obs.evidence:
            text = memory.conversations.get_message(mid).text
            assert shown(text) in page
    # conversations with summaries and outcomes
    for conv in memory.conversations.list(demo.profile_id):
        assert f"/console/conversations/{conv.id}" in page
        summary = memory.summaries.get(conv.id)
        assert shown(summary.text) in page
        assert f"outcome-{summary.outcome.value}" in page


async def test_a_merged_away_profile_id_shows_the_survivor(demo: Demo) -> None:
    other = demo.memory.profiles.add(["email:second@example.com"])
    survivor = demo.memory.profiles.merge(demo.profile_id, other.id)
    gone = other.id if survivor.id == demo.profile_id else demo.profile_id
    async with _client(demo, demo.keys.read) as client:
        card = await client.get(f"/console/profiles/{gone}")
    assert card.status_code == 303
    assert card.headers["location"] == f"/console/profiles/{survivor.id}"


async def test_the_transcript_shows_every_message_escaped(demo: Demo) -> None:
    memory = demo.memory
    conv = memory.conversations.add("chat", [PHONE], subject="<b>bold</b> subject")
    memory.conversations.add_message(conv.id, "customer", "<script>alert(1)</script> hi")
    async with _client(demo, demo.keys.read) as client:
        for c in memory.conversations.list(demo.profile_id):
            page = await client.get(f"/console/conversations/{c.id}")
            assert page.status_code == 200
            for m in memory.conversations.list_messages(c.id):
                assert shown(m.text) in page.text
        page = await client.get(f"/console/conversations/{conv.id}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; hi" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt; subject" in page.text
    assert "data-live=" in page.text  # open: followed live


# -- recall and knowledge -------------------------------------------------------------------


_NONCE = re.compile(r'nonce="[0-9a-f]+"')


async def test_recall_shows_what_the_agent_gets(demo: Demo) -> None:
    query = "Is the internet working and how should we contact them?"
    expected = tools.recall(demo.memory, tools.RecallInput(customer=demo.profile_id, query=query))
    async with _client(demo, demo.keys.read) as client:
        page = await client.get(f"/console/profiles/{demo.profile_id}", params={"recall": query})
    assert page.status_code == 200
    block = re.search(r'<pre class="context">(.*?)</pre>', page.text, re.S)
    assert block is not None
    context = html.unescape(block.group(1))
    assert _NONCE.sub("", context) == _NONCE.sub("", expected.context)
    rows = re.findall(
        r'<tr class="item type-(\w+)">\s*<td>\w+</td><td class="mono">([0-9.]+)</td><td>(.*?)</td>',
        page.text,
        re.S,
    )
    assert [(t, float(s), html.unescape(x)) for t, s, x in rows] == [
        (i.type.value, round(i.score, 3), i.text) for i in expected.items
    ]
    assert f"{expected.context_tokens} tokens" in page.text


async def test_recall_with_knowledge_cites_passages(demo: Demo) -> None:
    kb = demo.memory.knowledge.bases.add("help")
    demo.memory.knowledge.sources.add(
        kb.id,
        content="Refunds for double charges are issued within five business days.",
        source_type="text",
        title="Refund policy",
    )
    async with _client(demo, demo.keys.read) as client:
        page = await client.get(
            f"/console/profiles/{demo.profile_id}",
            params={"recall": "refund double charge", "knowledge": "1"},
        )
    assert 'class="item type-knowledge"' in page.text
    assert "Refund policy" in page.text


async def test_knowledge_search_shows_citations(demo: Demo) -> None:
    kb = demo.memory.knowledge.bases.add("help")
    demo.memory.knowledge.sources.add(
        kb.id,
        content="Routers that drop wifi in the evening need the firmware update 4.2.",
        source_type="text",
        title="Router troubleshooting",
    )
    expected = tools.search_knowledge(
        demo.memory, tools.SearchKnowledgeInput(query="router drops wifi")
    )
    async with _client(demo, demo.keys.read) as client:
        page = await client.get("/console/knowledge", params={"q": "router drops wifi"})
        empty = await client.get("/console/knowledge")
    assert page.status_code == 200 and empty.status_code == 200
    assert expected.passages
    for passage in expected.passages:
        assert shown(passage.cite_as) in page.text
        assert shown(passage.text) in page.text


async def test_knowledge_search_without_a_knowledge_base_explains(demo: Demo) -> None:
    async with _client(demo, demo.keys.read) as client:
        page = await client.get("/console/knowledge", params={"q": "anything"})
    assert page.status_code == 200
    assert "no knowledge base to search yet" in page.text


# -- actions, audited under the key ------------------------------------------------------------


async def test_retract_moves_an_observation_to_history_audited(
    admin: httpx.AsyncClient, demo: Demo
) -> None:
    oid = _active(demo)[0]
    token = await _form_token(admin, demo)
    done = await admin.post(
        f"/console/observations/{oid}/retract", data={"csrf": token, "reason": "moved away"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/profiles/{demo.profile_id}#observations"
    assert demo.memory.observations.get(oid).status is ObservationStatus.DELETED
    card = (await admin.get(f"/console/profiles/{demo.profile_id}")).text
    history = card.split('id="observation-history"', 1)[1]
    active = card.split('id="active-observations"', 1)[1].split('id="history"', 1)[0]
    assert f'id="obs-{oid}"' in history and f'id="obs-{oid}"' not in active
    assert "retracted: moved away" in history
    events = demo.memory.governance.audit.list(actor=f"key:{demo.keys.admin_id}")
    assert any(e.action == "retract_observation" and oid in e.target for e in events), events


async def test_correct_replaces_an_observation_audited(
    admin: httpx.AsyncClient, demo: Demo
) -> None:
    oid = _active(demo)[0]
    token = await _form_token(admin, demo)
    done = await admin.post(
        f"/console/observations/{oid}/correct",
        data={"csrf": token, "text": "Prefers email over SMS", "reason": "asked on the phone"},
    )
    assert done.status_code == 303
    assert demo.memory.observations.get(oid).status is ObservationStatus.DELETED
    texts = [o.text for o in demo.memory.observations.list(demo.profile_id)]
    assert "Prefers email over SMS" in texts
    events = demo.memory.governance.audit.list(actor=f"key:{demo.keys.admin_id}")
    assert [e.action for e in events] == ["retract_observation", "remember_observation"]
    again = await admin.post(
        f"/console/observations/{oid}/correct", data={"csrf": token, "text": "Prefers fax"}
    )
    assert again.status_code == 303  # no longer current: nothing to correct, nothing done
    assert again.headers["location"].endswith("#history")
    assert "Prefers fax" not in [o.text for o in demo.memory.observations.list(demo.profile_id)]


async def test_correct_needs_the_corrected_text(admin: httpx.AsyncClient, demo: Demo) -> None:
    oid = _active(demo)[0]
    token = await _form_token(admin, demo)
    refused = await admin.post(f"/console/observations/{oid}/correct", data={"csrf": token})
    assert refused.status_code == 422
    assert demo.memory.observations.get(oid).status is ObservationStatus.ACTIVE


async def test_set_trait_records_source_agent_audited(demo: Demo) -> None:
    async with _client(demo, demo.keys.write) as client:
        token = await _form_token(client, demo)
        done = await client.post(
            f"/console/profiles/{demo.profile_id}/traits",
            data={"csrf": token, "key": "language", "value": "es"},
        )
        assert done.status_code == 303
        card = (await client.get(f"/console/profiles/{demo.profile_id}")).text
    traits = {(t.key, t.source): t.value for t in demo.memory.traits.list(demo.profile_id)}
    assert traits[("language", "agent")] == "es"
    assert re.search(
        r'data-key="language">\s*<td>language</td><td><strong>es</strong></td><td>agent', card
    )
    events = demo.memory.governance.audit.list(actor=f"key:{demo.keys.write_id}")
    assert [e.action for e in events] == ["set_trait"]


async def test_merge_profiles_audited(admin: httpx.AsyncClient, demo: Demo) -> None:
    second = demo.memory.profiles.add(["phone:+16175550199"], display_name="Dana (work phone)")
    token = await _form_token(admin, demo)
    done = await admin.post(
        f"/console/profiles/{demo.profile_id}/merge",
        data={"csrf": token, "other": "phone:+16175550199", "reason": "same person"},
    )
    assert done.status_code == 303
    survivor = demo.memory.profiles.get(second.id)
    assert survivor.id == demo.profile_id
    assert done.headers["location"] == f"/console/profiles/{survivor.id}"
    events = demo.memory.governance.audit.list(
        action="merge_profiles", actor=f"key:{demo.keys.admin_id}"
    )
    assert len(events) == 1


async def test_split_undoes_a_merge_audited(admin: httpx.AsyncClient, demo: Demo) -> None:
    # the demo linked the chat's email to the phone: that profile was merged into Dana's
    chat = demo.memory.profiles.find("chat_id:web-88231")
    assert chat is not None and chat.id == demo.profile_id
    card = (await admin.get(f"/console/profiles/{demo.profile_id}")).text
    merged = re.findall(r'<li id="merged-(prf_[0-9a-f]+)">', card)
    assert len(merged) == 1
    assert "dana.whitfield@example.com" in card.split('id="merged-from"', 1)[1]
    done = await admin.post(
        f"/console/profiles/{demo.profile_id}/split",
        data={"csrf": csrf_of(card), "merged": merged[0], "reason": "two different people"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/profiles/{merged[0]}"
    assert demo.memory.profiles.get("chat_id:web-88231").id == merged[0]
    assert demo.memory.profiles.get(PHONE).id == demo.profile_id
    events = demo.memory.governance.audit.list(
        action="unmerge_profile", actor=f"key:{demo.keys.admin_id}"
    )
    assert len(events) == 1
    again = await admin.post(
        f"/console/profiles/{demo.profile_id}/split",
        data={"csrf": csrf_of(card), "merged": merged[0]},
    )
    assert again.status_code == 409  # not merged any more


async def test_an_engine_refusal_is_an_error_page(admin: httpx.AsyncClient, demo: Demo) -> None:
    token = await _form_token(admin, demo)
    missing = await admin.post(
        f"/console/profiles/{demo.profile_id}/merge",
        data={"csrf": token, "other": "phone:+15550001111"},
    )
    assert missing.status_code == 404
    assert "That did not work" in missing.text
    bad = await admin.post(
        f"/console/profiles/{demo.profile_id}/traits",
        data={"csrf": token, "key": "", "value": "x"},
    )
    assert bad.status_code == 422


# -- roles ------------------------------------------------------------------------------------

_BUTTONS = {
    "correct_observation": ("/retract", "/correct"),
    "set_trait": ('id="set-trait"',),
    "merge_profiles": ('id="merge"',),
    "split_profile": ('class="split inline"',),
}
_ALLOWED = {
    "read": set(),
    "write": {"correct_observation", "set_trait", "merge_profiles", "split_profile"},
    "admin": {"correct_observation", "set_trait", "merge_profiles", "split_profile"},
}


@pytest.mark.parametrize("role", ["read", "write", "admin"])
async def test_the_role_decides_the_buttons_and_the_server_enforces_it(
    demo: Demo, role: str
) -> None:
    key = getattr(demo.keys, role)
    oid = _active(demo)[0]
    second = demo.memory.profiles.add(["phone:+16175550177"])
    chat = _merged_away(demo)
    async with _client(demo, key) as client:
        card = (await client.get(f"/console/profiles/{demo.profile_id}")).text
        for action, marks in _BUTTONS.items():
            for mark in marks:
                assert (mark in card) == (action in _ALLOWED[role]), (role, mark)
        token = csrf_of(card)
        posts = {
            "set_trait": (
                f"/console/profiles/{demo.profile_id}/traits",
                {"key": "tier", "value": "gold"},
            ),
            "merge_profiles": (
                f"/console/profiles/{demo.profile_id}/merge",
                {"other": second.id},
            ),
            "correct_observation": (f"/console/observations/{oid}/retract", {}),
            "split_profile": (f"/console/profiles/{demo.profile_id}/split", {"merged": chat}),
        }
        for action, (url, data) in posts.items():
            answer = await client.post(url, data={"csrf": token, **data})
            assert answer.status_code == (303 if action in _ALLOWED[role] else 403), (role, url)
    observation = demo.memory.observations.get(oid)
    retracted = observation.status is ObservationStatus.DELETED
    assert retracted == ("correct_observation" in _ALLOWED[role])
    tier = [t for t in demo.memory.traits.list(demo.profile_id) if t.key == "tier"]
    assert bool(tier) == ("set_trait" in _ALLOWED[role])
    merged = demo.memory.profiles.get(second.id).id == demo.profile_id
    assert merged == ("merge_profiles" in _ALLOWED[role])
    split = demo.memory.profiles.get(chat).id == chat
    assert split == ("split_profile" in _ALLOWED[role])


# -- CSRF -------------------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_of_its_session_is_refused(demo: Demo) -> None:
    oid = _active(demo)[0]
    async with _client(demo, demo.keys.write) as other_session:
        foreign = await _form_token(other_session, demo)
    async with _client(demo, demo.keys.admin) as client:
        url = f"/console/observations/{oid}/retract"
        assert (await client.post(url, data={})).status_code == 403
        assert (await client.post(url, data={"csrf": "0" * 64})).status_code == 403
        assert (await client.post(url, data={"csrf": foreign})).status_code == 403
        token = await _form_token(client, demo)
        cross = await client.post(
            url, data={"csrf": token}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 403
        site = await client.post(
            url, data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
        assert site.status_code == 403
        assert demo.memory.observations.get(oid).status is ObservationStatus.ACTIVE
        same = await client.post(url, data={"csrf": token}, headers={"Origin": BASE})
        assert same.status_code == 303
    assert demo.memory.observations.get(oid).status is ObservationStatus.DELETED


async def test_an_oversized_form_is_refused(admin: httpx.AsyncClient, demo: Demo) -> None:
    token = await _form_token(admin, demo)
    big = await admin.post(
        f"/console/profiles/{demo.profile_id}/traits",
        data={"csrf": token, "key": "note", "value": "x" * 100_000},
    )
    assert big.status_code == 422
    assert not [t for t in demo.memory.traits.list(demo.profile_id) if t.key == "note"]


# -- tenant isolation -----------------------------------------------------------------------------


async def test_another_tenants_key_sees_nothing_of_this_tenant(demo: Demo) -> None:
    memory = demo.memory
    conv = memory.conversations.list(demo.profile_id)[0]
    oid = _active(demo)[0]
    dana_texts = [m.text for m in memory.conversations.list_messages(conv.id)]
    async with _client(demo, demo.keys.other_admin) as client:
        home = await client.get("/console/")
        assert "Olive Other" in home.text and demo.profile_id not in home.text
        for identifier in (PHONE, "email:dana.whitfield@example.com", demo.profile_id):
            missing = await client.get("/console/", params={"identifier": identifier})
            assert missing.status_code == 404
        pages = [
            await client.get(f"/console/profiles/{demo.profile_id}"),
            await client.get(f"/console/profiles/{demo.profile_id}", params={"recall": "wifi"}),
            await client.get(f"/console/conversations/{conv.id}"),
            await client.get(
                f"/console/conversations/{conv.id}/events",
                params={"after": "0", "since": "2020-01-01T00:00:00+00:00"},
            ),
        ]
        assert [p.status_code for p in pages] == [404, 404, 404, 404]
        own = (await client.get(f"/console/profiles/{demo.other_profile_id}")).text
        token = csrf_of(own)
        posts = [
            await client.post(f"/console/observations/{oid}/retract", data={"csrf": token}),
            await client.post(
                f"/console/observations/{oid}/correct", data={"csrf": token, "text": "pwned"}
            ),
            await client.post(
                f"/console/profiles/{demo.profile_id}/traits",
                data={"csrf": token, "key": "tier", "value": "x"},
            ),
            await client.post(
                f"/console/profiles/{demo.other_profile_id}/merge",
                data={"csrf": token, "other": demo.profile_id},
            ),
            await client.post(
                f"/console/profiles/{demo.other_profile_id}/split",
                data={"csrf": token, "merged": _merged_away(demo)},
            ),
        ]
        assert [p.status_code for p in posts] == [404, 404, 404, 404, 404]
        knowledge = await client.get("/console/knowledge", params={"q": "double charge refund"})
        everything = " ".join(p.text for p in [home, *pages, *posts, knowledge])
    for text in dana_texts:
        assert shown(text) not in everything
    assert "Whitfield" not in everything and "whitfield" not in everything
    assert memory.observations.get(oid).status is ObservationStatus.ACTIVE
    assert not [t for t in memory.traits.list(demo.profile_id) if t.key == "tier"]
    assert memory.tenant("other").profiles.get(demo.other_profile_id).merged_into is None
    assert memory.profiles.get(_merged_away(demo)).id == demo.profile_id  # still merged


async def test_this_tenants_key_sees_nothing_of_the_other(demo: Demo) -> None:
    other = demo.memory.tenant("other")
    oid = other.observations.list(demo.other_profile_id)[0].id
    conv = other.conversations.list(demo.other_profile_id)[0]
    async with _client(demo, demo.keys.admin) as client:
        pages = [
            await client.get("/console/"),
            await client.get("/console/", params={"identifier": OTHER_PHONE}),
            await client.get(f"/console/profiles/{demo.other_profile_id}"),
            await client.get(f"/console/conversations/{conv.id}"),
            await client.get("/console/knowledge", params={"q": "refunds loyalty vault"}),
        ]
        assert [p.status_code for p in pages[1:4]] == [404, 404, 404]
        token = await _form_token(client, demo)
        retract = await client.post(f"/console/observations/{oid}/retract", data={"csrf": token})
        assert retract.status_code == 404
    assert all(OTHER_SECRET not in p.text and "Olive" not in p.text for p in pages)
    assert other.observations.get(oid).status is ObservationStatus.ACTIVE


# -- live ---------------------------------------------------------------------------------------


def _events(body: str) -> list[tuple[str, str, str]]:
    """(event, id, data) of a text/event-stream body."""
    out = []
    for block in re.split(r"\r?\n\r?\n", body):
        fields: dict[str, list[str]] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        if "event" in fields:
            out.append(
                (fields["event"][0], fields.get("id", [""])[0], "\n".join(fields.get("data", [])))
            )
    return out


async def test_the_live_stream_sends_new_messages_and_observations(demo: Demo) -> None:
    memory = demo.memory
    conv = memory.conversations.add("chat", [PHONE], subject="live")
    first = memory.conversations.add_message(conv.id, "customer", "Hello again")
    async with _client(demo, demo.keys.read) as client:
        page = await client.get(f"/console/conversations/{conv.id}")
        live = re.search(r'data-live="([^"]+)"', page.text)
        assert live is not None
        url = html.unescape(live.group(1))
        assert "after=1" in url
        second = memory.conversations.add_message(
            conv.id, "customer", "Please <call> me on my new number, I moved to Boulder."
        )
        noted = memory.observations.add(demo.profile_id, "Moved to Boulder", "context")
        memory.conversations.end(conv.id)  # the stream ends with the conversation
        stream = await client.get(url)
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = _events(stream.text)
    kinds = [e[0] for e in events]
    assert kinds[-1] == "ended"
    messages = [(i, d) for k, i, d in events if k == "msg"]
    assert [i for i, _ in messages] == [second.id]  # the first was on the page already
    assert "Please &lt;call&gt; me" in messages[0][1]
    observations = {i: d for k, i, d in events if k == "obs"}
    assert noted.id in observations
    assert first.id not in {i for _, i, _ in events}


async def test_the_live_stream_needs_a_key_of_the_tenant(demo: Demo) -> None:
    conv = demo.memory.conversations.list(demo.profile_id)[0]
    async with _client(demo, None) as client:
        answer = await client.get(
            f"/console/conversations/{conv.id}/events",
            params={"after": "0", "since": "2020-01-01T00:00:00+00:00"},
        )
        assert answer.status_code == 303
    async with _client(demo, demo.keys.read) as client:
        bad = await client.get(
            f"/console/conversations/{conv.id}/events", params={"after": "x", "since": "y"}
        )
        assert bad.status_code == 422
