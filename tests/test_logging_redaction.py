"""Secrets put into log calls never reach the output, whatever the renderer."""

from __future__ import annotations

import io
import logging

import pytest

from foundation import logs

PHONE = "+82 10 1234 5678"
API_HASH = "0123456789abcdef0123456789abcdef"
SESSION = "1" + "BVtsOKBu" * 40 + "=="
TOKEN = "tgw_" + "s3cr3tT0kenValue" * 2
PASSWORD = "hunter2-correct-horse"


def _secrets() -> list[str]:
    return [PHONE, "821012345678", API_HASH, SESSION, TOKEN, PASSWORD]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secret_keys_and_values_are_masked(fmt: str) -> None:
    out = io.StringIO()
    logs.configure("DEBUG", fmt, out)
    log = logs.get_logger("test")
    log.info("login", phone=PHONE, api_hash=API_HASH, session_string=SESSION, password=PASSWORD)
    log.info("free text", note=f"user {PHONE} sent {SESSION} with api_hash={API_HASH}")
    log.info("headers", headers={"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"})
    log.info("uri", uri=f"mongodb://admin:{PASSWORD}@db.example:27017/tgwatch")
    log.info(f"interpolated event with {TOKEN} inside")
    text = out.getvalue()
    for secret in _secrets():
        assert secret not in text, f"{secret[:12]}… leaked in {fmt} output"
    assert "text/html" in text, "non-secret values must survive"
    assert "[REDACTED]" in text


def test_exceptions_are_scrubbed_and_rendered_without_locals() -> None:
    out = io.StringIO()
    logs.configure("DEBUG", "json", out)
    log = logs.get_logger("test")
    local_session = SESSION  # a local variable holding a secret must not be rendered
    try:
        raise RuntimeError(f"auth failed for {PHONE} using {local_session[:60]}{local_session[60:]}")
    except RuntimeError:
        log.exception("failure")
    text = out.getvalue()
    assert "RuntimeError" in text
    for secret in _secrets():
        assert secret not in text
    assert '"locals"' not in text


def test_stdlib_logging_from_libraries_is_scrubbed() -> None:
    out = io.StringIO()
    logs.configure("INFO", "json", out)
    logging.getLogger("some.library").warning("connecting with password=%s phone %s", PASSWORD, PHONE)
    text = out.getvalue()
    assert "connecting with" in text
    assert PASSWORD not in text and PHONE not in text


def test_level_filtering() -> None:
    out = io.StringIO()
    logs.configure("WARNING", "json", out)
    logs.get_logger("t").info("hidden")
    logs.get_logger("t").warning("shown")
    assert "hidden" not in out.getvalue() and "shown" in out.getvalue()


def test_logging_before_configure_keeps_locals_and_secrets_out() -> None:
    """A fresh process that logs an exception before any settings are read (library use)."""
    import subprocess
    import sys

    code = (
        "from foundation.logs import get_logger\n"
        "def handler():\n"
        "    token = 'tgw_' + 'Q' * 43\n"
        "    raise RuntimeError('boom with ' + token)\n"
        "try:\n"
        "    handler()\n"
        "except RuntimeError:\n"
        "    get_logger('x').exception('request failed')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    out = proc.stdout + proc.stderr
    assert "request failed" in out and "RuntimeError" in out
    assert "tgw_QQQQ" not in out and "locals" not in out
