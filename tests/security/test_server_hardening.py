"""The server names no versions and drops clients that send a request too slowly (slow-loris)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage.client import Store
from tests.security.support import serve, settings

#: a guard so a regression fails instead of hanging; the server is told to give up after 1 s
GUARD_SECONDS = 30.0


async def _raw(port: int, payload: bytes) -> bytes:
    """Send ``payload`` and read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), GUARD_SECONDS)
    finally:
        writer.close()


async def test_no_version_banner_even_for_malformed_requests(store: Store, tmp_path: Path) -> None:
    async with serve(store, settings(tmp_path)) as client:
        for path in ("/healthz", "/api/v1/audit", "/no/such/page", "/console/login"):
            server = (await client.get(path)).headers.get("Server", "")
            assert "Python" not in server and "aiohttp" not in server, (path, server)
        answer = await _raw(client.port or 0, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
        assert b"Python/" not in answer and b"aiohttp" not in answer


async def test_half_sent_requests_are_dropped(store: Store, tmp_path: Path) -> None:
    cfg = settings(tmp_path, api={"request_read_timeout": 1})
    async with serve(store, cfg) as client:
        port = client.port or 0
        # headers that never end, on many connections at once
        partial = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
        answers = await asyncio.gather(*(_raw(port, partial) for _ in range(20)))
        assert all(a == b"" for a in answers), "closed without an answer"
        # a body that never arrives, on a route that reads it (the public sign-in form)
        body_start = (
            b"POST /console/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=tgw_"
        )
        answer = await _raw(port, body_start)
        assert answer.split(b"\r\n")[0].endswith(b" 408 Request Timeout"), answer[:80]
        # the server still answers everyone else
        assert (await client.get("/healthz")).status == 200
