"""tgwatch's one error tree.

Library exceptions (Telethon RPC errors, Scrapy/HTTP failures, PyMongo errors) are translated at the
edge that calls the library, so core code only ever sees these::

    TgwatchError
    ├── SourceError               a source (web page, MTProto) could not give us what we asked
    │   ├── RateLimited           429 / FloodWait: retry after `retry_after` seconds
    │   ├── AccessDenied          private channel, banned, no permission
    │   ├── NotFound              username/post/invite does not exist (or no longer)
    │   ├── BadPage               malformed or truncated page: what it held is still kept
    │   └── EgressDenied          the egress guard refused a URL (scheme, or a non-public address)
    ├── MediaError                a media file we refuse to hash or keep
    │   ├── TooLarge              over the configured size or pixel cap
    │   ├── Undecodable           truncated, corrupt or not media at all
    │   └── Bomb                  decompression bomb or hostile dimensions
    ├── StoreError                MongoDB (or the embedded server) failed
    ├── NotAuthorized             no active authorization covers a private join/read
    └── ConfigError               settings are missing or contradictory

``error_for_status`` is the one HTTP status → error mapping every fetching edge uses (the web
spiders after their retries, the media fetcher).

The root and ``ConfigError`` are defined in ``config.errors``: settings are loaded (and refused) in
``config``, the bottom layer, which imports nothing of ours. They are re-exported here, so the tree
is still one tree and ``foundation.errors.ConfigError`` is the very class ``config.load`` raises.
"""

from __future__ import annotations

from config.errors import ConfigError as ConfigError
from config.errors import TgwatchError as TgwatchError


class SourceError(TgwatchError):
    kind = "source"


class RateLimited(SourceError):
    kind = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: float, url: str | None = None) -> None:
        super().__init__(message or f"rate limited, retry after {retry_after:g}s", url=url)
        self.retry_after = retry_after

    def to_doc(self) -> dict[str, object]:
        doc = super().to_doc()
        doc["retry_after"] = self.retry_after
        return doc


class AccessDenied(SourceError):
    kind = "access_denied"


class NotFound(SourceError):
    kind = "not_found"


class BadPage(SourceError):
    kind = "bad_page"


class EgressDenied(SourceError):
    """A request the egress guard (``foundation.egress``) refused before any byte left."""

    kind = "egress_denied"


class MediaError(TgwatchError):
    kind = "media"


class TooLarge(MediaError):
    kind = "too_large"


class Undecodable(MediaError):
    kind = "undecodable"


class Bomb(MediaError):
    kind = "bomb"


class StoreError(TgwatchError):
    kind = "store"


class NotAuthorized(TgwatchError):
    kind = "not_authorized"


#: the wait assumed when a server rate-limits without saying for how long
DEFAULT_RETRY_AFTER = 60.0


def error_for_status(
    status: int, url: str | None, *, retry_after: float | None = None, retried: bool = False
) -> SourceError | None:
    """The error an HTTP answer means, or None for a success or redirect.

    ``retry_after`` is what the server said (``Retry-After`` in seconds) or None: a 429 is always
    ``RateLimited``, a 503 only when the server said when to come back (otherwise it is an outage).
    ``retried``: the answer is the last of the project's retries, and the message says so."""
    if status < 400:
        return None
    if status == 429 or (status == 503 and retry_after is not None):
        return RateLimited(retry_after=DEFAULT_RETRY_AFTER if retry_after is None else retry_after, url=url)
    if status in (401, 403):
        return AccessDenied(f"HTTP {status}", url=url)
    if status in (404, 410):
        return NotFound(f"HTTP {status} for {url}", url=url)
    return SourceError(f"HTTP {status} after retries" if retried else f"HTTP {status}", url=url)


class PossiblyThrottled(RateLimited):
    """t.me answered a channel page with "No posts found": how it answers when it throttles, so the
    page is retried on a later run rather than taken as proof that the channel is empty."""

    kind = "possible_throttle"
