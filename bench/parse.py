"""Channel-page parsing speed: tgwatch's parser beside snscrape's Telegram parser, same HTML, one run.

Goal (issue 3): >= 5x snscrape's messages/s while extracting more fields.
Run: ``python bench/parse.py [--seconds 3]``. Reads the real pages in ``../shared/corpus/channel``
(the full ``t.me/s/NAME`` pages, not the fragments); no network for either parser.

snscrape parses a page in ``TelegramChannelScraper._soup_to_items(soup, url)`` after building a
BeautifulSoup tree (``bs4`` + lxml); both steps are timed, as our timing includes lxml's parse.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._table import Row, print_table
from spiders.parsing.channel import parse_page

Parser = Callable[..., tuple[int, int]]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "channel"


def _filled(value: Any) -> int:
    """How many leaf fields carry a value (None, "", [], {} and False do not count)."""
    if value is None or value is False or value == "" or value == [] or value == {}:
        return 0
    if isinstance(value, dict):
        return sum(_filled(v) for v in value.values())
    if isinstance(value, list):
        return sum(_filled(v) for v in value)
    return 1


def ours(pages: list[tuple[str, str]], *, count_fields: bool = False) -> tuple[int, int]:
    messages = fields = 0
    for url, html in pages:
        page = parse_page(html, url)
        messages += len(page.messages)
        if count_fields:
            for m in page.messages:
                fields += _filled(m.model_dump(exclude={"raw", "ref", "source"}))
    return messages, fields


def snscrape_parser() -> Parser | None:
    try:
        import bs4
        from snscrape.modules.telegram import TelegramChannelScraper
    except ImportError:
        return None
    scraper = TelegramChannelScraper("bench")

    def run(pages: list[tuple[str, str]], *, count_fields: bool = False) -> tuple[int, int]:
        messages = fields = 0
        for url, html in pages:
            for post in scraper._soup_to_items(bs4.BeautifulSoup(html, "lxml"), url):
                messages += 1
                if count_fields:
                    fields += _filled(dataclasses.asdict(post))
        return messages, fields

    return run


def measure(fn: Parser, pages: list[tuple[str, str]], seconds: float) -> dict[str, float]:
    counted, fields = fn(pages, count_fields=True)  # warm-up, and the field count (not timed)
    rounds = messages = 0
    started = time.perf_counter()
    while True:
        m, _ = fn(pages)
        rounds += 1
        messages += m
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
    return {
        "msgs_per_s": messages / elapsed,
        "pages_per_s": rounds * len(pages) / elapsed,
        "fields_per_msg": fields / counted if counted else 0.0,
        "messages": messages / rounds,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="time per parser")
    args = ap.parse_args()
    files = sorted(p for p in CORPUS.glob("*.html") if "-s-" in p.name)
    if not files:
        print(f"no corpus pages under {CORPUS}", file=sys.stderr)
        return 2
    pages = [(f"https://t.me/s/{p.stem.split('-s-')[0]}", p.read_text(encoding="utf-8")) for p in files]
    ours_r = measure(ours, pages, args.seconds)
    sns = snscrape_parser()
    sns_r = measure(sns, pages, args.seconds) if sns is not None else None
    rows = [
        Row("parse corpus pages", "messages/s", ours_r["msgs_per_s"], sns_r["msgs_per_s"] if sns_r else None, ">= 5x"),
        Row("parse corpus pages", "pages/s", ours_r["pages_per_s"], sns_r["pages_per_s"] if sns_r else None),
        Row(
            "fields extracted",
            "per message",
            ours_r["fields_per_msg"],
            sns_r["fields_per_msg"] if sns_r else None,
            "more",
        ),
    ]
    title = f"{len(pages)} corpus channel pages, {int(ours_r['messages'])} messages a round; baseline: snscrape 0.7"
    print_table(rows, title)
    if sns_r:
        ratio = ours_r["msgs_per_s"] / sns_r["msgs_per_s"]
        print(f"goal >= 5x snscrape: {'met' if ratio >= 5 else 'NOT met'} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
