"""Enrolled embeddings at rest and in transit: AES-256-GCM under ``watchlist.key`` (from the
environment, ``TGWATCH_WATCHLIST__KEY``), the person reference as associated data.

Why the reference is bound: a sealed blob copied onto another person's record fails to open, so a
database writer cannot make one person's face match under another's name. The store and the
gallery endpoint only ever hold sealed blobs; only a process given the key (the detector, the
enrollment command) sees an embedding, and only in memory.
"""

from __future__ import annotations

import secrets

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import Settings
from crawler.watchlist.faces import EMBEDDING_DIM
from foundation import keys
from foundation.errors import ConfigError, TgwatchError

AAD_PREFIX = b"tgwatch-watchlist-v1:"


class WatchlistOff(TgwatchError):
    """The watchlist is off: no key is configured (it is never on by default)."""

    kind = "watchlist_off"


class SealBroken(TgwatchError):
    kind = "watchlist_seal_broken"


def watchlist_key(settings: Settings) -> bytes:
    """The configured key, or ``WatchlistOff``: there is no key file fallback, so an unconfigured
    installation cannot enroll anyone or match anything."""
    configured = settings.watchlist.key
    if configured is None or not configured.get_secret_value().strip():
        raise WatchlistOff("the watchlist is off: set TGWATCH_WATCHLIST__KEY (urlsafe base64 of 32 bytes)")
    try:
        return keys.decode_key(configured.get_secret_value().strip(), "watchlist.key")
    except ConfigError as exc:
        raise WatchlistOff(f"the watchlist is off: {exc.message}") from None


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, person: str, vectors: npt.NDArray[np.float32]) -> bytes:
        data = np.asarray(vectors, dtype="<f4").reshape(-1, EMBEDDING_DIM).tobytes()
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, data, AAD_PREFIX + person.encode("utf-8"))

    def open(self, person: str, blob: bytes) -> npt.NDArray[np.float32]:
        try:
            data = self._aead.decrypt(blob[:12], blob[12:], AAD_PREFIX + person.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SealBroken(f"the embeddings of {person!r} do not open under this key (wrong key or moved)") from None
        return np.frombuffer(data, dtype="<f4").reshape(-1, EMBEDDING_DIM).astype(np.float32)
