"""The egress guard: the one rule every request tgwatch sends to the outside passes (DESIGN §9).

Why: tgwatch fetches URLs that hostile pages choose (media links, redirects, aggregator links). A
page that redirects to ``http://169.254.169.254/`` or to an admin port on the crawler's own network
must not turn the crawler into the attacker's proxy (SSRF). The rule:

* only ``http`` and ``https``;
* a host named in settings (``telegram_web_base``'s host, the run's operator-given base URL or
  aggregator start URLs, the proxy, ``http.allow_private_hosts``) may be anything;
* every other host must resolve to public addresses only, all of them (``address_is_public``).

Proxies: the only proxy tgwatch uses is ``http.proxy`` (an explicit setting); ``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` from the environment are ignored by every client
(requests ``trust_env`` off, aiohttp ``trust_env`` off, Scrapy's proxy meta set explicitly). A proxy
resolves and connects to the target itself, so the connection-time checks below never see the
target's address; before a request is handed to the configured proxy, the adapters check the target
URL and resolve its host here (``check_before_proxy``): a refused host never reaches the proxy.

The adapters apply the rule where requests leave: ``spiders.egress.EgressMiddleware`` for Scrapy
(every request, every redirect hop, since redirects re-enter the downloader middlewares) and
``foundation.egress_http`` for aiohttp (a resolver that refuses non-public answers, so the connection
uses the address that was checked, and manual redirects re-checked hop by hop). A refusal is
``EgressDenied``, recorded like any other source error.

Only the standard library and our error tree are imported here, so any layer may use it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from foundation.errors import ConfigError, EgressDenied, SourceError

ALLOWED_SCHEMES = frozenset({"http", "https"})
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64 well-known and local-use)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


def address_is_public(address: str | IPAddress) -> bool:
    """True only for a globally routable unicast address; addresses that embed IPv4 are judged by it.

    Refused: private (RFC 1918, ULA ``fc00::/7``), loopback, link-local, CGNAT ``100.64/10``,
    multicast, reserved, unspecified, documentation and benchmarking ranges, and IPv4-mapped,
    6to4, Teredo and NAT64 forms of any of them.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            return address_is_public(embedded)
        if ip.teredo is not None:
            return False  # a tunnel endpoint pair, never a web server we crawl
        if any(ip in net for net in _NAT64):
            return address_is_public(ipaddress.IPv4Address(ip.packed[-4:]))
    elif ip in _CGNAT:
        return False
    return bool(
        ip.is_global
        and not ip.is_private
        and not ip.is_loopback
        and not ip.is_link_local
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
    )


def normalize_host(host: str) -> str:
    """Lower case, no brackets, no trailing dot: the form allow-list entries are compared in."""
    return host.strip().strip("[]").rstrip(".").lower()


def host_of(url_or_host: str) -> str | None:
    """The host of a URL (or a bare ``host`` / ``host:port``), normalized; None when there is none."""
    text = url_or_host.strip()
    if not text:
        return None
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    return normalize_host(host) if host else None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    """A URL that passed the scheme and literal-address checks."""

    url: str
    scheme: str
    host: str
    port: int
    allowed: bool  # named in settings: any address is fine


