"""Each sink against a real local server: a webhook receiver that checks the signature, an SMTP
server (aiosmtpd) receiving the mail in Korean and English, and a Bot API stand-in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import config
from crawler.notify.dispatcher import Dispatcher
from crawler.notify.rules import NotifyRule
from foundation.models import AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyLogRepo, NotifyRuleRepo
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import BOT_TOKEN, SECRET, SHA, alert, bot_api, smtp_server, webhook_receiver

ENV = {"HOOK_SECRET": SECRET}


async def add_rule(store: Store, **fields: object) -> NotifyRule:
    rule = NotifyRule.model_validate(fields)
    assert await NotifyRuleRepo(store).add(rule.to_doc())
    return rule


async def test_webhook_is_signed_and_carries_facts_never_media(store: Store, tmp_path: Path) -> None:
    settings = config.load(
        data_dir=tmp_path, http=LOOPBACK_HTTP, notify={"console_url": "https://console.example.org/"}
    )
    async with webhook_receiver() as hook:
        await add_rule(store, name="ops", sink="webhook", target=hook.url, secret_env="HOOK_SECRET", lang="en")
        # a future alert might carry bytes or a thumbnail in its details: they must not leave
        await AlertRepo(store).raise_alert(alert(thumbnail="data:image/png;base64,iVBORw0KGgo=", media_bytes="AAEC"))
        dispatcher = Dispatcher(store, settings, env=ENV)
        try:
            counts = await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert counts["sent"] == 1
    (got,) = hook.received
    assert got.verified  # the receiver recomputed HMAC-SHA256 over "<timestamp>.<body>" with the shared secret
    assert got.headers["X-Tgwatch-Signature"].startswith("sha256=")
    doc = got.json
    assert doc["type"] == "alert" and doc["rule"] == "ops" and doc["delivery"] == f"match/known-list/{SHA}/ops"
    (facts,) = doc["alerts"]
    assert facts["kind"] == "hash_match" and facts["severity"] == "critical"
    assert facts["channels"] == ["leakchan"] and facts["list"] == "known-list" and facts["digests"] == [SHA]
    assert facts["message_link"] == "https://t.me/leakchan/42"
    assert facts["console_url"] == "https://console.example.org/console/alerts?alert=match%2Fknown-list%2F" + SHA
    assert "Hash-list match" in doc["text"]
    body = got.body.decode()
    for leaked in ("thumbnail", "iVBORw0KGgo", "media_bytes", "AAEC", "base64"):
        assert leaked not in body
    (entry,) = await NotifyLogRepo(store).list("ops")
    assert entry["outcome"] == "sent" and entry["sha256"] == hashlib.sha256(got.body).hexdigest()


async def test_webhook_with_wrong_secret_is_refused_and_recorded(store: Store, tmp_path: Path) -> None:
    settings = config.load(data_dir=tmp_path, http=LOOPBACK_HTTP)
    async with webhook_receiver(secret=b"another secret") as hook:
        await add_rule(store, name="ops", sink="webhook", target=hook.url, secret_env="HOOK_SECRET")
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings, env=ENV)
        try:
            counts = await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert hook.received == [] and counts["failed"] == 1
    (entry,) = await NotifyLogRepo(store).list("ops")
    assert entry["outcome"] == "failed" and entry["error"] == "webhook answered HTTP 401"


async def test_missing_secret_env_is_a_recorded_failure(store: Store, tmp_path: Path) -> None:
    async with webhook_receiver() as hook:
        await add_rule(store, name="ops", sink="webhook", target=hook.url, secret_env="NOT_SET_ANYWHERE")
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, config.load(data_dir=tmp_path), env={})
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert hook.attempts == 0
    (entry,) = await NotifyLogRepo(store).list("ops")
    assert entry["outcome"] == "failed" and "NOT_SET_ANYWHERE" in entry["error"]


@pytest.mark.parametrize(
    ("lang", "subject_word", "body_word"),
    [("ko", "해시 목록 일치", "심각도: 긴급"), ("en", "Hash-list match", "Severity: critical")],
)
async def test_email_reaches_smtp_server_in_each_language(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lang: str, subject_word: str, body_word: str
) -> None:
    monkeypatch.setenv("TGWATCH_SMTP__PASSWORD", SECRET)  # the password only ever comes from the environment
    async with smtp_server() as box:
        settings = config.load(
            data_dir=tmp_path,
            smtp={"host": box.host, "port": box.port, "username": "tgwatch", "starttls": False, "from": "bot@org.test"},
        )
        await add_rule(store, name="staff", sink="email", target="staff@org.test", lang=lang)
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings)
        try:
            counts = await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert counts["sent"] == 1 and box.logins == ["tgwatch"]
    (mail,) = box.messages
    assert box.envelopes == [("bot@org.test", ["staff@org.test"])]
    assert subject_word in str(mail["Subject"]) and "leakchan" in str(mail["Subject"])
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert body_word in text and "https://t.me/leakchan/42" in text and SHA in text
    assert not mail.is_multipart()  # text only: no attachment, no image


async def test_email_refused_login_is_a_failure(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGWATCH_SMTP__PASSWORD", "wrong password")
    async with smtp_server() as box:
        settings = config.load(
            data_dir=tmp_path, smtp={"host": box.host, "port": box.port, "username": "tgwatch", "starttls": False}
        )
        await add_rule(store, name="staff", sink="email", target="staff@org.test")
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings)
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert box.messages == []
    (entry,) = await NotifyLogRepo(store).list("staff")
    assert entry["outcome"] == "failed" and entry["error"].startswith("mail not accepted: SMTPAuthenticationError")


async def test_bot_api_send_message(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    async with bot_api() as api:
        settings = config.load(data_dir=tmp_path, notify={"telegram_api_base": api.url})
        await add_rule(store, name="chat", sink="telegram", target="-1001234567", lang="ko")
        await AlertRepo(store).raise_alert(
            alert(key="detection/" + SHA + "/default", kind=AlertKind.DETECTION, channel="otherchan")
        )
        dispatcher = Dispatcher(store, settings)
        try:
            counts = await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert counts["sent"] == 1
    (sent,) = api.received
    assert sent["chat_id"] == -1001234567 and sent["disable_web_page_preview"] is True
    assert "parse_mode" not in sent  # plain text: channel names cannot inject markup
    assert "탐지기 양성 판정" in sent["text"] and "otherchan" in sent["text"]
    entries = await NotifyLogRepo(store).list("chat")
    assert BOT_TOKEN not in json.dumps(entries, default=str)


async def test_bot_api_refusal_does_not_echo_the_token(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN", "999:" + SECRET)  # not the token the API knows
    async with bot_api() as api:
        settings = config.load(data_dir=tmp_path, notify={"telegram_api_base": api.url})
        await add_rule(store, name="chat", sink="telegram", target="@staffchannel")
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, settings)
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert api.received == []
    (entry,) = await NotifyLogRepo(store).list("chat")
    assert entry["outcome"] == "failed" and entry["error"] == "Bot API refused the message: HTTP 401"
    assert SECRET not in json.dumps(entry, default=str)
