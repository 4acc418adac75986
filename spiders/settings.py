"""Scrapy settings built from tgwatch's own ``config.Settings`` (the one place they are translated).

Scrapy components then read what they need in ``from_crawler`` (Scrapy's own pattern), so nothing
else in tgwatch has to know Scrapy's setting names.
"""

from __future__ import annotations

from typing import Any

from scrapy.settings import Settings as ScrapySettings
from scrapy.settings import default_settings

from config import Settings
from foundation.egress import EgressPolicy
from spiders.egress import DISABLED_HANDLERS, EGRESS_SLOT

# ``Shared`` lives in its own module so the spider components can import it without this one.
from spiders.shared import Shared as Shared
from spiders.shared import shared as shared

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

#: our retry middleware replaces Scrapy's (same slot in the chain, back-off + Retry-After added)
_RETRY_SLOT = 550


def build_scrapy_settings(
    settings: Settings,
    *,
    ingest: Any = None,
    hooks: Any = None,
    overrides: dict[str, Any] | None = None,
    allow: tuple[str | None, ...] = (),
) -> ScrapySettings:
    """Scrapy settings for one crawl. ``ingest`` reaches the pipeline as ``TGWATCH_INGEST``.

    ``allow``: URLs or hosts the operator named for this run (``--base-url``, an aggregator's start
    URLs); with the hosts in settings they may be private, every other host must be public."""
    http = settings.http
    values: dict[str, Any] = {
        "TWISTED_REACTOR": ASYNCIO_REACTOR,
        "USER_AGENT": http.user_agent,
        "ROBOTSTXT_OBEY": False,  # t.me/s/ pages are public previews meant for browsers
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Scrapy ≥ 2.19 starts, for every crawl, a localhost HTTP server that runs posted Python code
        # (token in a file under the user's state dir); never wanted here. Dropped from the base list
        # too: Scrapy imports every listed extension (even one set to None), and this one brings
        # aiohttp's server into every crawling process.
        "REMOTE_CONTROL_ENABLED": False,
        "EXTENSIONS_BASE": {k: v for k, v in default_settings.EXTENSIONS_BASE.items() if "remote_control" not in k},
        "LOG_ENABLED": False,  # tgwatch logs through structlog; Scrapy's own log is noise here
        "DOWNLOAD_TIMEOUT": http.download_timeout,
        "DOWNLOAD_MAXSIZE": settings.limits.max_page_bytes,
        "REDIRECT_MAX_TIMES": settings.limits.max_redirects,
        "CONCURRENT_REQUESTS": max(8, http.concurrency_per_domain),
        "CONCURRENT_REQUESTS_PER_DOMAIN": http.concurrency_per_domain,
        "AUTOTHROTTLE_ENABLED": http.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": http.autothrottle_target_concurrency,
        "AUTOTHROTTLE_START_DELAY": 0.5,
        "AUTOTHROTTLE_MAX_DELAY": 60.0,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": http.retry_times,
        # 429/503 are retried after the server's Retry-After; the rest after exponential back-off
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "TGWATCH_RETRY_BASE_DELAY": 1.0,
        "TGWATCH_RETRY_MAX_DELAY": 60.0,
        "TGWATCH_MAX_RETRY_AFTER": http.max_retry_after,
        "TGWATCH_PROXY": http.proxy,
        "TGWATCH_TRUNCATED_RETRIES": 2,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "spiders.middlewares.BackoffRetryMiddleware": _RETRY_SLOT,
            "spiders.middlewares.ProxyMiddleware": 740,  # before Scrapy's HttpProxyMiddleware (750)
            "spiders.egress.EgressMiddleware": EGRESS_SLOT,  # every request and redirect hop
        },
        "DOWNLOAD_HANDLERS": dict(DISABLED_HANDLERS),  # http and https only
        "TGWATCH_EGRESS": Shared(EgressPolicy.from_settings(settings, *allow)),
        "ITEM_PIPELINES": {"spiders.pipelines.IngestPipeline": 300},
        "TGWATCH_INGEST": Shared(ingest) if ingest is not None else None,
        "TGWATCH_HOOKS": Shared(hooks) if hooks is not None else None,
        # Scrapy starts this many asyncio tasks for *every* response to work through its callback's
        # output (default 100); ours yield one or two things a page, and those 100 tasks cost a
        # page about as much CPU as parsing a fifth of it (bench/crawl.py, issue 3)
        "CONCURRENT_ITEMS": 8,
        # a development lint (a generator callback returning a value): its cache is keyed weakly by
        # the bound method each Request holds, so it misses on every response and re-reads and
        # re-parses the callback's source (inspect + ast) for every page fetched
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
    }
    if overrides:
        values.update(overrides)
    return ScrapySettings(values)
