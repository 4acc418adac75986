"""nx-27017 served on a private unix socket; run as ``python -m storage._nx_27017_unix``.

Why not the ``nx-27017`` command: it only listens on TCP and has no authentication (no SASL/SCRAM,
no ``saslStart`` command, no unix-socket option), so any local user who finds the port reads and
writes everything. A unix socket inside ``data_dir/embedded`` (a 0700 directory, the socket itself
0600) is reachable only by the owning user (and root). The wire protocol handling is nx-27017's own
(``nx_27017.server.handle_client`` over ``NeoSQLiteHandler``); only the listener differs, and one
multi-document insert is committed once (``BatchCommitHandler``) instead of once per document.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("nx_27017")


def batch_commit_handler(data_dir: Path, journal_mode: str) -> Any:
    """nx-27017's handler, with each insert and update command run inside one SQLite transaction.

    Why: nx-27017 inserts the documents of one ``insert`` command (and applies the statements of one
    ``update`` command) one by one on an autocommit connection, so a batch of 500 is 500 SQLite
    commits, each rewriting the table and index pages it touched into the WAL; that commit work was
    most of ingest's time (bench/RESULTS.md). One transaction around the command keeps everything
    else as it was: a duplicate ``_id`` still fails only its own statement (SQLite rolls back the
    statement, not the transaction) and is reported in ``writeErrors``; an unexpected error rolls
    the whole command back and the driver sees the error, so nothing half-written is acknowledged
    (ingest retries a batch by natural ``_id``). An insert or update inside a client transaction
    (``autocommit: false``) is left to nx-27017's sessions.
    """
    from neosqlite.options import JournalMode
    from nx_27017.handler import NeoSQLiteHandler

    class BatchCommitHandler(NeoSQLiteHandler):
        def handle_insert(self, msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            return self._in_one_transaction(msg, super().handle_insert)

        def handle_command(self, msg: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            body = _body(msg)
            if body is not None and next(iter(body), None) == "update":  # a batch of updates/replaces
                return self._in_one_transaction(msg, super().handle_command)
            return super().handle_command(msg)

        def _in_one_transaction(
            self, msg: dict[str, Any], run: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
        ) -> tuple[int, dict[str, Any]]:
            body = _body(msg)
            if body is None or "autocommit" in body or "startTransaction" in body:
                return run(msg)
            db_name = body.get("$db", "test")
            if not isinstance(db_name, str) or not db_name:
                return run(msg)
            # the same per-database lock nx-27017's own handlers take (reentrant), so no other
            # request uses this connection between BEGIN and COMMIT
            with self._lock_for(db_name):
                conn = self.get_database(db_name).db
                if conn.in_transaction:
                    return run(msg)
                conn.execute("BEGIN")
                try:
                    result = run(msg)
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
                return result

    return BatchCommitHandler(str(data_dir), journal_mode=JournalMode.validate(journal_mode), data_dir=str(data_dir))


def _body(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The command document of a parsed OP_MSG, or None."""
    for section_type, doc in msg.get("sections") or ():
        if section_type == "body" and isinstance(doc, dict):
            return doc
    return None


async def serve(data_dir: Path, socket_path: Path, journal_mode: str) -> None:
    from nx_27017.server import handle_client

    handler = batch_commit_handler(data_dir, journal_mode)

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
