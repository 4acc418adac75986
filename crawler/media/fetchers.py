"""Where media bytes come from: one fetcher per source, behind one small protocol.

The web fetcher streams a URL with a size cap and bounded redirects (``crawler.hashing.fetch``),
through the egress guard (``foundation.egress``);
the MTProto fetcher lives with Telethon in ``telegram_watch.media`` and is handed in by whoever runs
a Telegram client, so the core never imports Telethon.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

import aiohttp

from config import Settings
from crawler.hashing.fetch import FetchLimits, fetch_media
from foundation.egress import EgressPolicy
from foundation.egress_http import guarded_session
from foundation.errors import NotFound
from foundation.models import MediaRef


class MediaFetcher(Protocol):
    async def fetch(self, ref: MediaRef) -> bytes: ...


class WebFetcher:
    def __init__(self, settings: Settings) -> None:
        self._limits = FetchLimits(
            max_bytes=settings.limits.max_media_bytes,
            total_timeout=settings.limits.media_fetch_timeout,
            max_redirects=settings.limits.max_redirects,
        )
        self._headers = {"User-Agent": settings.http.user_agent}
        self._proxy = settings.http.proxy
        #: media links come from pages: only public addresses, unless the operator allowed a host
        self.policy = EgressPolicy.from_settings(settings)
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, ref: MediaRef) -> bytes:
        if not ref.url:
            raise NotFound("this media reference has no URL")
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.policy, headers=self._headers, proxy=self._proxy)
        return (await fetch_media(self._session, ref.url, self._limits, policy=self.policy)).data

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> WebFetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
