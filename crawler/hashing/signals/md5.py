"""MD5: exact bytes, as older lists (NCMEC, StopNCII's VideoMD5) still exchange them."""

from __future__ import annotations

from crawler.hashing.signals.base import ExactDigestSignal


class Md5Signal(ExactDigestSignal):
    name = "md5"
    hex_length = 32
    field = "md5"
