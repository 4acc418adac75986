"""Web media fetch (aiohttp): the one seam where HTTP failures become our errors.

Every hop passes the egress guard (``foundation.egress``): http/https only, and non-public addresses
only for hosts the policy allows; redirects are followed by hand and re-checked (an
``EgressDenied`` names the refused hop). The body is streamed and digested as it arrives, and
abandoned the moment it passes the byte cap (a declared ``Content-Length`` over the cap is refused
before reading). Redirects are bounded, timeouts are set, and the server's ``Content-Type`` is only
recorded: the type we act on is sniffed from the first bytes. A body shorter than its
``Content-Length`` (connection cut) is ``Undecodable``.

Error mapping (aiohttp → tgwatch): HTTP statuses through ``foundation.errors.error_for_status`` (429,
or 503 with ``Retry-After`` → ``RateLimited``; 401/403 → ``AccessDenied``; 404/410 → ``NotFound``;
other → ``SourceError``); too many redirects, timeouts, connection failures → ``SourceError``; a
refused URL or address → ``EgressDenied``; over the cap → ``TooLarge``;
truncated body → ``Undecodable``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from crawler.hashing.digests import Digester
from crawler.hashing.sniff import sniff
from foundation.egress import EgressPolicy
from foundation.egress_http import open_guarded
from foundation.errors import DEFAULT_RETRY_AFTER, SourceError, TooLarge, Undecodable, error_for_status

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 50 * 1024 * 1024
    total_timeout: float = 120.0
    connect_timeout: float = 15.0
    read_timeout: float = 30.0  # between two chunks
    max_redirects: int = 5


@dataclass(frozen=True)
class FetchedMedia:
    url: str  # after redirects
    data: bytes
    sha256: str
    md5: str
    size: int
    mime: str | None  # sniffed from the bytes
    declared_type: str | None  # what the server said, for the record only


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds; an unreadable one counts as the default wait, an absent one as None."""
    if value is None:
        return None
    try:
        return max(0.0, float(value)) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER


async def fetch_media(
    session: aiohttp.ClientSession,
    url: str,
    limits: FetchLimits | None = None,
    *,
    policy: EgressPolicy | None = None,
) -> FetchedMedia:
    """GET ``url`` into memory under ``limits``; digests and sniffed type computed on the way.

    ``policy`` None allows public addresses only."""
    limits = limits or FetchLimits()
    policy = policy or EgressPolicy()
    timeout = aiohttp.ClientTimeout(
        total=limits.total_timeout, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
    )
    try:
        async with open_guarded(
            session,
            "GET",
            url,
            policy=policy,
            max_redirects=limits.max_redirects,
            timeout=timeout,
            auto_decompress=False,
        ) as resp:
            error = error_for_status(resp.status, url, retry_after=_retry_after(resp.headers.get("Retry-After")))
            if error is not None:
                raise error
            declared = resp.content_length
            if declared is not None and declared > limits.max_bytes:
                raise TooLarge(f"Content-Length {declared} over the cap of {limits.max_bytes} bytes", url=url)
            digester = Digester()
            parts: list[bytes] = []
            async for chunk in resp.content.iter_chunked(_CHUNK):
                if digester.size + len(chunk) > limits.max_bytes:
                    raise TooLarge(f"body passed the cap of {limits.max_bytes} bytes", url=url)
                digester.update(chunk)
                parts.append(chunk)
            if declared is not None and digester.size != declared:
                raise Undecodable(f"truncated download: {digester.size} of {declared} bytes", url=url)
            data = b"".join(parts)
            return FetchedMedia(
                url=str(resp.url),
                data=data,
                sha256=digester.sha256,
                md5=digester.md5,
                size=digester.size,
                mime=sniff(data[:64]),
                declared_type=resp.headers.get("Content-Type"),
            )
    except aiohttp.TooManyRedirects as exc:
        raise SourceError(f"more than {limits.max_redirects} redirects", url=url) from exc
    except aiohttp.ClientPayloadError as exc:
        raise Undecodable(f"truncated download: {exc}", url=url) from exc
    except (aiohttp.InvalidURL, ValueError) as exc:
        raise SourceError(f"invalid URL: {exc}", url=url) from exc
    except TimeoutError as exc:
        raise SourceError("timed out", url=url) from exc
    except aiohttp.ClientError as exc:
        raise SourceError(f"{type(exc).__name__}: {exc}", url=url) from exc
