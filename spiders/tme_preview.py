"""Triage spider: fetch each candidate's ``t.me/NAME`` or ``t.me/+HASH`` preview page and read it.

The base URL comes from settings (``telegram_web_base``; the sample site in tests). Pages are read
by ``spiders.parsing.profile.parse_profile``; each candidate yields one ``TriageResult`` — the page's
title, description, counters, type, verified mark, avatar and state, or the fetch error when the
page could not be had after retries (429 honours ``Retry-After``, 5xx back off: the project's
``BackoffRetryMiddleware``). Results leave through ``spiders.aggregator.DiscoveryPipeline``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Request, Response, TextResponse
from twisted.python.failure import Failure

from foundation.contracts import TriageResult
from foundation.links import LinkKind, normalize
from foundation.models import utcnow
from spiders.aggregator import map_failure
from spiders.parsing.profile import parse_profile


def preview_url(base_url: str, link: str) -> str:
    """The preview page of a canonical username or invite link on ``base_url``."""
    parsed = normalize(link)
    if parsed is None or parsed.kind not in (LinkKind.USERNAME, LinkKind.INVITE):
        raise ValueError(f"{link!r} has no preview page (not a username or invite link)")
    base = base_url.rstrip("/")
    return f"{base}/+{parsed.invite_hash}" if parsed.kind is LinkKind.INVITE else f"{base}/{parsed.username}"


class TmePreviewSpider(scrapy.Spider):
    name = "tgwatch_tme_preview"

    def __init__(self, links: list[str], base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.links = list(links)
        self.base_url = base_url

    async def start(self) -> AsyncIterator[Any]:
        for link in self.links:
            try:
                url = preview_url(self.base_url, link)
            except ValueError as exc:
                yield TriageResult(
                    link=link, fetched_at=utcnow(), state="error", error={"kind": "invalid_link", "message": str(exc)}
                )
                continue
            yield Request(url, callback=self.parse, errback=self.failed, dont_filter=True, meta={"link": link})

    def parse(self, response: Response, **kwargs: Any) -> Iterator[TriageResult]:
        link = str(response.meta["link"])
        fetched_at = utcnow()
        if not isinstance(response, TextResponse):
            yield TriageResult(
                link=link,
                fetched_at=fetched_at,
                state="error",
                page_url=response.url,
                error={"kind": "bad_page", "message": "not a text page", "url": response.url},
            )
            return
        page = parse_profile(response.text, url=link)
        yield TriageResult(
            link=link,
            fetched_at=fetched_at,
            state=page.state.value,
            type=page.type.value,
            title=page.title,
            description=page.description,
            username=page.username,
            members=page.members,
            subscribers=page.subscribers,
            online=page.online,
            monthly_users=page.monthly_users,
            verified=page.verified,
            avatar_url=page.avatar_url,
            counters_text=page.counters_text,
            description_links=tuple(lnk.canonical for lnk in page.description_links),
            page_url=response.url,
            problems=page.problems,
        )

    def failed(self, failure: Failure) -> Iterator[TriageResult]:
        request = getattr(failure, "request", None)
        link = str(request.meta.get("link")) if request is not None else ""
        error = map_failure(failure)
        yield TriageResult(link=link, fetched_at=utcnow(), state="error", page_url=error.url, error=error.to_doc())
