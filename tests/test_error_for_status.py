"""The one HTTP status → error mapping every fetching edge uses (``foundation.errors.error_for_status``)."""

from __future__ import annotations

import pytest

from foundation.errors import AccessDenied, NotFound, RateLimited, SourceError, error_for_status

URL = "http://127.0.0.1:9/x"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (200, None, None),
        (304, None, None),
        (429, None, RateLimited),
        (429, 5.0, RateLimited),
        (503, 7.0, RateLimited),  # the server said when to come back
        (503, None, SourceError),  # an outage
        (401, None, AccessDenied),
        (403, None, AccessDenied),
        (404, None, NotFound),
        (410, None, NotFound),
        (400, None, SourceError),
        (500, None, SourceError),
        (502, None, SourceError),
    ],
)
def test_status_table(status: int, retry_after: float | None, expected: type[SourceError] | None) -> None:
    error = error_for_status(status, URL, retry_after=retry_after)
    if expected is None:
        assert error is None
        return
    assert type(error) is expected and error.url == URL


def test_rate_limited_keeps_the_servers_wait_or_assumes_a_minute() -> None:
    said = error_for_status(429, URL, retry_after=5.0)
    unsaid = error_for_status(429, URL)
    assert isinstance(said, RateLimited) and said.retry_after == 5.0
    assert isinstance(unsaid, RateLimited) and unsaid.retry_after == 60.0


def test_the_message_says_whether_retries_were_spent() -> None:
    assert str(error_for_status(500, URL)) == "HTTP 500"
    assert str(error_for_status(500, URL, retried=True)) == "HTTP 500 after retries"
