"""The receiver's check (``crawler.notify.sinks.webhook.verify``, the documented way to verify a
tgwatch webhook) refuses a non-ASCII signature instead of raising: ``hmac.compare_digest`` on a
``str`` with non-ASCII characters raises ``TypeError``, which a receiver would turn into a 500."""

from __future__ import annotations

import time

from crawler.notify.sinks.webhook import sign, verify


def test_non_ascii_signatures_are_refused_not_errors() -> None:
    secret, body, now = b"k" * 32, b'{"type":"alert"}', time.time()
    ts = str(int(now))
    assert verify(secret, ts, body, sign(secret, ts, body), now=now)
    for forged in ("sha256=é", "sha256=" + "\u0663" * 64, "\udcff", ""):
        assert verify(secret, ts, body, forged, now=now) is False
