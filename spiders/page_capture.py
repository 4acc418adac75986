"""The whole HTTP response a spider parsed, as a ``WebPage`` record for the web archive.

Kept apart from the spiders' parsing so the cost per page stays visible: one SHA-256 of the body
and a copy of the headers (the body itself is the response's own bytes, not copied). What Scrapy
does not keep is said where it is missing: the reason phrase is the standard one for the status
(Scrapy drops the server's), header names come in Scrapy's capitalisation, and the body is decoded
(``Content-Encoding`` undone and removed from the headers by Scrapy's compression middleware).
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus

from scrapy.http import Headers, Response

from foundation.models import ChannelRef, WebPage


def _pairs(headers: Headers) -> list[tuple[str, str]]:
    return [
        (key.decode("latin-1"), value.decode("latin-1"))
        for key, values in headers.items()
        for value in values
        if isinstance(key, bytes) and isinstance(value, bytes)
    ]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def web_page(response: Response, username: str, fetched_at: datetime) -> WebPage:
    request = response.request
    return WebPage.of(
        ref=ChannelRef(username=username),
        url=response.url,
        method=request.method if request is not None else "GET",
        request_headers=_pairs(request.headers) if request is not None else [],
        protocol=response.protocol,
        status=response.status,
        reason=_reason(response.status),
        headers=_pairs(response.headers),
        body=response.body,
        fetched_at=fetched_at,
    )