@dataclass(frozen=True)
class EgressPolicy:
    """Which hosts may be private. The default (no hosts) allows only public addresses."""

    allowed_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: Any, *extra: str | None) -> EgressPolicy:
        """The hosts the operator named: ``telegram_web_base``, the proxy, ``http.allow_private_hosts``,
        plus ``extra`` URLs or hosts (the run's ``--base-url``, an aggregator's configured start URLs)."""
        http = getattr(settings, "http", None)
        named: list[str | None] = [getattr(settings, "telegram_web_base", None), *extra]
        named.append(getattr(http, "proxy", None))
        named.extend(getattr(http, "allow_private_hosts", None) or [])
        return cls(frozenset(h for h in (host_of(n) for n in named if n) if h))

    def allowing(self, *urls_or_hosts: str | None) -> EgressPolicy:
        """This policy with more named hosts."""
        more = {h for h in (host_of(u) for u in urls_or_hosts if u) if h}
        return EgressPolicy(self.allowed_hosts | more)

    def is_allowed(self, host: str) -> bool:
        return normalize_host(host) in self.allowed_hosts

    def check_url(self, url: str) -> Target:
        """Scheme, host and (for an address literal) the address; ``EgressDenied`` when refused."""
        try:
            parts = urlsplit(url.strip())
            scheme = parts.scheme.lower()
            host = parts.hostname
            port = parts.port
        except ValueError as exc:
            raise EgressDenied(f"unreadable URL refused: {exc}", url=url) from exc
        if scheme not in ALLOWED_SCHEMES:
            raise EgressDenied(f"scheme {scheme or '(none)'!r} refused: only http and https leave tgwatch", url=url)
        if not host:
            raise EgressDenied("URL without a host refused", url=url)
        host = normalize_host(host)
        allowed = self.is_allowed(host)
        literal = _literal(host)
        if literal is not None and not allowed and not address_is_public(literal):
            raise EgressDenied(f"non-public address {host} refused (not an allowed host)", url=url)
        port = port or (443 if scheme == "https" else 80)
        return Target(url=url, scheme=scheme, host=host, port=port, allowed=allowed)

    def check_addresses(self, host: str, addresses: Iterable[str], *, url: str | None = None) -> None:
        """Refuse a host that is not allowed when any address it resolved to is not public."""
        if self.is_allowed(host):
            return
        for address in addresses:
            if not address_is_public(address.split("%", 1)[0]):
                raise EgressDenied(f"{host} resolves to non-public address {address}: refused", url=url)

    async def check_resolved(self, target: Target) -> list[str]:
        """Resolve ``target``'s host and check every address (allowed hosts and literals: no lookup).

        This gives an early, clear refusal; the adapters also check at connection time, so a name
        that answers differently the second time (DNS rebinding) is still refused."""
        if target.allowed or _literal(target.host) is not None:
            return [target.host]
        addresses = await resolve(target.host, target.port, url=target.url)
        self.check_addresses(target.host, addresses, url=target.url)
        return addresses

    def check_before_proxy(self, url: str) -> Target:
        """The check a request gets before it is handed to a proxy (blocking: for ``requests``).

        The proxy resolves the target itself, so this lookup is the only one tgwatch sees: the URL
        is checked, then the host resolved and every address checked, as for a direct request. A
        name that answers the proxy differently (DNS rebinding at the proxy) is not covered."""
        target = self.check_url(url)
        if target.allowed or _literal(target.host) is not None:
            return target
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise SourceError(f"DNS lookup failed for {target.host}: {exc}", url=url) from exc
        self.check_addresses(target.host, sorted({str(info[4][0]) for info in infos}), url=url)
        return target


async def resolve(host: str, port: int, *, url: str | None = None) -> list[str]:
    """All addresses ``host`` resolves to (the system resolver, as the downloaders use it)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise SourceError(f"DNS lookup failed for {host}: {exc}", url=url) from exc
    return sorted({str(info[4][0]) for info in infos})


#: where other HTTP clients find a proxy; tgwatch reads none of them (only ``http.proxy``)
ENVIRONMENT_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def environment_proxy_variables(environ: Mapping[str, str]) -> list[str]:
    """The proxy variables set in ``environ`` (any case): tgwatch ignores them, and says so once."""
    wanted = set(ENVIRONMENT_PROXY_VARIABLES)
    return sorted(name for name, value in environ.items() if name.upper() in wanted and value.strip())


def check_base_url(url: str) -> str:
    """An operator-given base URL (``--base-url``, ``telegram_web_base``): http/https with a host.

    Checked before a run starts, so ``--base-url file:///etc`` is a clear configuration error
    instead of a crawl of the local disk; the address is not checked (the operator named it)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError as exc:
        raise ConfigError(f"base URL {url!r} is not a URL: {exc}") from exc
    if scheme not in ALLOWED_SCHEMES or not host:
        raise ConfigError(f"base URL {url!r} refused: only http:// and https:// URLs with a host")
    return url


def allowing_private_hosts(settings: Any, *urls_or_hosts: str | None) -> Any:
    """``settings`` with these hosts added to ``http.allow_private_hosts`` (a copy; pydantic models).

    For an operator's ``--base-url``: media under the site the operator pointed a crawl at (the
    offline sample site) are fetched by the process-wide media fetcher, which reads settings."""
    hosts = list(settings.http.allow_private_hosts)
    hosts += [h for h in (host_of(u) for u in urls_or_hosts if u) if h and h not in hosts]
    http = settings.http.model_copy(update={"allow_private_hosts": hosts})
    return settings.model_copy(update={"http": http})
