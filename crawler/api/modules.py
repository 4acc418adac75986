"""Every feature module that adds routes to the HTTP server, in one list."""

from __future__ import annotations

from crawler.api.app import Registrar
from crawler.console.routes import register as console_register
from crawler.detection import api as detection_api
from crawler.discovery import api as discovery_api
from crawler.evidence import api as evidence_api
from crawler.investigate.api import register as investigate_register
from crawler.scheduling import api as scheduling_api
from crawler.takedowns import api as takedowns_api

ALL_MODULES: list[Registrar] = [
    detection_api.register,
    investigate_register,
    console_register,
    scheduling_api.register,
    discovery_api.register,
    evidence_api.register,
    evidence_api.register_export,
    takedowns_api.register,
]
