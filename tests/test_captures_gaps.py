"""Gap reports: a channel with a deleted, a never-fetched, an unshown and an out-of-reach message,
read through the real CLI (``tgwatch channels gaps NAME --json``) against the embedded store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.captures.gaps import gap_report
from crawler.ingest import Ingest
from foundation.models import ChannelRef, Checkpoint, Deletion, Message, RawCapture, Source
from storage.client import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REF = ChannelRef(username="gapchan")


def message(i: int) -> Message:
    html = f"<div class='msg'>post {i}</div>"
    return Message(
        ref=REF, msg_id=i, source=Source.WEB, date=T0 + timedelta(minutes=i), text=f"post {i}", html=html,
        raw=RawCapture.of("html", html, url="http://sample/s/gapchan", fetched_at=T0),
    )  # fmt: skip


def cli(uri: str, database: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(TGWATCH_MONGODB_URI=uri, TGWATCH_DATABASE=database, TGWATCH_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_gaps_name_deleted_never_fetched_unshown_and_out_of_reach_ids(
    ingest: Ingest, store: Store, embedded_uri: str, tmp_path: Path
) -> None:
    # held: 3 5 6 7 10; the walk read 3..10 but a truncated page left 8..9 unread; 5 was deleted later
    checkpoint = Checkpoint(stream="web:gapchan", oldest_id=3, newest_id=10, extra={"gaps": [[8, 9]]})
    await ingest.submit([message(i) for i in (3, 5, 6, 7, 10)], checkpoint=checkpoint)
    await ingest.submit([Deletion(ref=REF, msg_ids=[5], source=Source.WEB, seen_at=T0 + timedelta(days=1))])

    report = await gap_report(store, "gapchan")
    assert (report.held, report.first_id, report.last_id) == (5, 3, 10)
    assert [d["id"] for d in report.deleted] == [5]
    assert [(r["from"], r["to"], r["reason"]) for r in report.missing] == [
        (1, 2, "beyond_reach"),
        (4, 4, "not_shown"),
        (8, 9, "never_fetched"),
    ]

    run = cli(embedded_uri, store.db.name, tmp_path / "data", "channels", "gaps", "@gapchan", "--json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["missing_count"] == 5 and doc["deleted"][0]["id"] == 5
    assert doc["deleted"][0]["deleted_at"].startswith("2026-03-02")
    text = cli(embedded_uri, store.db.name, tmp_path / "data", "channels", "gaps", "gapchan")
    assert "8..9" in text.stdout and "never_fetched" in text.stdout and "deleted   5" in text.stdout

    unknown = cli(embedded_uri, store.db.name, tmp_path / "data", "channels", "gaps", "nosuchchan")
    assert unknown.returncode == 1 and "no messages" in unknown.stderr and "Traceback" not in unknown.stderr
