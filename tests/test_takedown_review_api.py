"""Reviewing drafted takedown requests: approve-and-send, edit and reject over the API and in the
console, and the console's notification page. A real app over the embedded store; drafts are made
by the real create path from a real list-match alert; with no sender configured, approving records
the request as sent by hand (the Dispatcher's documented fallback).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import config
from crawler.console.render import TEMPLATES, page_language
from crawler.media.matcher import MatchHit, raise_match_alerts
from crawler.notify.dispatcher import Dispatcher as NotifyDispatcher
from crawler.notify.rules import NotifyRule
from crawler.takedowns.sending import NO_SENDER_VIA
from crawler.tokens import Role
from foundation import i18n
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyRuleRepo
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import SECRET, Clock, alert, webhook_receiver
from tests.test_console import CSRF, sign_in
from tests.test_investigate_api import bearer, token
from tests.test_takedown_api import SHA, Client, World, _json, client, world  # noqa: F401  (fixtures)

MATCH = f"match/victim-list/{SHA}"


async def _match_alert(store: Store) -> None:
    hit = MatchHit("victim-list", "pdq", "f" * 64, 12.0, None)
    raised = await raise_match_alerts(AlertRepo(store), SHA, [hit], channels=["room_one", "room_two"],
                                      context={"message": "room_one/1"})  # fmt: skip
    assert [a.key for a in raised] == [MATCH]


async def _drafts(http: Client, mon: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        made = await _json(http, "POST", "/api/v1/takedowns", mon, 201, json={"alert": MATCH, "reason": "ncii"})
        assert made["status"] == "draft"
        out.append(made["id"])
    return out


async def test_api_approve_reject_edit_roles_and_ledger(client: Client, store: Store, world: World) -> None:  # noqa: F811
    await _match_alert(store)
    mon = await token(store, Role.MONITOR, "mo")
    inv = await token(store, Role.INVESTIGATOR, "ana")
    aud = await token(store, Role.AUDITOR, "au")
    first, second, third = await _drafts(client, mon, 3)

    for who in (inv, aud):  # readers may not act
        for action, body in (("approve", None), ("reject", {"reason": "x"}), ("edit", {"note": "x"})):
            resp = await client.post(f"/api/v1/takedowns/{first}/{action}", json=body, headers=bearer(who))
            assert resp.status == 403, action

    approved = await _json(client, "POST", f"/api/v1/takedowns/{first}/approve", mon)
    assert approved["status"] == "sent" and approved["approved_by"] == "token:mo"
    assert approved["sending"] == {"sent": [NO_SENDER_VIA], "failed": []}
    await _json(client, "POST", f"/api/v1/takedowns/{first}/approve", mon, 409)  # never twice
    await _json(client, "POST", f"/api/v1/takedowns/{first}/reject", mon, 409, json={"reason": "late"})
    await _json(client, "POST", "/api/v1/takedowns/TD-999999/approve", mon, 404)

    for bad in ({}, {"reason": ""}, {"reason": "x", "extra": 1}):
        await _json(client, "POST", f"/api/v1/takedowns/{second}/reject", mon, 400, json=bad)
    rejected = await _json(client, "POST", f"/api/v1/takedowns/{second}/reject", mon,
                           json={"reason": "the picture is not the victim's"})  # fmt: skip
    assert rejected["status"] == "rejected" and rejected["reject_reason"] == "the picture is not the victim's"
    await _json(client, "POST", f"/api/v1/takedowns/{second}/approve", mon, 409)

    edited = await _json(client, "POST", f"/api/v1/takedowns/{third}/edit", mon,
                         json={"note": "victim report 9", "reason": "sexual_deepfake",
                               "remove_items": ["message:room_two/7"]})  # fmt: skip
    assert edited["note"] == "victim report 9" and edited["reason"] == "sexual_deepfake"
    assert [i["item_id"] for i in edited["items"]] == ["message:room_one/1"]
    await _json(client, "POST", f"/api/v1/takedowns/{third}/edit", mon, 404, json={"remove_items": ["message:x/1"]})
    await _json(client, "POST", f"/api/v1/takedowns/{third}/edit", mon, 400, json={"reason": "dislike"})
    await _json(client, "POST", f"/api/v1/takedowns/{third}/edit", mon, 400,
                json={"remove_items": ["message:room_one/1"]})  # fmt: skip

    actions = {
        rid: [e["action"] for e in (await _json(client, "GET", f"/api/v1/takedowns/{rid}/history", aud))["entries"]]
        for rid in (first, second, third)
    }
    assert actions[first][:3] == ["create", "approved", "sent"]
    assert actions[second][:2] == ["create", "rejected"] and actions[third] == ["create", "edited"]


async def test_api_actions_need_csrf_with_a_session_cookie(client: Client, store: Store, world: World) -> None:  # noqa: F811
    await _match_alert(store)
    mon = await token(store, Role.MONITOR, "mo")
    (rid,) = await _drafts(client, mon, 1)
    resp = await sign_in(client, mon)
    assert resp.status == 303
    html = await (await client.get("/console/review")).text()
    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-zA-Z_-]+)">', html)
    assert csrf is not None
    for action, body in (("edit", {"note": "n"}), ("reject", {"reason": "r"}), ("approve", None)):
        resp = await client.post(f"/api/v1/takedowns/{rid}/{action}", json=body)
        assert resp.status == 403, action
    assert (await _json(client, "GET", f"/api/v1/takedowns/{rid}", mon))["status"] == "draft"
    resp = await client.post(f"/api/v1/takedowns/{rid}/approve", headers={"X-CSRF-Token": csrf.group(1)})
    assert resp.status == 200 and (await resp.json())["status"] == "sent"


async def test_console_review_queue_actions_and_roles(client: Client, store: Store, world: World) -> None:  # noqa: F811
    await _match_alert(store)
    mon = await token(store, Role.MONITOR, "mo")
    first, second, third = await _drafts(client, mon, 3)
    await sign_in(client, mon)
    page = await client.get("/console/review")
    html = await page.text()
    assert page.status == 200
    assert html.index(f'id="draft-{first}"') < html.index(f'id="draft-{second}"'), "oldest first"
    assert '<td class="list">victim-list</td>' in html and '<td class="distance">12.0</td>' in html
    assert "https://t.me/room_one/1" in html and SHA[:16] in html and "Removal request" in html
    assert "<img" not in html and "<video" not in html and 'href="https://t.me' not in html
    assert 'href="/console/review"' in html and 'href="/console/notify"' in html
    csrf = CSRF.search(html)
    assert csrf is not None
    token_field = {"csrf_token": csrf.group(1)}

    resp = await client.post(f"/console/takedowns/{first}/approve", allow_redirects=False)
    assert resp.status == 403 and "CSRF" in await resp.text()
    resp = await client.post(f"/console/takedowns/{first}/approve", data=token_field, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/console/takedowns/{first}"
    detail = await (await client.get(f"/console/takedowns/{first}")).text()
    assert NO_SENDER_VIA in detail
    resp = await client.post(f"/console/takedowns/{first}/approve", data=token_field)
    assert resp.status == 409

    resp = await client.post(f"/console/takedowns/{second}/reject", data={**token_field, "why": "  "})
    assert resp.status == 400
    resp = await client.post(f"/console/takedowns/{second}/reject", data={**token_field, "why": "wrong person"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    resp = await client.post(
        f"/console/takedowns/{third}/edit",
        data={**token_field, "note": "checked by mo", "reason": "ncii", "remove_item": "message:room_two/7"},
        allow_redirects=False,
    )
    assert resp.status == 303
    html = await (await client.get("/console/review")).text()
    assert f"draft-{first}" not in html and f"draft-{second}" not in html and 'value="checked by mo"' in html
    assert "room_two/7" not in html.split(f'id="draft-{third}"')[1]
    docs = {d["_id"]: d async for d in store["takedowns"].find({})}
    assert docs[second]["status"] == "rejected" and docs[second]["reject_reason"] == "wrong person"
    assert docs[first]["status"] == "sent" and docs[first]["approved_by"] == "token:mo"
    audited = {(e["action"], e["target"]) async for e in store["audit"].find({"actor": "token:mo", "via": "console"})}
    assert {("takedowns.approve", first), ("takedowns.reject", second), ("takedowns.edit", third)} <= audited

    inv = await token(store, Role.INVESTIGATOR, "ana")
    await sign_in(client, inv)
    html = await (await client.get("/console/review")).text()
    assert f"draft-{third}" in html and "Approve and send" not in html, "investigators look, never act"
    resp = await client.post(f"/console/takedowns/{third}/approve", data={"csrf_token": CSRF.search(html).group(1)})  # type: ignore[union-attr]
    assert resp.status == 403
    assert (await client.get("/console/notify")).status == 403


async def test_console_notification_rules_and_log(client: Client, store: Store, world: World, tmp_path: Path) -> None:  # noqa: F811
    settings = config.load(data_dir=tmp_path, http=LOOPBACK_HTTP, notify={"max_attempts": 1})
    env = {"HOOK_SECRET": SECRET}
    async with webhook_receiver() as good, webhook_receiver(always_fail=True) as bad:
        for name, url in (("ops-hook", good.url), ("broken-hook", bad.url)):
            rule = NotifyRule(name=name, sink="webhook", target=url, secret_env="HOOK_SECRET")
            assert await NotifyRuleRepo(store).add(rule.to_doc())
        await AlertRepo(store).raise_alert(alert())
        dispatcher = NotifyDispatcher(store, settings, env=env, clock=Clock())
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert len(good.received) == 2  # the fixture's alert and this one
    mon = await token(store, Role.MONITOR, "mo")
    await sign_in(client, mon)
    html = await (await client.get("/console/notify")).text()
    assert "ops-hook" in html and good.url in html and "HOOK_SECRET" in html and SECRET not in html
    assert '<tr class="outcome-sent">' in html and "<strong>dead</strong>" in html
    assert "webhook answered HTTP 500" in html
    dead = re.search(r'name="delivery" value="([^"]+)"', html)
    assert dead is not None and dead.group(1).endswith("/broken-hook")
    csrf = CSRF.search(html)
    assert csrf is not None
    resp = await client.post("/console/notify/requeue", data={"delivery": dead.group(1)})
    assert resp.status == 403
    resp = await client.post("/console/notify/requeue", data={"delivery": dead.group(1), "csrf_token": csrf.group(1)},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    job: dict[str, Any] | None = await store["notify_deliveries"].find_one({"_id": dead.group(1)})
    assert job is not None and job["state"] == "ready"
    entry = await store["audit"].find_one({"action": "notify.requeue"})
    assert entry is not None and entry["target"] == dead.group(1)


def test_page_language_follows_accept_language() -> None:
    assert page_language(None) == "en" and page_language("") == "en" and page_language("fr-FR,de;q=0.8") == "en"
    assert page_language("ko-KR,ko;q=0.9,en;q=0.8") == "ko"
    assert page_language("en;q=0.5, ko;q=0.9") == "ko" and page_language("ko;q=0, en") == "en"
    assert page_language("ko;q=bogus") == "en"


def test_every_console_message_exists_in_korean_and_english() -> None:
    ids = i18n.msgids("console.")
    assert "console.review.approve" in ids and "console.notify.log" in ids
    used = set(re.findall(r"""t\(["']([a-z_.]+)["']""", "".join(
        (TEMPLATES / name).read_text(encoding="utf-8") for name in ("review.html", "notify.html"))))  # fmt: skip
    assert used and used <= set(ids)
    for msgid in ids:
        assert i18n.translated("ko", msgid) and i18n.translated("en", msgid), msgid
        assert i18n.translated("ko", msgid) != i18n.translated("en", msgid), msgid


async def test_console_review_in_korean(client: Client, store: Store, world: World) -> None:  # noqa: F811
    await _match_alert(store)
    mon = await token(store, Role.MONITOR, "mo")
    await _drafts(client, mon, 1)
    await sign_in(client, mon)
    html = await (await client.get("/console/review", headers={"Accept-Language": "ko-KR,ko;q=0.9"})).text()
    assert "승인 후 전송" in html and "초안 삭제 요청" in html and 'lang="ko"' in html
    html = await (await client.get("/console/notify", headers={"Accept-Language": "ko"})).text()
    assert "알림 규칙" in html and "전송 기록" in html
