"""The console in a real headless Chromium (Debian's ``chromium`` package, driven
by Playwright through ``executable_path``; Playwright's own browsers are never
downloaded), against a real uvicorn on 127.0.0.1 serving the demo's data.

Install the browser with ``.ci/chromium.sh``. Locally these tests are skipped
when ``/usr/bin/chromium`` is missing, unless ``$CONVMEM_REQUIRE_BROWSER`` is
set (CI sets it, so a missing browser fails there).

The profile card's screenshot in the docs is regenerated with::

    CONVMEM_CONSOLE_SCREENSHOT=docs/console.png python -m pytest tests/console/test_browser.py
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_core.models import ObservationStatus
from tests.console.conftest import PHONE, Demo, Server, open_store, seed

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("CONVMEM_REQUIRE_BROWSER", "") not in ("", "0")
# Read at import: the suite's autouse fixture clears CONVMEM_* variables.
_SHOT = os.environ.get("CONVMEM_CONSOLE_SCREENSHOT", "")
SCREENSHOT = Path(_SHOT).resolve() if _SHOT else None  # (tests run in a temporary cwd)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if REQUIRED:
            pytest.fail(
                f"a browser is required ($CONVMEM_REQUIRE_BROWSER) but {CHROMIUM} is missing: "
                "run .ci/chromium.sh",
                pytrace=False,
            )
        pytest.skip(f"{CHROMIUM} is missing (install it with .ci/chromium.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Demo, str]]:
    memory = open_store(tmp_path)
    demo = seed(memory)
    from convmem_api.app import create_app

    # the whole server, as `convmem serve --http` runs it: REST, MCP and the console
    with Server(create_app(memory.settings, memory=memory)) as url:
        yield demo, url
    memory.close()


def _page(browser: Any) -> tuple[Any, list[str]]:
    """A fresh browser context and page, and the errors its console reports."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    return page, errors


def _sign_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/console/")
    assert page.url.endswith("/console/signin")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/console/")


def test_an_agent_looks_up_the_demo_customer_recalls_and_retracts(
    browser: Any, served: tuple[Demo, str], tmp_path: Path
) -> None:
    demo, url = served
    page, errors = _page(browser)
    _sign_in(page, url, demo.keys.admin)

    page.fill("main input[name=identifier]", "phone:(617) 555-0142")
    page.click("main button")
    page.wait_for_url(f"{url}/console/profiles/{demo.profile_id}")
    plan = page.locator('tr.trait[data-key="plan"]')
    assert "Premium" in plan.inner_text() and "crm" in plan.inner_text()
    active = page.locator("#active-observations > li.obs")
    texts = [o.text for o in demo.memory.observations.list(demo.profile_id)]
    assert active.count() == len(texts) > 0
    shown = page.locator("#active-observations").inner_text()
    assert all(text in shown for text in texts)

    first = page.locator("#active-observations > li.obs").first
    oid = (first.get_attribute("id") or "").removeprefix("obs-")
    first.locator("form.retract input[name=reason]").fill("customer says it is fixed")
    first.locator("form.retract button").click()
    page.wait_for_selector(f"#observation-history > #obs-{oid}")
    assert page.locator(f"#active-observations > #obs-{oid}").count() == 0
    assert "retracted" in page.locator(f"#obs-{oid}").inner_text()
    assert demo.memory.observations.get(oid).status is ObservationStatus.DELETED

    shot = tmp_path / "console.png"  # the card: traits, observations, their history
    page.locator("#profile-card").screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if SCREENSHOT is not None:
        shutil.copyfile(shot, SCREENSHOT)

    page.fill("input[name=recall]", "Is the internet working and how should we contact them?")
    page.click("#recall button")
    page.wait_for_selector("#recall-result")
    assert "<customer_memory" in page.locator("pre.context").inner_text()
    assert page.locator("#recall-result tr.item").count() > 0

    audit = demo.memory.governance.audit.list(action="retract_observation")
    assert [e.actor for e in audit] == [f"key:{demo.keys.admin_id}"]
    assert errors == []


def test_an_open_conversation_updates_live(browser: Any, served: tuple[Demo, str]) -> None:
    from playwright.sync_api import expect

    demo, url = served
    memory = demo.memory
    conv = memory.conversations.add("chat", [PHONE], subject="Router again")
    memory.conversations.add_message(conv.id, "customer", "Hi, the router is blinking red.")
    page, errors = _page(browser)
    _sign_in(page, url, demo.keys.read)
    page.goto(f"{url}/console/conversations/{conv.id}")
    page.wait_for_selector("body[data-live=connected]")
    assert page.locator("#transcript > li.msg").count() == 1

    said = memory.conversations.add_message(
        conv.id, "customer", "Also, please only email me from now on."
    )
    page.wait_for_selector(f"#transcript > #msg-{said.id}")
    noted = memory.observations.add(
        demo.profile_id, "Wants to be contacted by email only", "preference", evidence=[said.id]
    )
    page.wait_for_selector(f"#live-observations > #obs-{noted.id}.new")
    assert "email only" in page.locator(f"#obs-{noted.id}").inner_text()
    memory.conversations.end(conv.id)
    expect(page.locator("#conv-status")).to_have_text("ended")
    assert page.locator("#transcript > li.msg").count() == 2
    assert errors == []


def test_a_read_key_gets_no_action_buttons(browser: Any, served: tuple[Demo, str]) -> None:
    demo, url = served
    page, errors = _page(browser)
    _sign_in(page, url, demo.keys.read)
    page.goto(f"{url}/console/profiles/{demo.profile_id}")
    assert page.locator("#active-observations > li.obs").count() > 0
    assert page.locator("form.retract, form.correct, #set-trait, #merge").count() == 0
    assert errors == []
