"""The sample site answering the way t.me does on the wire: a session cookie on every page, the body
gzip-compressed and sent chunked. For tests of whole-page captures (what is kept of the headers,
what the archive writes for a decoded body)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from spiders.sample_site import SampleSite

#: the session cookie's value: it must never reach the store, the ledger or an archive
SESSION_SECRET = "stel-ssid-0f9e8d7c6b5a-secret"


@web.middleware
async def _like_tme(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.set_cookie("stel_ssid", SESSION_SECRET, httponly=True)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    if isinstance(response, web.Response):
        response.enable_compression(web.ContentCoding.gzip)
        response.enable_chunked_encoding()
    return response


class TmeLikeSite(SampleSite):
    def make_app(self) -> web.Application:
        app = super().make_app()
        app.middlewares.append(_like_tme)
        return app

    @classmethod
    @contextlib.asynccontextmanager
    async def serve_like_tme(cls) -> AsyncIterator[TmeLikeSite]:
        site = cls()
        await site.start()
        try:
            yield site
        finally:
            await site.stop()
