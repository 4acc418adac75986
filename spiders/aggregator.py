"""The aggregator spider: read sites that advertise Telegram links, by site rules or generically.

A ``SiteRule`` (``config/aggregators.py``) names the listing blocks, the link selectors or text
patterns, the context fields (title, description, category, tags) and the pages to follow
(pagination, categories). Without rules (``SiteRule.generic``) every Telegram link on the page is
taken, with the text of its nearest enclosing block as context, and ``rel=next`` is followed.

Each fetched page becomes one ``AggregatorPageItem`` (links with their context, the page URL and
the fetch time). Items leave Scrapy through ``DiscoveryPipeline``, which hands them to the
discovery sink of the crawl (``crawler.discovery.run``) — spiders never touch the store.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import urlsplit

import scrapy
from parsel import Selector, SelectorList
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from config.aggregators import SiteRule
from foundation.errors import DEFAULT_RETRY_AFTER, BadPage, SourceError, TgwatchError, error_for_status
from foundation.links import TgLink, normalize
from foundation.models import utcnow
from spiders.egress import as_egress_denied
from spiders.shared import shared

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

#: elements whose text is "the nearest enclosing block" of a link (inline elements are looked through)
BLOCK_TAGS = frozenset(
    {
        "p", "li", "dd", "dt", "td", "th", "tr", "div", "article", "section", "aside", "header", "footer",
        "main", "nav", "blockquote", "figure", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "body",
    }
)  # fmt: skip
#: a Telegram web link written as text (not linked)
TEXT_LINK = re.compile(
    r"""(?<![\w./@-])(?:https?://)?(?:[\w-]+\.)?(?:t\.me|telegram\.me|telegram\.dog)/[^\s<>"'`)\]]+""", re.I
)
MENTION = re.compile(r"(?<![\w@/.+-])@([A-Za-z][A-Za-z0-9_]{3,31})(?![\w@]|\.[A-Za-z0-9])")
_TRAILING = ".,;:!?)]}»”’'\"…—"
MAX_CONTEXT = 500
_SPACES = re.compile(r"\s+")


def _clean(text: str | None, limit: int = MAX_CONTEXT) -> str:
    return _SPACES.sub(" ", text or "").strip()[:limit]


def _text_of(nodes: Selector | SelectorList[Selector]) -> str:
    return _clean(" ".join(nodes.xpath(".//text()[not(ancestor::script) and not(ancestor::style)]").getall()))


@dataclass
class AggregatorPageItem:
    """One aggregator page: every room link it showed with its context, in page order."""

    site: str
    page_url: str
    fetched_at: datetime
    links: list[tuple[TgLink, dict[str, Any]]] = field(default_factory=list)
    ignored: int = 0  # Telegram-looking or listed links that are no rooms (share, proxy, invalid names)


@dataclass
class FetchFailed:
    """A page or preview that could not be fetched even after retries."""

    url: str
    error: TgwatchError
    meta: dict[str, Any] = field(default_factory=dict)


def map_failure(failure: Failure) -> TgwatchError:
    """A Scrapy download failure → our error tree (the spider edge does the translating)."""
    request = getattr(failure, "request", None)
    url = request.url if request is not None else None
    denied = as_egress_denied(failure.value, url)
    if denied is not None:
        return denied
    response = getattr(failure.value, "response", None)
    if response is not None:
        # the retry middleware leaves the server's Retry-After in ``meta`` when it gave up waiting
        meta = response.meta
        retry_after = float(meta.get("retry_after") or DEFAULT_RETRY_AFTER) if "retry_after" in meta else None
        error = error_for_status(response.status, url, retry_after=retry_after, retried=True)
        if error is not None:
            return error
    return SourceError(f"{type(failure.value).__name__}: {failure.value}", url=url)


class _PageLinks:
    """Collects one page's links, keeping the first context of each canonical link."""

    def __init__(self) -> None:
        self.links: dict[str, tuple[TgLink, dict[str, Any]]] = {}
        self.ignored = 0

    def add(self, raw: str, context: dict[str, Any]) -> None:
        link = normalize(raw.rstrip(_TRAILING))
        if link is None:
            self.ignored += 1
            return
        self.links.setdefault(link.canonical, (link, context))


def _nearest_block(node: Selector) -> Selector:
    for ancestor in node.xpath("ancestor-or-self::*")[::-1]:
        if ancestor.root.tag in BLOCK_TAGS:
            return ancestor
    return node


