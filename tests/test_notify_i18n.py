"""Notification words exist in Korean and English, and the catalogs ship with the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawler.notify.render import render_alert, render_digest, render_test
from crawler.notify.rules import KINDS, SEVERITIES
from foundation import i18n
from tests.notify_support import alert

ROOT = Path(__file__).resolve().parents[1]


def test_every_notification_message_has_a_korean_translation() -> None:
    ids = i18n.msgids("notify.")
    assert ids, "no notification messages in the English catalog"
    ko_ids = {str(m.id) for m in i18n.catalog("ko") if m.id}
    assert set(ids) <= ko_ids
    for msgid in ids:
        ko = i18n.translated("ko", msgid)
        assert ko, f"{msgid} has no Korean translation"
        placeholders = set(re.findall(r"\{(\w+)\}", i18n.translated("en", msgid) or ""))
        assert set(re.findall(r"\{(\w+)\}", ko)) == placeholders, f"{msgid}: parameters differ between ko and en"


def test_every_kind_and_severity_has_words() -> None:
    for kind in KINDS:
        assert i18n.translated("ko", f"notify.kind.{kind}") and i18n.translated("en", f"notify.kind.{kind}")
    for severity in SEVERITIES:
        assert i18n.translated("ko", f"notify.severity.{severity}")


def test_source_code_uses_only_catalogued_ids() -> None:
    used = set()
    for path in (ROOT / "crawler" / "notify").rglob("*.py"):
        used |= set(re.findall(r"[\"'](notify\.[a-z_.]+[a-z_])[\"']", path.read_text()))
    assert used and used <= set(i18n.msgids("notify."))


def test_rendering_in_both_languages() -> None:
    doc = alert().to_doc()
    common = {"rule": "r", "web_base": "https://t.me", "console_url": None}
    ko = render_alert(doc, lang="ko", delivery="d", **common)
    en = render_alert(doc, lang="en", delivery="d", **common)
    assert "해시 목록 일치" in ko.subject and "Hash-list match" in en.subject
    assert "알림에는 미디어가 첨부되지 않습니다" in ko.text
    assert "경보 2건" in render_digest([doc, doc], lang="ko", deliveries=["a", "b"], **common).subject
    assert "테스트" in render_test(lang="ko", rule="r").subject


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        i18n.catalog("xx")


def test_catalogs_are_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '"*.po"' in text
    for lang in i18n.LANGUAGES:
        assert (ROOT / "foundation" / "locale" / lang / "LC_MESSAGES" / "tgwatch.po").is_file()
