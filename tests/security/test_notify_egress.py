"""Notification webhooks pass the egress guard too, address literals included.

The sinks' session resolves names through the guard's resolver, but aiohttp never asks a resolver
about an address literal: a rule whose target is ``http://127.0.0.2:PORT/`` (or the cloud metadata
address) reached it although no setting names that host. A canary on 127.0.0.2 — loopback, named
nowhere — stands for an internal service: it must see no request, and the delivery must fail with
a recorded, clear reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import config
from crawler.notify.dispatcher import Dispatcher
from crawler.notify.rules import NotifyRule
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyLogRepo, NotifyRuleRepo
from tests.notify_support import SECRET, alert


@pytest.fixture
async def canary() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(str(request.rel_url))
        return web.Response(text="internal")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    async with TestServer(app, host="127.0.0.2") as server:
        yield str(server.make_url("/hook")), hits


async def test_webhook_to_an_unnamed_private_address_literal_is_refused(
    store: Store, tmp_path: Path, canary: tuple[str, list[str]]
) -> None:
    url, hits = canary
    rule = NotifyRule(name="ops", sink="webhook", target=url, secret_env="HOOK_SECRET")
    await NotifyRuleRepo(store).add(rule.to_doc())
    await AlertRepo(store).raise_alert(alert())
    settings = config.load(data_dir=tmp_path, notify={"max_attempts": 1})
    dispatcher = Dispatcher(store, settings, env={"HOOK_SECRET": SECRET})
    try:
        counts = await dispatcher.drain()
    finally:
        await dispatcher.aclose()
    assert hits == [], "the internal service on 127.0.0.2 was reached by a webhook"
    assert not counts.get("sent")
    failures = await NotifyLogRepo(store).list("ops")
    assert failures and all(f.get("outcome") != "sent" for f in failures), failures
    assert any("127.0.0.2" in str(f) and "refused" in str(f) for f in failures), failures


async def test_webhook_to_a_named_private_host_still_goes(
    store: Store, tmp_path: Path, canary: tuple[str, list[str]]
) -> None:
    url, hits = canary
    rule = NotifyRule(name="ops", sink="webhook", target=url, secret_env="HOOK_SECRET")
    await NotifyRuleRepo(store).add(rule.to_doc())
    await AlertRepo(store).raise_alert(alert())
    settings = config.load(data_dir=tmp_path, http={"allow_private_hosts": ["127.0.0.2"]})
    dispatcher = Dispatcher(store, settings, env={"HOOK_SECRET": SECRET})
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.aclose()
    assert hits == ["/hook"]
