"""A loopback stand-in for t.me in tests: ``/s/NAME`` answered by ``preview``, ``/NAME`` by ``profile``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve_tme(preview: Handler, profile: Handler) -> AsyncIterator[str]:
    """Serve the two t.me page kinds on 127.0.0.1 and yield the base URL (the ``telegram_web_base``)."""
    app = web.Application()
    app.router.add_get("/s/{name}", preview)
    app.router.add_get("/{name}", profile)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
