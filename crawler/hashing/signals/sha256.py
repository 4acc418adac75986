"""SHA-256: exact bytes, the media's identity (``media._id``)."""

from __future__ import annotations

from crawler.hashing.signals.base import ExactDigestSignal


class Sha256Signal(ExactDigestSignal):
    name = "sha256"
    hex_length = 64
    field = "sha256"
