"""Issue #20's done-when in a real browser, in Korean: a monitor signs in with a Korean browser,
sees today on the dashboard in Korean with an SVG chart, adds a crawl target from the console, and
reviews a hash-list match beside its list entry with the blurred thumbnail (no reveal for a
monitor). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from foundation import i18n
from storage.client import Store
from storage.repos.targets import TargetRepo
from tests.console_world import build_world
from tests.test_console_browser import ARTIFACTS, console_in_chromium, pytestmark  # noqa: F401  (same marks)


def ko(msgid: str) -> str:
    text = i18n.translated("ko", msgid)
    assert text and text != i18n.translated("en", msgid), msgid
    return text


async def test_a_korean_monitor_follows_the_morning_story(store: Store, ingest: Ingest, tmp_path: Path) -> None:

    world = await build_world(store, ingest, tmp_path)
    ARTIFACTS.mkdir(exist_ok=True)
    async with console_in_chromium(build_app(store, world.case.settings, ALL_MODULES)) as (base, browser):
        context = await browser.new_context(
            viewport={"width": 1400, "height": 1200}, locale="ko-KR",
            extra_http_headers={"Accept-Language": "ko-KR,ko;q=0.9"},
        )  # fmt: skip
        page = await context.new_page()
        await page.goto(f"{base}/console/")
        assert "/console/login" in page.url
        await page.fill("#token", world.monitor)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/console/")

        assert await page.get_attribute("html", "lang") == "ko"
        assert (await page.locator("main h1").first.inner_text()).strip() == ko("console.dashboard.title")
        charts = page.locator("svg[role=img]")
        assert await charts.count() >= 1
        names = await page.eval_on_selector_all("svg[role=img] > title", "els => els.map(e => e.textContent)")
        charts_ko = {ko(f"console.dashboard.chart_{c}") for c in ("alerts", "volume", "removal")}
        assert charts_ko & set(names), names
        await page.screenshot(path=str(ARTIFACTS / "console-ko-dashboard.png"), full_page=True)

        await page.goto(f"{base}/console/targets")
        form = page.locator("form[action='/console/targets/add']")
        await form.locator("input[name=name]").fill("@new_room")
        await form.locator("select[name=method]").select_option("web")
        await form.locator("input[name=every]").fill("6h")
        await form.locator("button[type=submit]").click()
        await page.wait_for_url(f"{base}/console/targets")
        assert "new_room" in await page.locator("table.targets").inner_text()
        assert await TargetRepo(store).get("new_room") is not None
        await page.screenshot(path=str(ARTIFACTS / "console-ko-targets.png"), full_page=True)

        await page.goto(f"{base}/console/match?alert={quote(world.alert, safe='')}")
        assert (await page.locator("main h1").inner_text()).strip() == ko("console.match.heading")
        preview = page.locator("img.preview")
        await preview.wait_for()
        assert await preview.evaluate("img => img.complete && img.naturalWidth > 0"), "the thumbnail loaded"
        assert await page.locator("form[action$='/reveal']").count() == 0, "a monitor never reveals"
        assert ko("console.media_item.triage_only") in await page.locator("main").inner_text()
        await page.screenshot(path=str(ARTIFACTS / "console-ko-match.png"), full_page=True)
