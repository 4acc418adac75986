"""Downloader middlewares: polite retries and the configured proxy.

``BackoffRetryMiddleware`` replaces Scrapy's ``RetryMiddleware`` (same slot): Scrapy retries at
once, which hammers a server that is already failing; we wait ``base * 2**attempt`` (capped, with
jitter) on 5xx and timeouts, and exactly ``Retry-After`` on 429/503 when the server says so. A
Retry-After longer than ``TGWATCH_MAX_RETRY_AFTER`` is not waited for: the response goes on to the
spider's errback, which records ``RateLimited(retry_after)`` so the next run can be scheduled.
"""

from __future__ import annotations

import asyncio
import random
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Self

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response

from foundation.models import utcnow

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


def retry_after_seconds(value: bytes | str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utcnow()).total_seconds())


class BackoffRetryMiddleware(RetryMiddleware):
    """Retry 5xx/timeouts with exponential back-off; honour Retry-After on 429 and 503."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler.settings)
        self.crawler = crawler
        settings = crawler.settings
        self.base_delay = settings.getfloat("TGWATCH_RETRY_BASE_DELAY", 1.0)
        self.max_delay = settings.getfloat("TGWATCH_RETRY_MAX_DELAY", 60.0)
        self.max_retry_after = settings.getfloat("TGWATCH_MAX_RETRY_AFTER", 600.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("RETRY_ENABLED"):
            raise NotConfigured("RETRY_ENABLED is off")
        return cls(crawler)

    def _backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * (2**attempt))
        return delay * (0.75 + random.random() / 2)

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        attempt = request.meta.get("retry_times", 0)
        wait: float | None = None
        if response.status in (429, 503):
            wait = retry_after_seconds(response.headers.get(b"Retry-After"))
            if wait is not None and wait > self.max_retry_after:
                request.meta["retry_after"] = wait
                return response  # too long to wait inside one crawl: the errback records RateLimited
        if wait is None:
            wait = self._backoff(attempt)
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,  # type: ignore[arg-type]
            reason=f"HTTP {response.status}",
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=self.priority_adjust,
            stats_base_key="retry",
        )
        if retry is None:
            if response.status in (429, 503):
                request.meta["retry_after"] = wait
            return response
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value("tgwatch/retry_wait_ms", round(wait * 1000))
        await asyncio.sleep(wait)
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:  # type: ignore[override]
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = get_retry_request(
            request,
            spider=self.crawler.spider,  # type: ignore[arg-type]
            reason=exception,
            max_retry_times=request.meta.get("max_retry_times", self.max_retry_times),
            priority_adjust=self.priority_adjust,
            stats_base_key="retry",
        )
        if retry is None:
            return None
        await asyncio.sleep(self._backoff(request.meta.get("retry_times", 0)))
        return retry


class ProxyMiddleware:
    """Send every request through ``TGWATCH_PROXY`` (``http.proxy``: ``http://user:pass@host:port``)
    or directly — never through a proxy from the environment.

    Scrapy's ``HttpProxyMiddleware`` (750) reads ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` for any
    request without a ``proxy`` meta key; setting the key on every request (``None``: no proxy) keeps
    the environment out, so the configured proxy is the only one (docs/security.md, egress)."""

    def __init__(self, proxy: str | None) -> None:
        self.proxy = proxy or None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.settings.get("TGWATCH_PROXY") or None)

    def process_request(self, request: Request) -> Any:
        request.meta.setdefault("proxy", self.proxy)
        return None
