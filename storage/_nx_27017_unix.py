"""nx-27017 served on a private unix socket; run as ``python -m storage._nx_27017_unix``.

Why not the ``nx-27017`` command: it only listens on TCP and has no authentication (no SASL/SCRAM,
no ``saslStart`` command, no unix-socket option), so any local user who finds the port reads and
writes everything. A unix socket inside ``data_dir/embedded`` (a 0700 directory, the socket itself
0600) is reachable only by the owning user (and root). The wire protocol handling is nx-27017's own
(``nx_27017.server.handle_client`` over ``NeoSQLiteHandler``); only the listener differs.

The socket path stays the same across restarts, so a driver connected to a server that died
reconnects by itself once a new one listens there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger("nx_27017")


async def serve(data_dir: Path, socket_path: Path, journal_mode: str) -> None:
    from neosqlite.options import JournalMode
    from nx_27017.handler import NeoSQLiteHandler
    from nx_27017.server import handle_client

    handler = NeoSQLiteHandler(str(data_dir), journal_mode=JournalMode.validate(journal_mode), data_dir=str(data_dir))

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handle_client(reader, writer, handler)

    server = await asyncio.start_unix_server(on_client, path=str(socket_path))
    os.chmod(socket_path, 0o600)  # already 0600 through the umask; explicit for the reader
    log.info("Listening on unix socket %s", socket_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    log.info("Shutting down")


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # the SQLite files, their WAL/SHM files and the socket: owner only
    parser = argparse.ArgumentParser(prog="python -m storage._nx_27017_unix", description=__doc__)
    parser.add_argument("--data-dir", required=True, type=Path, help="one SQLite file per logical database")
    parser.add_argument("--unix-socket", required=True, type=Path, help="where to listen")
    parser.add_argument("-j", "--journal-mode", default="WAL")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s - %(name)s - %(levelname)s - [%(process)d] - %(message)s",
    )
    # a socket left by a killed predecessor would make bind fail; only our supervisor (under the
    # data_dir lock) starts a server here, so whatever is at this path is ours and dead
    with contextlib.suppress(FileNotFoundError):
        args.unix_socket.unlink()
    try:
        asyncio.run(serve(args.data_dir, args.unix_socket, args.journal_mode))
    finally:
        with contextlib.suppress(FileNotFoundError):
            args.unix_socket.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
