"""Notification secrets stay in the environment; signatures resist tampering and replay; text from
Telegram cannot forge mail headers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import config
from crawler.notify.dispatcher import Dispatcher
from crawler.notify.render import render_alert
from crawler.notify.rules import NotifyRule
from crawler.notify.sinks.email import EmailSink
from crawler.notify.sinks.webhook import sign, verify
from foundation.models import AlertKind
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.notify import NotifyRuleRepo
from tests.media_host import LOOPBACK_HTTP
from tests.notify_support import BOT_TOKEN, SECRET, alert, webhook_receiver


async def test_secret_is_never_stored_or_logged(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with webhook_receiver() as hook:
        rule = NotifyRule(name="ops", sink="webhook", target=hook.url, secret_env="HOOK_SECRET")
        await NotifyRuleRepo(store).add(rule.to_doc())
        await AlertRepo(store).raise_alert(alert())
        dispatcher = Dispatcher(store, config.load(data_dir=tmp_path, http=LOOPBACK_HTTP), env={"HOOK_SECRET": SECRET})
        try:
            await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert hook.received
    for name in ("notify_rules", "notify_log", "notify_deliveries", "notify_rate"):
        dumped = json.dumps(await store[name].find().to_list(None), default=str)
        assert SECRET not in dumped, name
    assert (await store["notify_rules"].find_one({"_id": "ops"}) or {})["secret_env"] == "HOOK_SECRET"
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


def test_settings_mask_smtp_password_and_bot_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TGWATCH_SMTP__PASSWORD", SECRET)
    monkeypatch.setenv("TGWATCH_NOTIFY__TELEGRAM_BOT_TOKEN", BOT_TOKEN)
    settings = config.load(data_dir=tmp_path)
    assert settings.smtp.password is not None and settings.smtp.password.get_secret_value() == SECRET
    shown = json.dumps(settings.masked())
    assert SECRET not in shown and BOT_TOKEN not in shown
    assert SECRET not in repr(settings) and SECRET not in str(settings.notify)


def test_signature_rejects_tampering_replay_and_wrong_keys() -> None:
    secret, body, now = SECRET.encode(), b'{"type":"alert"}', time.time()
    ts = str(int(now))
    good = sign(secret, ts, body)
    assert verify(secret, ts, body, good, now=now)
    assert not verify(secret, ts, body + b" ", good, now=now)  # body changed
    assert not verify(secret, str(int(now) + 1), body, good, now=now)  # timestamp changed
    assert not verify(b"other", ts, body, good, now=now)  # wrong key
    assert not verify(secret, ts, body, good, now=now + 301)  # replayed later than the tolerance
    assert not verify(secret, "not-a-number", body, good, now=now)
    assert not verify(secret, ts, body, good.removeprefix("sha256="), now=now)


def test_channel_names_cannot_inject_mail_headers() -> None:
    doc = alert(kind=AlertKind.DETECTION, channel="evil").to_doc()
    doc["channels"] = ["evil\r\nBcc: victim@example.org"]
    message = render_alert(doc, lang="en", rule="r", delivery="d", web_base="https://t.me", console_url=None)
    assert "\n" not in message.subject and "\r" not in message.subject
    mail = EmailSink("staff@org.test", config.load().smtp).build(message)
    assert mail["Bcc"] is None and "victim@example.org" not in str(mail["To"])
