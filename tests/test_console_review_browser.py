"""The review queue in a real browser (Debian's headless Chromium through Playwright, no download).

A list with the ``draft`` takedown policy matches stored media; the policy hook drafts two requests
(the real path after a match). A monitor signs in, sees each draft beside its match (list,
distance), approves one in one click and sees it sent, rejects the other with a reason, then opens
the notifications page and sees a rule and its delivery. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import config
from crawler.api.app import build_app
from crawler.media.matcher import MatchHit, raise_match_alerts
from crawler.notify.dispatcher import Dispatcher as NotifyDispatcher
from crawler.notify.rules import NotifyRule
from crawler.server_modules import ALL_MODULES
from crawler.takedowns.autodraft import PolicyHook
from crawler.takedowns.sending import NO_SENDER_VIA, Dispatcher
from crawler.takedowns.service import TakedownService
from crawler.tokens import Role
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.hashlists import HashListRepo
from storage.repos.notify import NotifyRuleRepo
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import SECRET, Clock, webhook_receiver
from tests.test_console_browser import ARTIFACTS, console_in_chromium, pytestmark  # noqa: F401  (same marks)
from tests.test_investigate_api import token
from tests.test_takedown_api import OTHER, SHA, World, world  # noqa: F401  (fixture)

LIST = "victim-list"


async def _drafts(store: Store, world: World) -> list[str]:  # noqa: F811
    """Two drafts made by the list's ``draft`` policy from two list matches."""
    lists = HashListRepo(store)
    await lists.add_entries(LIST, "pdq", [("pdq", "f" * 64, None), ("sha256", OTHER, None)])
    assert await lists.set_takedown(LIST, policy="draft") is not None
    service = TakedownService(store, world.ledger, world.settings.takedowns)
    hook = PolicyHook(service, Dispatcher(service, []), world.settings.takedowns, background=False)
    made = []
    for sha, hit, message in (
        (SHA, MatchHit(LIST, "pdq", "f" * 64, 12.0, None), "room_one/1"),
        (OTHER, MatchHit(LIST, "sha256", OTHER, 0.0, None), "room_two/8"),
    ):
        (alert,) = await raise_match_alerts(AlertRepo(store), sha, [hit], channels=[message.split("/")[0]],
                                            context={"message": message})  # fmt: skip
        req = await hook(alert)
        assert req is not None and req.status.value == "draft" and req.policy == "draft"
        made.append(req.id)
    return made


async def test_monitor_reviews_drafts_and_sees_notifications(store: Store, world: World, tmp_path: Path) -> None:  # noqa: F811

    first, second = await _drafts(store, world)
    notify_settings = config.load(data_dir=tmp_path, http=LOOPBACK_HTTP)
    async with webhook_receiver() as hook:
        rule = NotifyRule(name="ops-hook", sink="webhook", target=hook.url, secret_env="HOOK_SECRET")
        assert await NotifyRuleRepo(store).add(rule.to_doc())
        dispatcher = NotifyDispatcher(store, notify_settings, env={"HOOK_SECRET": SECRET}, clock=Clock())
        try:
            assert (await dispatcher.drain())["sent"] >= 1
        finally:
            await dispatcher.aclose()
    mon = await token(store, Role.MONITOR, "mo")
    async with console_in_chromium(build_app(store, world.settings, ALL_MODULES)) as (base, browser):
        page = await browser.new_page(viewport={"width": 1400, "height": 1200})
        await page.goto(f"{base}/console/review")
        assert "/console/login" in page.url
        await page.fill("#token", mon)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console/review")

        draft = page.locator(f"#draft-{first}")
        await draft.wait_for()
        assert await draft.locator("td.list").first.inner_text() == LIST
        assert await draft.locator("td.distance").first.inner_text() == "12.0"
        assert "https://t.me/room_one/1" in await draft.locator("table.items").inner_text()
        assert f"Removal request {first}" in await draft.locator("pre.report").inner_text()
        assert await page.locator("section.draft img").count() == 0, "digests only, never an image"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "console-review.png"), full_page=True)

        await draft.locator("form.approve button[type=submit]").click()  # one click
        await page.wait_for_url(f"{base}/console/takedowns/{first}")
        await page.wait_for_selector(f"text={NO_SENDER_VIA}")
        await page.screenshot(path=str(ARTIFACTS / "console-review-sent.png"), full_page=True)

        await page.goto(f"{base}/console/review")
        other = page.locator(f"#draft-{second}")
        assert await other.locator("td.distance").first.inner_text() == "0.0"
        await other.locator("form.reject input[name=why]").fill("not the reported picture")
        await other.locator("form.reject button[type=submit]").click()
        await page.wait_for_url(f"{base}/console/review")
        await page.wait_for_selector("p.empty")

        await page.click("header nav a[href='/console/notify']")
        await page.wait_for_url(f"{base}/console/notify")
        assert "ops-hook" in await page.locator("table.rules").inner_text()
        log = page.locator("table.log tr.outcome-sent", has_text="ops-hook")
        assert await log.count() >= 1
        assert SECRET not in await page.content()
        await page.screenshot(path=str(ARTIFACTS / "console-notify.png"), full_page=True)
    docs = {d["_id"]: d async for d in store["takedowns"].find({})}
    assert docs[first]["status"] == "sent" and docs[first]["approved_by"] == "token:mo"
    assert docs[second]["status"] == "rejected" and docs[second]["reject_reason"] == "not the reported picture"
    assert re.fullmatch(r"TD-\d+", first)
