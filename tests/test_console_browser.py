"""The console in a real browser: Debian's headless Chromium driven by Playwright (no download).

Signs in with a token, searches, opens a message, reveals a blurred image and checks the reveal was
audited, then signs in as a monitor, approves a discovery candidate, turns an alert into a takedown
request in one step and marks it sent; screenshots of the revealed message and of the request are
kept under ``test-artifacts/``.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crawler.api.app import build_app
from crawler.evidence.members import CaseMembers
from crawler.evidence.wiring import build_ledger
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role
from foundation.models import Alert, AlertKind, utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.authorizations import AuthorizationRepo, channel_scope
from tests.test_investigate_api import load_case, token

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@asynccontextmanager
async def console_in_chromium(app: web.Application) -> AsyncIterator[tuple[str, Any]]:
    """Serve ``app`` on loopback and open Debian's Chromium (headless, no background traffic); yield
    the console's base URL and the browser, and close both however the test ends."""
    from playwright.async_api import async_playwright

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield f"http://{host}:{port}", browser
            finally:
                await browser.close()
    finally:
        await runner.cleanup()


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (scripts/install-browser.sh)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="the playwright Python package is not installed"
    ),
]


async def test_investigator_signs_in_searches_and_reveals_an_image(
    store: Store, ingest: Ingest, tmp_path: Path
) -> None:

    from crawler.discovery.service import DiscoveryService

    case = await load_case(store, ingest, tmp_path)
    await DiscoveryService(store).add_tip("https://t.me/sample_room_one", source="hotline")
    await AlertRepo(store).raise_alert(
        Alert(key=f"match/test-list/{case.sha}", kind=AlertKind.HASH_MATCH, sha256=case.sha,
              summary="media matches list 'test-list'", details={"message": "alpha_news/2"},
              channels=["alpha_news"], raised_at=utcnow())
    )  # fmt: skip
    inv = await token(store, Role.INVESTIGATOR, "ana")
    mon = await token(store, Role.MONITOR, "mo")
    await AuthorizationRepo(store).add(
        case_id="CASE-B",
        warrant_ref="W-B",
        approver="judge",
        scope=[channel_scope("alpha_news")],
        accounts=["ana"],
        valid_until=time.time() + 3600,
    )
    # investigators see media only within the cases they belong to (issue 16)
    await CaseMembers(build_ledger(store, case.settings)).add("CASE-B", "ana", actor="cli:admin")
    async with console_in_chromium(build_app(store, case.settings, ALL_MODULES)) as (base, browser):
        page = await browser.new_page(viewport={"width": 1200, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        await page.goto(f"{base}/console/search")
        assert "/console/login" in page.url
        await page.fill("#token", inv)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console/search")

        await page.fill("input[name=sha256]", case.sha)
        await page.click("form.search button[type=submit]")
        await page.wait_for_selector("ol.messages li.message")
        keys = await page.locator("ol.messages li.message .meta a").all_inner_texts()
        assert sorted(keys) == ["alpha_news/2", "beta_chat/7"]

        await page.click("text=alpha_news/2")
        await page.wait_for_url(f"{base}/console/messages/alpha_news/2")
        # the server sends a small blurred greyscale thumbnail; the picture itself only after a click
        image = page.locator("article.focus img.preview")
        await image.wait_for()
        assert await image.evaluate("el => el.complete && el.naturalWidth") == 96
        assert "/preview" in (await image.get_attribute("src") or "")
        await page.click("article.focus form.reveal button[type=submit]")
        await page.wait_for_url(re.compile(r".*/console/media/[0-9a-f]{64}/reveal$"))
        full = page.locator("figure.revealed img")
        await full.wait_for()
        assert await full.evaluate("el => el.complete && el.naturalWidth") == 96
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)
        assert not [e for e in errors if "Content Security Policy" in e], errors

        await page.click("form.signout button[type=submit]")
        await page.wait_for_url(f"{base}/console/login")
        await page.goto(f"{base}/console/candidates")
        await page.fill("#token", mon)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console/candidates")
        row = page.locator("table.candidates tr", has_text="https://t.me/sample_room_one")
        await row.locator("button[value=approve]").click()
        await page.wait_for_url(f"{base}/console/candidates")
        await page.goto(f"{base}/console/candidates?status=approved")
        assert "https://t.me/sample_room_one" in await page.locator("table.candidates").inner_text()

        # one step from an alert to a takedown request, then marked sent
        await page.goto(f"{base}/console/alerts")
        alert_row = page.locator("tr", has_text="matches list 'test-list'")
        await alert_row.locator("select[name=reason]").select_option("sexual_deepfake")
        await alert_row.locator("button", has_text="Create takedown").click()
        await page.wait_for_url(re.compile(r".*/console/takedowns/TD-\d+$"))
        report = await page.locator("pre.report").inner_text()
        assert "https://t.me/alpha_news/2" in report and "Sexual deepfake" in report
        await page.fill("form.sent input[name=via]", "email:abuse@telegram.org")
        await page.click("form.sent button[type=submit]")
        await page.wait_for_selector("text=via email:abuse@telegram.org")
        await page.screenshot(path=str(ARTIFACTS / "console-takedown.png"), full_page=True)
    candidate = await store["candidates"].find_one({"_id": "https://t.me/sample_room_one"})
    assert candidate is not None and candidate["status"] == "approved" and candidate["review"]["by"] == "token:mo"
    entry = await store["audit"].find_one({"action": "media.reveal", "actor": "token:ana"})
    assert entry is not None and entry["target"] == case.sha and entry["via"] == "console"
    assert entry["filter"] == {"message": "alpha_news/2"}
    takedown = await store["takedowns"].find_one({})
    assert takedown is not None and takedown["created_by"] == "token:mo" and takedown["status"] == "sent"
    assert takedown["item_ids"] == ["message:alpha_news/2", "message:beta_chat/7"]
