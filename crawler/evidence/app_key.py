"""The key under which the HTTP server keeps its evidence ledger (``app[LEDGER]``).

Why here and not beside the other keys in ``crawler.routes.context``: that seam sits below every
feature, and the ledger is a feature; the key lives with the ledger so the seam imports no feature.
"""

from __future__ import annotations

from aiohttp import web

from crawler.evidence.ledger import Ledger

LEDGER: web.AppKey[Ledger] = web.AppKey("ledger", Ledger)
