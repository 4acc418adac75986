"""The egress guard for aiohttp: a checking resolver and redirects followed by hand, hop by hop.

Why both: ``GuardedResolver`` sits in the connector, so the address a connection uses is the one
that was checked (a name that resolves to a public address for the check and to 127.0.0.1 for the
connection — DNS rebinding — cannot slip through). aiohttp never asks the resolver about address
literals, and its own redirect following would not ask us about the next URL's scheme, so
``open_guarded`` checks every URL (``EgressPolicy.check_url`` + an early lookup) before each hop.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from foundation.egress import EgressPolicy
from foundation.errors import EgressDenied, SourceError

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class GuardedResolver(AbstractResolver):
    """aiohttp's default resolver, refusing non-public answers for hosts that are not allowed."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self.policy.check_addresses(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


def guarded_session(policy: EgressPolicy, **kwargs: Any) -> aiohttp.ClientSession:
    """A ``ClientSession`` whose connections only reach addresses ``policy`` allows.

    The resolver covers names; every request (each redirect hop aiohttp follows, too) also has its
    URL checked before it leaves, because aiohttp never asks a resolver about an address literal
    (a webhook target ``http://127.0.0.2/`` reached an unnamed internal host).

    Proxies: only ``proxy=`` (the caller passes ``http.proxy``); the environment's ``HTTP_PROXY``
    and friends are never read (``trust_env`` is refused). Through a proxy the resolver sees only
    the proxy's name, so each request's target host is resolved and checked before it is handed to
    the proxy (``EgressPolicy.check_resolved``)."""
    if kwargs.pop("trust_env", False):
        raise ValueError("guarded sessions never take proxies from the environment: pass proxy= (http.proxy)")
    proxied = bool(kwargs.get("proxy"))

    async def check(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        target = policy.check_url(str(params.url))
        if proxied:
            await policy.check_resolved(target)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(check)
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy))
    traces = [*(kwargs.pop("trace_configs", None) or []), trace]
    return aiohttp.ClientSession(connector=connector, trace_configs=traces, trust_env=False, **kwargs)


@asynccontextmanager
async def open_guarded(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    policy: EgressPolicy,
    max_redirects: int,
    **kwargs: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``session.request`` with every hop checked; yields the final (non-redirect) response.

    More than ``max_redirects`` redirects is a ``SourceError``; a refused hop is ``EgressDenied``
    raised before that hop is requested."""
    current = url
    for _ in range(max_redirects + 1):
        target = policy.check_url(current)
        await policy.check_resolved(target)
        response = await session.request(method, current, allow_redirects=False, **kwargs)
        location = response.headers.get("Location") if response.status in REDIRECTS else None
        if location is None:
            try:
                yield response
            finally:
                response.release()
            return
        response.release()
        try:
            current = str(response.url.join(URL(location)))
        except ValueError as exc:
            raise EgressDenied(f"unreadable redirect target {location[:200]!r}", url=current) from exc
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data", "json")}
    raise SourceError(f"more than {max_redirects} redirects", url=url)
