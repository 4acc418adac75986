"""A small forward proxy on loopback that records what it was asked, for the egress tests.

It answers ``CONNECT host:port`` (a tunnel) and absolute-form requests (``GET http://host:port/path``),
resolving and connecting to the target itself — exactly what a real proxy does, and why the egress
guard must check a target before handing it to one. ``asked`` lists every request line it received.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class RecordingProxy:
    asked: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        self.asked.append(f"{method} {target}")
        try:
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                kept = [h for h in lines[1:] if h and not h.lower().startswith(("proxy-", "connection:"))]
                up_writer.write(f"{method} {path} {version}\r\n".encode("latin-1"))
                up_writer.write(("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
        except OSError as exc:
            writer.write(f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: {len(str(exc))}\r\n\r\n{exc}".encode())
            await writer.drain()
            writer.close()
            return
        upstream = asyncio.ensure_future(_pipe(reader, up_writer))
        await _pipe(up_reader, writer)  # the answer ends the exchange
        upstream.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upstream
        up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()


@asynccontextmanager
async def proxying() -> AsyncIterator[tuple[RecordingProxy, str]]:
    """A recording proxy on 127.0.0.1 and its URL (``http://127.0.0.1:<port>``)."""
    proxy = RecordingProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield proxy, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
