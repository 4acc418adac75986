"""Every feature module that adds routes to the HTTP server, in one list."""

from __future__ import annotations

from crawler.api.app import Registrar

ALL_MODULES: list[Registrar] = []
