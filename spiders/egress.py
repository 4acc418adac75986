"""The egress guard in Scrapy: a downloader middleware for every request, a resolver under it.

``EgressMiddleware`` runs last in the downloader chain, just before the download handler, for every
request a crawl sends. Redirects (``RedirectMiddleware``, ``MetaRefreshMiddleware``) produce new
requests that go through the whole chain again, so every hop is checked. A refused request fails
with ``EgressDenied`` before any byte leaves, and the spider's errback records it like any other
source error. The policy (``TGWATCH_EGRESS``) comes from ``build_scrapy_settings``: the operator's
hosts from settings plus the run's base URL; without one only public addresses are allowed.

The middleware's own lookup gives an early, clear refusal; ``ReactorGuard`` (installed once on the
reactor) checks the address the connection actually uses, so a name that answers differently the
second time (DNS rebinding) is still refused. The reactor is shared by every crawl of the process,
so it allows the union of the hosts of the crawls running now.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Self

from scrapy import signals
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from foundation.egress import EgressPolicy, address_is_public, normalize_host
from foundation.errors import EgressDenied
from spiders.shared import shared

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Request
    from twisted.internet.defer import Deferred

#: after every other downloader middleware (HttpProxyMiddleware is 750, DownloaderStats 850)
EGRESS_SLOT = 990
#: Scrapy's handlers for schemes that never leave tgwatch (``None`` disables a handler)
DISABLED_HANDLERS: dict[str, None] = {"file": None, "ftp": None, "s3": None, "data": None}


class EgressRefusedAtConnect(DNSLookupError):
    """The reactor's resolver refused the address a connection was about to use."""


@implementer(IResolverSimple)
class ReactorGuard:
    """Wraps the reactor's resolver: a non-public answer for a host no running crawl allows fails."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.allowed: Counter[str] = Counter()

    def getHostByName(self, name: str, timeout: Any = (1, 3, 11, 45)) -> Deferred[str]:
        def check(address: str) -> str:
            if normalize_host(name) not in self.allowed and not address_is_public(address):
                raise EgressRefusedAtConnect(f"egress guard: {name} resolves to non-public address {address}")
            return address

        deferred: Deferred[str] = self.inner.getHostByName(name, timeout)
        return deferred.addCallback(check)

    def hold(self, hosts: frozenset[str]) -> None:
        self.allowed.update(hosts)

    def release(self, hosts: frozenset[str]) -> None:
        self.allowed.subtract(hosts)
        self.allowed += Counter()  # drop hosts no crawl holds any more


def reactor_guard() -> ReactorGuard:
    """The guard on the running reactor, installed on first use."""
    from twisted.internet import reactor

    current = reactor.resolver
    if isinstance(current, ReactorGuard):
        return current
    guard = ReactorGuard(current)
    reactor.installResolver(guard)
    return guard


class EgressMiddleware:
    def __init__(self, policy: EgressPolicy, guard: ReactorGuard) -> None:
        self.policy = policy
        self.guard = guard

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        policy = shared(crawler.settings, "TGWATCH_EGRESS")
        if not isinstance(policy, EgressPolicy):
            policy = EgressPolicy()  # nothing named: public addresses only
        middleware = cls(policy, reactor_guard())
        crawler.signals.connect(middleware.opened, signal=signals.spider_opened)
        crawler.signals.connect(middleware.closed, signal=signals.spider_closed)
        return middleware

    def opened(self) -> None:
        self.guard.hold(self.policy.allowed_hosts)

    def closed(self) -> None:
        self.guard.release(self.policy.allowed_hosts)

    async def process_request(self, request: Request) -> None:
        target = self.policy.check_url(request.url)
        await self.policy.check_resolved(target)


def as_egress_denied(exc: BaseException | None, url: str | None) -> EgressDenied | None:
    """A download failure that was the guard's refusal, as our error (None for anything else)."""
    if isinstance(exc, EgressDenied):
        if exc.url is None:
            exc.url = url
        return exc
    if isinstance(exc, EgressRefusedAtConnect):
        return EgressDenied(str(exc), url=url)
    return None