def extract_with_rule(rule: SiteRule, page: Selector) -> _PageLinks:
    found = _PageLinks()
    ctx = rule.context
    for block in page.css(rule.item or "body"):
        context: dict[str, Any] = {}
        for name in ("title", "description", "category"):
            css = getattr(ctx, name)
            if css:
                context[name] = _text_of(block.css(css)) or None
        if ctx.tags:
            context["tags"] = [t for t in (_text_of(tag) for tag in block.css(ctx.tags)) if t]
        context = {k: v for k, v in context.items() if v}
        for href in block.css(rule.link).getall():
            found.add(href.strip(), context)
        text = _text_of(block)
        if rule.link_pattern:
            for match in re.finditer(rule.link_pattern, text):
                found.add(match.group(0), context)
        if rule.mentions:
            for match in MENTION.finditer(text):
                found.add("@" + match.group(1), context)
    return found


def extract_generic(page: Selector) -> _PageLinks:
    """Every Telegram link of the page (hrefs and text), nearest enclosing block's text as context."""
    found = _PageLinks()
    body = page.css("body") or page
    for anchor in body.xpath(".//a[@href][not(ancestor::script)]"):
        href = (anchor.attrib.get("href") or "").strip()
        if normalize(href) is None and not TEXT_LINK.search(href) and not href.lower().startswith("tg:"):
            continue  # not Telegram at all: not counted as ignored junk
        found.add(href, {"text": _text_of(_nearest_block(anchor))})
    holders = body.xpath(
        ".//*[not(self::a) and not(self::script) and not(self::style) and not(ancestor::a)]"
        "[text()[contains(., 't.me') or contains(., 'telegram.')]]"
    )
    for element in holders:
        for text in element.xpath("./text()").getall():
            for match in TEXT_LINK.finditer(text):
                found.add(match.group(0), {"text": _text_of(_nearest_block(element))})
    return found


class AggregatorSpider(scrapy.Spider):
    name = "tgwatch_aggregator"

    def __init__(self, rule: SiteRule, start_urls: list[str], max_pages: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.start_urls_ = list(start_urls)
        self.max_pages = min(max_pages or rule.max_pages, rule.max_pages)
        self.hosts = {urlsplit(u).netloc for u in self.start_urls_}
        self.scheduled: set[str] = set()

    def _request(self, url: str) -> Request | None:
        if url in self.scheduled or len(self.scheduled) >= self.max_pages:
            return None
        self.scheduled.add(url)
        return Request(url, callback=self.parse, errback=self.failed)

    async def start(self) -> AsyncIterator[Any]:
        for url in self.start_urls_:
            request = self._request(url)
            if request is not None:
                yield request

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if not isinstance(response, TextResponse):
            yield FetchFailed(response.url, BadPage("not a text page", url=response.url))
            return
        try:
            page = Selector(text=response.text)
            found = extract_generic(page) if self.rule.is_generic else extract_with_rule(self.rule, page)
        except Exception as exc:  # lxml/parsel on hostile markup: record the page as bad, keep crawling
            yield FetchFailed(response.url, BadPage(f"unreadable page: {type(exc).__name__}: {exc}", url=response.url))
            return
        yield AggregatorPageItem(
            site=self.rule.name,
            page_url=response.url,
            fetched_at=utcnow(),
            links=list(found.links.values()),
            ignored=found.ignored,
        )
        for css in self.rule.follow:
            for href in page.css(css).getall():
                url = response.urljoin(href.strip())
                if urlsplit(url).netloc not in self.hosts or urlsplit(url).scheme not in ("http", "https"):
                    continue  # never wander off the site
                request = self._request(url)
                if request is not None:
                    yield request

    def failed(self, failure: Failure) -> Iterator[Any]:
        error = map_failure(failure)
        yield FetchFailed(error.url or "", error)


class DiscoverySink(Protocol):
    """Where discovery items go (``crawler.discovery.run`` provides it)."""

    async def accept(self, item: Any) -> None: ...


class DiscoveryPipeline:
    """The one door out of discovery spiders: every item goes to the crawl's sink, in order."""

    def __init__(self, sink: DiscoverySink) -> None:
        self.sink = sink

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        sink = shared(crawler.settings, "TGWATCH_DISCOVERY")
        if sink is None:
            raise NotConfigured("TGWATCH_DISCOVERY is not set: nowhere to hand discovery items")
        return cls(sink)

    async def process_item(self, item: Any) -> Any:
        await self.sink.accept(item)
        return item


DISCOVERY_PIPELINES = {"spiders.aggregator.DiscoveryPipeline": 300}
