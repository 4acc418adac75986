"""Every feature module that adds routes to the HTTP server, in one list."""

from __future__ import annotations

from crawler.api.app import Registrar
from crawler.detection import api as detection_api

ALL_MODULES: list[Registrar] = [detection_api.register]
