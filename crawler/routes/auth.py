"""The console session and CSRF vocabulary route handlers share with the auth middleware.

Why below the shell: a feature's console forms check the synchronizer token themselves
(``crawler.investigate.access``), and the middleware in ``crawler.api.auth`` checks it for every
unsafe request; both must agree on the cookie, the header, the key and the MAC. The middleware, the
log-in flow and the bearer-token check stay in ``crawler.api.auth``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

from crawler.tokens import TokenRepo
from storage.repos.sessions import SessionRepo

SESSION_COOKIE = "tgwatch_session"
CSRF_HEADER = "X-CSRF-Token"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class FailureLimiter:
    """Failed authentications per client address: ``limit`` in ``window`` seconds → further failures get 429."""

    limit: int = 10
    window: float = 60.0
    #: addresses remembered at most; past it, addresses whose failures have all aged out are forgotten
    max_clients: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict, init=False, repr=False)

    def blocked(self, client: str) -> float:
        """Seconds until ``client`` may fail again without a 429 (0 = not blocked)."""
        q = self._failures.get(client)
        if not q:
            return 0.0
        now = time.monotonic()
        while q and now - q[0] > self.window:
            q.popleft()
        return self.window - (now - q[0]) if len(q) >= self.limit else 0.0

    def fail(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._forget_idle()
        self._failures.setdefault(client, deque(maxlen=self.limit)).append(time.monotonic())

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for key in [k for k, q in self._failures.items() if not q or now - q[-1] > self.window]:
            del self._failures[key]


@dataclass(frozen=True)
class AuthContext:
    """Everything the middleware and the console need to authenticate, built once per app."""

    tokens: TokenRepo
    sessions: SessionRepo
    limiter: FailureLimiter
    csrf_key: bytes
    trusted_proxies: tuple[Network, ...] = ()
    secure_cookies: bool = False
    session_idle: float = 30 * 60.0
    session_max: float = 12 * 3600.0


AUTH: web.AppKey[AuthContext] = web.AppKey("auth", AuthContext)
#: the console session id a request was authenticated with (absent for bearer tokens)
SESSION_ID: web.RequestKey[str] = web.RequestKey("session_id", str)


def _text_bytes(value: str) -> bytes:
    # headers and form fields may carry any character: compare bytes, never let a str compare raise
    return value.encode("utf-8", "replace")


def csrf_token(key: bytes, session_id: str) -> str:
    """The synchronizer token of one session: a keyed MAC of the session id's digest."""
    digest = hashlib.sha256(_text_bytes(session_id)).hexdigest()
    return hmac.new(key, f"csrf:{digest}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: bytes, session_id: str | None, presented: str | None) -> bool:
    if not session_id or not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), _text_bytes(presented))
