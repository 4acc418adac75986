"""The operator names the timestamp authority (``evidence.tsa_url``), not where it redirects to.

The TSA client followed redirects, so a TSA (or whoever answers at its address) could send the
signing host's request to an internal service no setting names. A canary on 127.0.0.2 stands for
that service: it must see nothing, and the head records the failure instead of a token.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from crawler.evidence.heads import TsaClient


async def test_a_tsa_redirect_is_a_recorded_failure_not_followed() -> None:
    hits: list[str] = []

    async def canary(request: web.Request) -> web.Response:
        hits.append(str(request.rel_url))
        return web.Response(status=500)

    internal = web.Application()
    internal.router.add_route("*", "/{tail:.*}", canary)
    async with TestServer(internal, host="127.0.0.2") as target:

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(str(target.make_url("/internal")))

        tsa = web.Application()
        tsa.router.add_post("/tsa", redirect)
        async with TestServer(tsa, host="127.0.0.1") as server:
            answer = await TsaClient(str(server.make_url("/tsa")), timeout=5.0).stamp(b"head")
    assert hits == [], "the TSA's redirect reached an unnamed internal host"
    assert answer["error"] and "token" not in answer
