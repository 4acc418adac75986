"""Encryption at rest for account secrets (session strings, phone numbers).

AES-256-GCM with a random 96-bit nonce per value; the account name is bound as associated data, so a
ciphertext copied onto another account's document does not decrypt. The key comes from
``settings.telegram.secrets_key`` (urlsafe base64 of 32 bytes): without it tgwatch refuses to handle
accounts at all rather than fall back to storing plaintext.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from config import Settings
from foundation.errors import ConfigError

#: version prefix of every stored ciphertext, so the scheme can change without guessing
PREFIX = "v1:"
NONCE_BYTES = 12


def generate_key() -> str:
    """A fresh key in the form ``secrets_key`` expects (print it once, keep it in the environment)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


class SecretBox:
    """Encrypt and decrypt short secrets bound to a context (the account name)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("telegram.secrets_key must decode to exactly 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_text(cls, text: str) -> SecretBox:
        try:
            key = base64.urlsafe_b64decode(text.strip().encode("ascii") + b"=" * (-len(text.strip()) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise ConfigError("telegram.secrets_key is not urlsafe base64") from exc
        return cls(key)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box for these settings; a missing key is a configuration error, never plaintext."""
        secret = settings.telegram.secrets_key
        if secret is None or not secret.get_secret_value().strip():
            raise ConfigError(
                "telegram.secrets_key is not set (TGWATCH_TELEGRAM__SECRETS_KEY): refusing to store account"
                " secrets unencrypted; generate one with `python -c 'from telegram_watch.crypto import"
                " generate_key; print(generate_key())'`"
            )
        return cls.from_key_text(secret.get_secret_value())

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, token: str, *, context: str) -> str:
        if not token.startswith(PREFIX):
            raise ConfigError("stored account secret has an unknown format")
        try:
            blob = base64.urlsafe_b64decode(token[len(PREFIX) :].encode("ascii"))
            plain = self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode("utf-8"))
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ConfigError("cannot decrypt a stored account secret: wrong telegram.secrets_key?") from exc
        return plain.decode("utf-8")
