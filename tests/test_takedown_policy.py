"""Takedown policies per hash list: a match on a ``draft`` list drafts a request at once, on a
trusted ``auto`` list the request is sent (SMTP to a local aiosmtpd server) before anyone opens the
console; ``auto`` is refused on untrusted lists and never applies to classifier or watchlist alerts."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

import config
from config import Settings
from config.takedowns import TakedownSettings
from crawler.evidence.ledger import Ledger
from crawler.hashing import synthetic
from crawler.pipeline import open_pipeline
from crawler.takedowns.autodraft import PolicyHook
from crawler.takedowns.models import Reason, RequestStatus
from crawler.takedowns.policy import PolicyRefused, TakedownPolicy, check_policy, effective_policy
from crawler.takedowns.sending import Dispatcher
from crawler.takedowns.service import TakedownService
from foundation.models import Alert, AlertKind, utcnow
from storage.client import Store
from storage.repos.hashlists import HashListRepo
from tests.media_host import LOOPBACK_HTTP, MediaServer
from tests.test_media_stage import msg, photo
from tests.test_takedown_senders import Inbox, running_inbox


def test_auto_is_refused_on_untrusted_lists_and_for_guesses() -> None:
    assert check_policy("auto", trusted=True) is TakedownPolicy.AUTO
    with pytest.raises(PolicyRefused, match="trusted"):
        check_policy("auto", trusted=False)
    for kind in ("detection", "watchlist"):
        with pytest.raises(PolicyRefused, match="never"):
            check_policy("auto", trusted=True, alert_kind=kind)
        assert check_policy("draft", trusted=False, alert_kind=kind) is TakedownPolicy.DRAFT
    with pytest.raises(PolicyRefused, match="unknown"):
        check_policy("yolo", trusted=True)
    # when an alert arrives the same rule lowers a stored 'auto' to 'draft', never to silence
    assert effective_policy("auto", trusted=False, alert_kind="hash_match") is TakedownPolicy.DRAFT
    assert effective_policy("auto", trusted=True, alert_kind="detection") is TakedownPolicy.DRAFT
    assert effective_policy("auto", trusted=True, alert_kind="hash_match") is TakedownPolicy.AUTO
    assert effective_policy(None, trusted=True, alert_kind="hash_match") is TakedownPolicy.MANUAL
    with pytest.raises(ValidationError):
        TakedownSettings(detection_policy="auto")  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(
        data_dir=tmp_path / "data", media={"hash_workers": 1}, limits={"max_media_bytes": 2_000_000},
        http=LOOPBACK_HTTP, takedowns={"reporter_name": "Test Hotline", "reporter_contact": "reports@example.org"},
    )  # fmt: skip


@pytest.fixture
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    with running_inbox() as running:
        yield running


async def listed_post(store: Store, server: MediaServer, name: str, *, seed: int) -> str:
    png = synthetic.encode(synthetic.scene(seed), "PNG")
    server.files[f"{name}.png"] = (png, "image/png")
    sha = hashlib.sha256(png).hexdigest()
    await HashListRepo(store).add_entries(name, "csv", [("sha256", sha, "known")])
    return sha


async def test_a_match_on_a_draft_list_drafts_a_request_that_waits_for_review(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str]
) -> None:
    server, base = media_server
    sha = await listed_post(store, server, "review-list", seed=21)
    await HashListRepo(store).set_takedown("review-list", policy="draft", reason="ncii")
    manual_sha = await listed_post(store, server, "manual-list", seed=22)
    async with open_pipeline(store, settings) as ingest:
        result = await ingest.submit(
            [msg(40, photo(base + "review-list.png")), msg(41, photo(base + "manual-list.png"), channel="elsewhere")]
        )
    assert result.matches == 2
    service = TakedownService(store, Ledger(store), settings.takedowns)
    [req] = await service.all()
    assert req.status is RequestStatus.DRAFT and req.policy == "draft" and req.reason is Reason.NCII
    assert req.alerts == [f"match/review-list/{sha}"] and req.created_by == "policy:list:review-list"
    assert [i.item_id for i in req.items] == ["message:media_lab/40"] and req.items[0].evidence
    assert req.sendings == [], "a draft waits for a person"
    assert manual_sha not in {m.sha256 for i in req.items for m in i.media}, "a manual list only alerts"
    [create] = await service.history(req.id)
    assert create["action"] == "create" and create["policy"] == "draft"


async def test_a_trusted_auto_list_is_reported_without_anyone_opening_the_console(
    store: Store, settings: Settings, media_server: tuple[MediaServer, str], smtp_inbox: tuple[Inbox, int]
) -> None:
    handler, port = smtp_inbox
    server, base = media_server
    sending = settings.takedowns.model_copy(
        update={"senders": settings.takedowns.senders.model_copy(
            update={"email": settings.takedowns.senders.email.model_copy(
                update={"enabled": True, "host": "127.0.0.1", "port": port, "security": "none"})})}
    )  # fmt: skip
    settings = settings.model_copy(update={"takedowns": sending})
    await listed_post(store, server, "trusted-list", seed=23)
    await HashListRepo(store).set_takedown("trusted-list", policy="auto", trusted=True)
    # an 'auto' list whose trust was withdrawn behind the CLI's back only drafts
    await listed_post(store, server, "untrusted-auto", seed=24)
    await HashListRepo(store).set_takedown("untrusted-auto", policy="auto", trusted=False)
    async with open_pipeline(store, settings) as ingest:
        await ingest.submit([msg(50, photo(base + "trusted-list.png")), msg(51, photo(base + "untrusted-auto.png"))])
    # leaving the pipeline waits for the automatic sending
    service = TakedownService(store, Ledger(store), settings.takedowns)
    by_list = {r.alerts[0].split("/")[1]: r for r in await service.all()}
    sent, drafted = by_list["trusted-list"], by_list["untrusted-auto"]
    assert sent.status is RequestStatus.SENT and sent.policy == "auto"
    assert drafted.status is RequestStatus.DRAFT and drafted.policy == "draft" and drafted.sendings == []
    [(_, rcpt, data)] = handler.messages
    assert rcpt == ["abuse@telegram.org"]
    body = email.message_from_bytes(data, policy=email.policy.default).get_body().get_content()  # type: ignore[union-attr]
    assert "https://t.me/media_lab/50" in body and "media_lab/51" not in body
    [entry] = [e for e in await service.history(sent.id) if e["action"] == "sent"]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["actor"] == "policy:list:trusted-list"


async def test_detection_alerts_are_drafted_at_most(store: Store, settings: Settings) -> None:
    service = TakedownService(store, Ledger(store), settings.takedowns)
    alert = Alert(key="detection/x/default", kind=AlertKind.DETECTION, sha256="c" * 64, summary="flagged",
                  raised_at=utcnow())  # fmt: skip
    for configured, expected in (("manual", TakedownPolicy.MANUAL), ("draft", TakedownPolicy.DRAFT)):
        s = settings.takedowns.model_copy(update={"detection_policy": configured})
        hook = PolicyHook(service, Dispatcher(service, []), s)
        policy, _, _ = await hook.decide(alert)
        assert policy is expected
    # even a setting forced past validation cannot make a classifier verdict send unseen
    forced = settings.takedowns.model_copy(update={"detection_policy": "auto"})
    policy, _, _ = await PolicyHook(service, Dispatcher(service, []), forced).decide(alert)
    assert policy is TakedownPolicy.DRAFT


def tgwatch(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "crawler", "--data-dir", str(data), *args],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip


@pytest.mark.slow
def test_cli_policies_and_the_review_queue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    csv = tmp_path / "list.csv"
    csv.write_text(f"signal_type,signal,label\nsha256,{'d' * 64},x\n")
    refused = tgwatch(data, "hashes", "import", str(csv), "--list", "partner", "--takedown", "auto")
    assert refused.returncode == 2 and "trusted" in refused.stderr
    assert "partner" not in tgwatch(data, "hashes", "lists").stdout, "a refused policy imports nothing"
    ok = tgwatch(data, "hashes", "import", str(csv), "--list", "partner", "--takedown", "auto", "--trusted")
    assert ok.returncode == 0, ok.stderr
    shown = tgwatch(data, "hashes", "policy", "partner")
    assert "takedown auto, trusted" in shown.stdout
    untrust = tgwatch(data, "hashes", "policy", "partner", "--untrusted")
    assert untrust.returncode == 2 and "trusted" in untrust.stderr
    lowered = tgwatch(data, "hashes", "policy", "partner", "--takedown", "draft", "--untrusted")
    assert lowered.returncode == 0 and "takedown draft, untrusted" in lowered.stdout
    listed = tgwatch(data, "takedown", "list", "--status", "draft", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    missing = tgwatch(data, "takedown", "approve", "TD-000404")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
