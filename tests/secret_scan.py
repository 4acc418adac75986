"""Every test's captured output is scanned for secrets; a test whose logs leak one fails.

Why here and not only in ``test_security_checks``: the command-line checks cover what the CLI
prints, but secrets can reach a log line from any code path a test exercises (a Telethon error
repr, an account's session in a debug line, a token in an access log). pytest already captures
each test's stdout, stderr and log records; this hook reads them after every phase and turns a leak
into a failure naming the kind of secret (never the secret itself).

What counts as a secret: API tokens (``tgw_…``), Telethon session strings, E.164 phone numbers,
an ``api_hash`` value, and the fixed secrets the security tests plant on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

import pytest

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("api token", re.compile(r"\btgw_[A-Za-z0-9_-]{20,}")),
    ("telethon session string", re.compile(r"(?<![A-Za-z0-9_-])1[A-Za-z0-9_-]{200,}={0,2}")),
    ("phone number", re.compile(r"(?<![\w+])\+\d{10,14}\b")),
    ("api_hash", re.compile(r"(?i)api_hash['\"]?\s*[:=]\s*['\"]?[0-9a-f]{32}\b")),
)

#: secrets tests plant on purpose; they must never come back in any output
PLANTED = (
    "5ecre7a9151ba5e0123456789abcdef0",
    "1BVtsOSecretSessionStringThatMustNeverBeLogged",
    "+447700900123",
)


def leaks(text: str) -> list[str]:
    found = [name for name, pattern in PATTERNS if pattern.search(text)]
    found += ["a planted test secret" for value in PLANTED if value in text]
    return sorted(set(found))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.passed or item.get_closest_marker("secrets_in_output") is not None:
        return
    phase = f" {report.when}"  # later phases' reports repeat earlier sections: read each phase once
    captured = "\n".join(c for name, c in report.sections if name.startswith("Captured") and name.endswith(phase))
    found = leaks(captured)
    if found:
        report.outcome = "failed"
        report.longrepr = (
            f"secret-looking values in the captured output of {report.when}: {', '.join(found)} "
            "(tests/secret_scan.py; mark the test `secrets_in_output` only if it prints one on purpose)"
        )
