"""What a feature's route handlers find on the app: the app keys and the JSON answer helpers.

Why not in ``crawler.api.app``: that module builds the server out of every feature's routes (the
shell), so a feature importing it would import its own assembler. The keys are declared here, below
both; ``crawler.api.app`` fills them when it builds the app.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from config import Settings
from crawler.audit import AuditLog
from crawler.routes.table import RouteTable
from storage.client import Store

STORE: web.AppKey[Store] = web.AppKey("store", Store)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
ROUTES: web.AppKey[RouteTable] = web.AppKey("routes", RouteTable)
#: the one audit log of the server: every entry is also a ``query`` entry in the ledger
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit", AuditLog)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str))


def problem(status: int, detail: str, **extra: Any) -> web.Response:
    return json_response({"status": status, "error": detail, **extra}, status=status)
