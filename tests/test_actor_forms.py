"""One naming form for the acting person: ``cli:<os-user>`` from the terminal, ``token:<name>`` from
the API and the console (``crawler.tokens``). The API side is asserted where each route is tested
(e.g. tests/test_ledger_api_cli.py, tests/test_investigate_api.py); here the CLI side, end to end."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from crawler.tokens import Principal, Role, cli_actor
from storage import schema


def _tgwatch(data_dir: Path, env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data_dir), "--log-format", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def test_the_two_forms() -> None:
    assert Principal(token_id="t1", name="ana", role=Role.INVESTIGATOR).actor == "token:ana"
    assert cli_actor("bob") == "cli:bob"
    assert cli_actor() == f"cli:{getpass.getuser()}"


async def test_cli_commands_record_the_os_user_in_the_ledger_and_the_audit_log(
    embedded_uri: str, db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    await schema.apply(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=embedded_uri, TGWATCH_DATABASE=db.name)
    data = tmp_path / "d"
    run = lambda *args: asyncio.to_thread(_tgwatch, data, env, *args)  # noqa: E731
    await run("evidence", "keygen")
    grant = ["auth", "grant", "--case", "C1", "--warrant", "W1", "--approved-by", "judge"]
    await run(*grant, "--scope", "@some_channel", "--accounts", "acc1", "--valid-until", "2099-01-01")
    await run("evidence", "verify-ledger")
    payloads = [json.loads(d["payload"]) async for d in db["ledger"].find({}).sort("seq", 1)]
    granted = next(p for p in payloads if p["kind"] == "authorization")
    assert granted["actor"] == f"cli:{getpass.getuser()}"
    audit = await db["audit"].find_one({"action": "ledger.verify"})
    assert audit is not None and audit["actor"] == f"cli:{getpass.getuser()}"
