"""Short-lived signed media URLs: the detection job carries one, so a consumer needs no other secret
to fetch the bytes, and a leaked URL stops working after its TTL."""

from __future__ import annotations

import hashlib
import hmac
import time


class UrlSigner:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl = ttl_seconds

    def _sig(self, sha256: str, expires: int) -> str:
        return hmac.new(self._key, f"{sha256}:{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, sha256: str, *, now: float | None = None) -> tuple[int, str]:
        expires = int((time.time() if now is None else now) + self.ttl)
        return expires, self._sig(sha256, expires)

    def media_path(self, sha256: str, *, now: float | None = None) -> str:
        expires, sig = self.sign(sha256, now=now)
        return f"/api/v1/detection/media/{sha256}?exp={expires}&sig={sig}"

    def verify(self, sha256: str, expires: str, sig: str, *, now: float | None = None) -> bool:
        try:
            exp = int(expires)
        except ValueError:
            return False
        if exp < (time.time() if now is None else now):
            return False
        # bytes, not str: a non-ASCII signature is simply wrong, never an exception (a 500)
        return hmac.compare_digest(self._sig(sha256, exp).encode(), sig.encode("utf-8", "replace"))
