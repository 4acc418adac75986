"""Every console page in a real browser, in Korean and in English: labels, keyboard, contrast.

Headless Chromium (Debian's, driven by Playwright) walks ``tests/console_world.py:PAGES`` in both
languages as an admin and as a monitor, saves a screenshot of each under
``test-artifacts/pages/<lang>/``, and fails on a form control without a label, a text whose
contrast with its background is under WCAG AA (4.5:1), a page the keyboard cannot leave the header
of (Tab reaches the skip link first, and it moves focus to the content), an English catalog string
in the Korean walk, or a browser console error (a CSP violation included).
"""

from __future__ import annotations

import re
from pathlib import Path

from crawler.api.app import build_app
from crawler.ingest import Ingest
from crawler.server_modules import ALL_MODULES
from storage.client import Store
from tests.console_world import build_world
from tests.test_console_browser import ARTIFACTS, console_in_chromium, pytestmark  # noqa: F401
from tests.test_console_i18n import english_only, untranslated

#: form controls with no label, no aria-label and no aria-labelledby (hidden fields and buttons with text excepted)
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(el => !(el.labels && el.labels.length))
  .filter(el => !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML.slice(0, 120))"""

#: the lines a person reads, without documents shown verbatim (a report in the language it is sent in)
SHOWN_TEXT = """() => { const body = document.body.cloneNode(true);
  body.querySelectorAll('[data-verbatim]').forEach(el => el.remove());
  document.documentElement.appendChild(body); const text = body.innerText; body.remove(); return text.split('\\n'); }"""

#: elements whose own text has a contrast ratio under 4.5:1 with the first opaque background behind it
LOW_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    if (!own || box.width === 0 || box.height === 0) continue;
    const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)} ${text}`);
  }
  return bad;
}"""


async def test_every_page_in_both_languages_is_labelled_keyboard_usable_and_readable(
    store: Store, ingest: Ingest, tmp_path: Path
) -> None:

    world = await build_world(store, ingest, tmp_path)
    catalog = english_only()
    problems: list[str] = []
    shots = 0
    async with console_in_chromium(build_app(store, world.case.settings, ALL_MODULES)) as (base, browser):
        for lang in ("ko", "en"):
            context = await browser.new_context(viewport={"width": 1200, "height": 900}, locale=lang)
            page = await context.new_page()
            errors: list[str] = []
            page.on(
                "console",
                lambda msg, e=errors: (
                    e.append(msg.text)
                    if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                    else None
                ),
            )
            page.on(
                "response",
                lambda r, e=errors: (
                    e.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith(("/favicon.ico", "/nope"))
                    else None
                ),
            )
            out = ARTIFACTS / "pages" / lang
            out.mkdir(parents=True, exist_ok=True)
            await page.goto(f"{base}/console/login?lang={lang}")
            await page.screenshot(path=str(out / "login.png"), full_page=True)
            problems += [f"{lang} login: unlabelled {u}" for u in await page.evaluate(UNLABELLED)]
            await page.fill("#token", world.admin)
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/console/")  # signing in lands on the dashboard
            assert await page.get_attribute("html", "lang") == lang
            # the monitor's flow first: a takedown drafted from the alerts page, in this language
            await page.goto(f"{base}/console/alerts")
            row = page.locator("tr", has=page.locator("a.match-link"))
            await row.locator("select[name=reason]").select_option("sexual_deepfake")
            await row.locator("button.create-takedown").click()
            await page.wait_for_url(re.compile(r".*/console/takedowns/TD-\d+$"))
            request_id = page.url.rsplit("/", 1)[1]
            for path in world.paths(request_id):
                await page.goto(base + path)
                await page.wait_for_load_state("load")
                name = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_")[:80] or "home"
                await page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                shots += 1
                problems += [f"{lang} {path}: unlabelled {u}" for u in await page.evaluate(UNLABELLED)]
                problems += [f"{lang} {path}: contrast {c}" for c in await page.evaluate(LOW_CONTRAST)]
                if lang == "ko":
                    texts = await page.evaluate(SHOWN_TEXT)
                    problems += [f"ko {path}: {h}" for h in untranslated(texts, catalog)]
                # keyboard: the first Tab lands on the skip link, which takes focus to the content
                await page.keyboard.press("Tab")
                first = await page.evaluate("() => document.activeElement.className")
                if first != "skip":
                    problems.append(f"{lang} {path}: first Tab focused {first!r}, not the skip link")
                await page.keyboard.press("Enter")
                if await page.evaluate("() => document.activeElement.id") != "main":
                    problems.append(f"{lang} {path}: the skip link did not move focus to the content")
            # the safe review, by keyboard alone: Tab to Reveal on the match page and press Enter
            await page.goto(f"{base}/console/match?alert={world.alert.replace('/', '%2F')}")
            thumb = page.locator("img.preview")
            assert await thumb.evaluate("el => el.complete && el.naturalWidth") > 0
            await page.focus("form.reveal button")
            await page.keyboard.press("Enter")
            await page.wait_for_url(re.compile(r".*/reveal$"))
            await page.screenshot(path=str(out / "reveal.png"), full_page=True)
            shots += 1
            assert await page.locator("figure.revealed img").evaluate("el => el.naturalWidth") == 96
            problems += [f"{lang}: browser error {e}" for e in errors]
            await context.close()
    assert shots == 2 * (len(world.paths("x")) + 1)
    assert not problems, "\n".join(problems)
    reveals = [e async for e in store["audit"].find({"action": "media.reveal", "actor": "token:boss"})]
    assert len(reveals) == 2 and all(e["via"] == "console" for e in reveals)
