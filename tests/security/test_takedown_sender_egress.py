"""The takedown senders leave tgwatch only where the operator pointed them: a hotline that redirects
is not followed (the report never reaches the redirect target), a non-HTTP hotline URL is refused
without a retry, and a missing token is a recorded failure, never an unauthenticated POST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from storage.client import Store
from tests.test_takedown_senders import dispatcher_for, make_settings


@pytest.fixture
async def redirecting() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A hotline URL answering 307 to a second local server that records what reaches it."""
    stolen: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        stolen.append(await request.read())
        return web.json_response({"reference": "stolen"})

    sink_app = web.Application()
    sink_app.router.add_post("/steal", sink)
    async with TestServer(sink_app, host="127.0.0.1") as sink_srv:
        target = str(sink_srv.make_url("/steal"))

        async def redirect(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(target)

        app = web.Application()
        app.router.add_post("/cases", redirect)
        async with TestServer(app, host="127.0.0.1") as srv:
            yield str(srv.make_url("/cases")), stolen


async def test_a_redirecting_hotline_is_not_followed(
    store: Store, tmp_path: Path, redirecting: tuple[str, list[bytes]]
) -> None:
    url, stolen = redirecting
    settings = make_settings(tmp_path, send_attempts=1, senders={"hotline": {"enabled": True, "url": url}})
    dispatcher, rid = await dispatcher_for(store, settings)
    outcome = await dispatcher.send(rid, actor="kim")
    assert not outcome.ok and "redirect" in outcome.failed[0]
    assert stolen == [], "the report never reached the redirect target"
    assert outcome.request.sendings == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/cases", "gopher://127.0.0.1:70/"])
async def test_a_non_http_hotline_url_is_refused_once(store: Store, tmp_path: Path, url: str) -> None:
    settings = make_settings(tmp_path, send_attempts=3, senders={"hotline": {"enabled": True, "url": url}})
    dispatcher, rid = await dispatcher_for(store, settings)
    outcome = await dispatcher.send(rid, actor="kim")
    assert not outcome.ok and "refused" in outcome.failed[0]
    assert [f.attempt for f in outcome.request.failures] == [1], "a refused URL is not retried"


async def test_a_missing_token_is_a_recorded_failure_not_an_anonymous_post(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_ABSENT_TOKEN", raising=False)
    settings = make_settings(
        tmp_path,
        senders={"hotline": {"enabled": True, "url": "http://127.0.0.1:9/cases", "token_env": "TEST_ABSENT_TOKEN"}},
    )
    dispatcher, rid = await dispatcher_for(store, settings)
    outcome = await dispatcher.send(rid, actor="kim")
    assert outcome.failed == ["hotline: the hotline token variable TEST_ABSENT_TOKEN is not set"]
