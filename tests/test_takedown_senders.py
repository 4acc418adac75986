"""Sending takedown requests for real: SMTP to a local aiosmtpd server, a hotline POST to a local
aiohttp server, Telegram's in-app report through the real Telethon client over the fake Telegram.
Every sending is a ledger entry whose SHA-256 is the digest of exactly what the other side got;
failures are retried, recorded and shown; the report's language follows the sender's setting."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from telethon.tl import functions

import config
from config import Settings
from crawler.evidence.capture import install as install_capture
from crawler.evidence.ledger import Ledger
from crawler.ingest import Ingest
from crawler.takedowns.models import ItemKind, Reason, RequestStatus
from crawler.takedowns.senders import build_senders
from crawler.takedowns.senders.hotline import body_bytes
from crawler.takedowns.sending import NO_SENDER_VIA, Dispatcher
from crawler.takedowns.service import Conflict, InvalidChange, TakedownService
from storage.client import Store
from telegram_watch.fake.world import FakeTelegram
from telegram_watch.report import MtprotoReporter
from tests.media_host import LOOPBACK_HTTP
from tests.test_takedown_service import SHA_A, msg
from tests.test_tg_support import pool_over

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Inbox:
    """An aiosmtpd handler keeping every message it accepts (the bytes as received)."""

    def __init__(self, refuse: int = 0) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse = refuse  # answer the first N DATA commands with a temporary failure

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 try again later"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 2.0.0 queued as T1"


@contextmanager
def running_inbox() -> Iterator[tuple[Inbox, int]]:
    """A local SMTP server (aiosmtpd) on a free loopback port."""
    handler = Inbox()
    with socket.socket() as probe:  # a free loopback port (aiosmtpd's readiness check cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with running_inbox() as running:
        yield running


class Hotline:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answers to give before 201 (e.g. [503, 503])
        self.app = web.Application()
        self.app.router.add_post("/cases", self.post)

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((dict(request.headers), body))
        if self.statuses:
            return web.Response(status=self.statuses.pop(0), text="busy")
        return web.json_response({"reference": "KR-2026-0042"}, status=201)


@pytest.fixture
async def hotline() -> AsyncIterator[tuple[Hotline, str]]:
    server = Hotline()
    async with TestServer(server.app, host="127.0.0.1") as srv:
        yield server, str(srv.make_url("/cases"))


def make_settings(tmp_path: Path, **takedowns: Any) -> Settings:
    return config.load(
        data_dir=tmp_path / "data", http=LOOPBACK_HTTP,
        takedowns={"reporter_name": "Test Hotline", "reporter_contact": "reports@example.org", "send_backoff": 0,
                   **takedowns},
    )  # fmt: skip


async def stored(store: Store) -> Ledger:
    ledger = Ledger(store)
    ingest = Ingest(store, store_retry_seconds=2.0)
    install_capture(ingest, ledger, worker="test")
    await ingest.submit([msg("room_one", 1, SHA_A), msg("room_one", 2), msg("room_two", 7, SHA_A)])
    return ledger


async def no_sleep(_: float) -> None:
    return None


async def dispatcher_for(store: Store, settings: Settings, reporter: Any = None) -> tuple[Dispatcher, str]:
    ledger = await stored(store)
    service = TakedownService(store, ledger, settings.takedowns)
    req = await service.create(reason=Reason.SEXUAL_DEEPFAKE, actor="kim", messages=["room_one/1", "room_two/7"])
    return Dispatcher(service, build_senders(settings, reporter=reporter), sleep=no_sleep), req.id


async def sent_entries(service: TakedownService, request_id: str, action: str = "sent") -> list[dict[str, Any]]:
    return [e for e in await service.history(request_id) if e["action"] == action]


def smtp(port: int, **more: Any) -> dict[str, Any]:
    return {"email": {"enabled": True, "host": "127.0.0.1", "port": port, "security": "none", **more}}


async def test_email_is_sent_to_the_abuse_address_and_the_ledger_holds_its_digest(
    store: Store, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    dispatcher, rid = await dispatcher_for(store, make_settings(tmp_path, senders=smtp(port)))
    outcome = await dispatcher.send(rid, actor="kim")
    assert outcome.ok and outcome.sent == ["email:abuse@telegram.org"]
    assert outcome.request.status is RequestStatus.SENT
    [(mail_from, rcpt, data)] = handler.messages
    assert mail_from == "reports@example.org" and rcpt == ["abuse@telegram.org"]
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"].startswith(f"Removal request {rid}: Sexual deepfake")
    body = parsed.get_body().get_content()  # type: ignore[union-attr]
    assert "https://t.me/room_one/1" in body and "To the Telegram abuse team," in body
    [entry] = await sent_entries(dispatcher.service, rid)
    assert entry["channel"] == "email" and entry["via"] == "email:abuse@telegram.org"
    assert entry["sha256"] == hashlib.sha256(data).hexdigest(), "the digest of exactly the bytes the server got"
    assert entry["answer"]["smtp_reply"].startswith("2.0.0 queued") and entry["actor"] == "kim"
    assert outcome.request.sendings[0].sha256 == entry["sha256"]


async def test_korean_report_when_the_platform_language_is_ko(
    store: Store, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    settings = make_settings(tmp_path, senders=smtp(port, languages={"telegram": "ko"}))
    dispatcher, rid = await dispatcher_for(store, settings)
    assert (await dispatcher.send(rid, actor="kim")).ok
    parsed = email.message_from_bytes(handler.messages[0][2], policy=email.policy.default)
    label = "성적 딥페이크(실존 인물을 합성한 성적 이미지를 본인 동의 없이 게시)"
    assert parsed["Subject"] == f"삭제 요청 {rid}: {label} (항목 2건)"
    assert parsed["Content-Language"] == "ko"
    body = parsed.get_body().get_content()  # type: ignore[union-attr]
    assert "Telegram 신고 담당자께," in body and "삭제할 링크:" in body and "https://t.me/room_two/7" in body
    assert "To the Telegram abuse team" not in body


async def test_a_temporary_smtp_failure_is_retried_recorded_and_shown(
    store: Store, tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    handler.refuse = 1
    dispatcher, rid = await dispatcher_for(store, make_settings(tmp_path, senders=smtp(port)))
    outcome = await dispatcher.send(rid, actor="kim")
    assert outcome.ok and len(handler.messages) == 1
    req = outcome.request
    assert [(f.channel, f.attempt) for f in req.failures] == [("email", 1)] and "451" in req.failures[0].error
    [failed] = await sent_entries(dispatcher.service, rid, "send_failed")
    [sent] = await sent_entries(dispatcher.service, rid)
    assert failed["channel"] == "email" and sent["attempt"] == 2
    assert failed["sha256"] is not None


async def test_hotline_post_carries_the_token_and_the_json_report(
    store: Store, tmp_path: Path, hotline: tuple[Hotline, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = hotline
    monkeypatch.setenv("TEST_HOTLINE_TOKEN", "s3cret-token")
    settings = make_settings(
        tmp_path, senders={"hotline": {"enabled": True, "url": url, "token_env": "TEST_HOTLINE_TOKEN", "name": "kr"}}
    )
    dispatcher, rid = await dispatcher_for(store, settings)
    outcome = await dispatcher.send(rid, actor="kim")
    assert outcome.ok and outcome.sent == ["hotline:kr"]
    [(headers, body)] = server.received
    assert headers["Authorization"] == "Bearer s3cret-token"
    report = json.loads(body)
    assert report["schema"] == "tgwatch.takedown/1" and report["request_id"] == rid
    assert [i["url"] for i in report["items"]] == ["https://t.me/room_one/1", "https://t.me/room_two/7"]
    [entry] = await sent_entries(dispatcher.service, rid)
    assert entry["sha256"] == hashlib.sha256(body).hexdigest() and body == body_bytes(report)
    assert entry["reference"] == "KR-2026-0042" and entry["answer"]["status"] == 201
    history = json.dumps(await dispatcher.service.history(rid))
    assert "s3cret-token" not in history, "the token is never recorded"


async def test_hotline_failures_are_retried_then_given_up_and_4xx_is_not_retried(
    store: Store, tmp_path: Path, hotline: tuple[Hotline, str]
) -> None:
    server, url = hotline
    settings = make_settings(tmp_path, send_attempts=3, senders={"hotline": {"enabled": True, "url": url}})
    dispatcher, rid = await dispatcher_for(store, settings)
    server.statuses = [503, 503, 503]
    outcome = await dispatcher.send(rid, actor="kim")
    assert not outcome.ok and outcome.failed == ["hotline: hotline answered HTTP 503"]
    assert outcome.request.status is RequestStatus.DRAFT and len(server.received) == 3
    assert [f.attempt for f in outcome.request.failures] == [1, 2, 3]
    server.statuses = [400]
    again = await dispatcher.send(rid, actor="kim")
    assert again.failed == ["hotline: hotline answered HTTP 400"] and len(server.received) == 4, "4xx: not retried"
    third = await dispatcher.send(rid, actor="kim")
    assert third.ok and third.request.status is RequestStatus.SENT and len(third.request.failures) == 4


async def test_without_senders_sending_records_a_mark_sent_and_a_rejected_draft_is_never_sent(
    store: Store, tmp_path: Path
) -> None:
    dispatcher, rid = await dispatcher_for(store, make_settings(tmp_path))
    service = dispatcher.service
    other = await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/2"])
    outcome = await dispatcher.approve(rid, actor="lee")
    assert outcome.sent == [NO_SENDER_VIA] and outcome.request.status is RequestStatus.SENT
    assert [e["action"] for e in await service.history(rid)][1:3] == ["approved", "sent"]
    with pytest.raises(Conflict):
        await dispatcher.approve(rid, actor="lee")  # approval is for drafts only
    both = await asyncio.gather(
        dispatcher.approve(other.id, actor="lee"), dispatcher.approve(other.id, actor="park"), return_exceptions=True
    )
    assert sorted(type(b).__name__ for b in both) == ["Conflict", "SendOutcome"], "two clicks send once"
    assert len((await service.get(other.id)).sendings) == 1
    other = await service.create(reason=Reason.NCII, actor="kim", messages=["room_one/2"])
    edited = await service.edit(other.id, actor="lee", note="checked twice", reason=Reason.SEXUAL_DEEPFAKE)
    assert edited.note == "checked twice" and edited.reason is Reason.SEXUAL_DEEPFAKE
    with pytest.raises(InvalidChange):
        await service.reject(other.id, reason="  ", actor="lee")
    with pytest.raises(InvalidChange):
        await service.edit(other.id, actor="lee", remove_items=["message:room_one/2"])
    rejected = await service.reject(other.id, reason="not our case", actor="lee")
    assert rejected.status is RequestStatus.REJECTED and rejected.next_check_at() is None
    actions = [(e["action"], e.get("why")) for e in await service.history(other.id)]
    assert ("rejected", "not our case") in actions and ("edited", None) in actions
    with pytest.raises(Conflict):
        await dispatcher.send(other.id, actor="lee")
    assert len((await service.get(other.id)).sendings) == 0


# --- Telegram's in-app report over MTProto -------------------------------------------------------


async def test_in_app_reports_go_through_the_pool_and_the_fake_records_them(store: Store, tmp_path: Path) -> None:
    world = FakeTelegram(seed="report")
    alice, bob = world.add_account("alice"), world.add_account("bob")
    for name in ("room_one", "room_two"):
        world.fill_history(world.add_channel(name.title(), username=name), 10)
    world.faults.flood_wait(alice, functions.messages.ReportRequest, 30)  # alice is told to wait: bob takes over
    pool = pool_over(world, alice, bob)
    try:
        settings = make_settings(tmp_path, senders={"mtproto": {"enabled": True, "pacing": 0}})
        dispatcher, rid = await dispatcher_for(store, settings, reporter=MtprotoReporter(pool, pacing=0))
        service = dispatcher.service
        channel_req = await service.create(reason=Reason.CSAM, actor="kim", channel="room_two")
        outcome = await dispatcher.send(rid, actor="kim")
        assert outcome.ok and outcome.sent == ["mtproto:in-app report"]
        both = await dispatcher.send(channel_req.id, actor="kim")
        assert both.ok
    finally:
        await pool.close()
    messages = [r for r in world.reports if r["kind"] == "messages.report"]
    assert [(r["ids"], r["option"]) for r in messages] == [
        ([1], ["Illegal adult content", "Non-consensual sexual imagery"]),
        ([7], ["Illegal adult content", "Non-consensual sexual imagery"]),
    ]
    assert {r["account"] for r in messages} == {"bob"}, "the flood-waiting account handed the reports over"
    assert messages[0]["message"].startswith(f"Removal request {rid}")
    [peer] = [r for r in world.reports if r["kind"] == "account.reportPeer"]
    assert peer["reason"] == "InputReportReasonChildAbuse" and peer["channel"] == world_channel(world, "room_two")
    [entry] = await sent_entries(service, rid)
    sent = entry["answer"]["sent"]
    assert entry["channel"] == "mtproto"
    assert entry["sha256"] == hashlib.sha256(("[" + ",".join(sent) + "]").encode()).hexdigest()
    assert json.loads(sent[-1])["_"] == "ReportRequest" and json.loads(sent[-1])["message"]
    assert (await service.get(channel_req.id)).items[0].kind is ItemKind.CHANNEL


def world_channel(world: FakeTelegram, username: str) -> int:
    return next(c.id for c in world.channels.values() if c.username == username)


async def test_an_unknown_channel_is_a_recorded_failure_not_a_crash(store: Store, tmp_path: Path) -> None:
    world = FakeTelegram(seed="report-missing")
    alice = world.add_account("alice")
    pool = pool_over(world, alice)
    try:
        settings = make_settings(tmp_path, send_attempts=1, senders={"mtproto": {"enabled": True}})
        dispatcher, rid = await dispatcher_for(store, settings, reporter=MtprotoReporter(pool, pacing=0))
        outcome = await dispatcher.send(rid, actor="kim")
    finally:
        await pool.close()
    assert not outcome.ok and outcome.failed[0].startswith("mtproto: in-app report for room_one")
    assert outcome.request.failures[0].channel == "mtproto" and world.reports == []
