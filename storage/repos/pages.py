"""Whole web pages: each distinct response body once, by its SHA-256, compressed.

Why a collection of its own and why this shape: a court may ask to see a page as the server sent
it, not only the bubble or header tgwatch cut from it, so every fetched page's body is kept. Bodies
are content-addressed (a re-fetch of an identical page stores nothing new) and zlib-compressed (a
60 KB channel page of the sample site keeps ~6 KB). What differs per fetch — the time, the status line,
the headers — is small and goes into the fetch's ledger entry (``item: page``), where it is signed.
Pages are HTML, the same class of data as ``raw_captures`` (kept in the store, not encrypted); the
media quarantine's encryption is for media bytes, which a page only links to.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from foundation.models import WebPage
from storage.client import Store, insert_new, translate_errors

#: cheap on the crawl's hot path: a 60 KB sample-site page takes ~0.35 ms and keeps ~9 % of its
#: size, against ~0.9 ms and ~8 % at zlib's default level 6 (measured on the loaded 2-core machine)
LEVEL = 3


class PageRepo:
    def __init__(self, store: Store) -> None:
        self._pages = store["web_pages"]

    async def put(self, pages: Sequence[WebPage]) -> int:
        """Store the bodies not stored yet; returns how many were new."""
        docs = {
            p.sha256: {"_id": p.sha256, "size": len(p.body), "encoding": "zlib", "body": zlib.compress(p.body, LEVEL)}
            for p in pages
        }
        return await insert_new(self._pages, list(docs.values()), "store web pages")

    async def body(self, sha256: str) -> bytes | None:
        """The body with this digest, or None when it is not held (the caller checks the digest)."""
        with translate_errors("read web page"):
            doc = await self._pages.find_one({"_id": sha256})
        if doc is None:
            return None
        try:
            return zlib.decompress(bytes(doc["body"]))
        except (zlib.error, KeyError, TypeError):
            return None
