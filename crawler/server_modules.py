"""Every feature module that adds routes to the HTTP server, in one list."""

from __future__ import annotations

from functools import partial

from aiohttp import web

from crawler.api.app import LEDGER, SETTINGS, STORE, Registrar
from crawler.console.routes import register as console_register
from crawler.detection import api as detection_api
from crawler.discovery import api as discovery_api
from crawler.evidence import api as evidence_api
from crawler.evidence.hooks import VerdictHook, verdict_hook
from crawler.investigate.api import register as investigate_register
from crawler.media import hma_api
from crawler.scheduling import api as scheduling_api
from crawler.takedowns import api as takedowns_api
from crawler.takedowns.autodraft import PolicyHook
from crawler.takedowns.senders import build_senders
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from crawler.watchlist import api as watchlist_api


def ledger_verdict_hook(app: web.Application) -> VerdictHook:
    """Detection records every verdict in the evidence ledger: joined here, so neither imports the other."""
    return verdict_hook(app[LEDGER])


def takedown_policy_hook(app: web.Application) -> PolicyHook:
    """Detection alerts follow ``takedowns.detection_policy`` (``manual`` or ``draft``, never ``auto``):
    joined here, so detection never imports takedowns. Drafting sends nothing, so nothing runs behind."""
    store, settings = app[STORE], app[SETTINGS]
    takedowns = TakedownService(store, app[LEDGER], settings.takedowns)
    return PolicyHook(takedowns, Dispatcher(takedowns, build_senders(settings)), settings.takedowns, background=False)


ALL_MODULES: list[Registrar] = [
    partial(
        detection_api.register,
        verdict_hook_for=ledger_verdict_hook,
        alert_hook_for=takedown_policy_hook,
        watchlist_for=watchlist_api.review_gate,
    ),
    investigate_register,
    console_register,
    scheduling_api.register,
    discovery_api.register,
    evidence_api.register,
    evidence_api.register_export,
    takedowns_api.register,
    watchlist_api.register,
    hma_api.register,
]
