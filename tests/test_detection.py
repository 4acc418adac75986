"""Detection queue end to end: quarantine, service, HTTP API, Python client, consumer processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image, ImageDraw

import config
from config import Settings
from crawler.api.app import build_app
from crawler.detection.api import SERVICE
from crawler.detection.client import DetectionApiError, DetectionClient
from crawler.detection.quarantine import Quarantine, QuarantineError
from crawler.detection.service import DetectionService, VerdictIn
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from foundation.models import Decision
from storage.client import Store


def synthetic_png(seed: int) -> bytes:
    img = Image.new("RGB", (64, 48), (seed * 37 % 255, 90, 160))
    ImageDraw.Draw(img).ellipse((8, 8, 40 + seed % 20, 40), fill=(250, 220, 40))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(data_dir=tmp_path / "data", detection={"max_attempts": 3, "lease_seconds": 30})


@pytest.fixture
def service(store: Store, settings: Settings) -> DetectionService:
    return DetectionService(store, settings)


# -- quarantine -----------------------------------------------------------------------------


def test_quarantine_round_trip_and_no_plaintext_on_disk(tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "q", os.urandom(32))
    data = synthetic_png(1) + b"PLAINTEXT-MARKER"
    sha = q.put(data)
    assert q.get(sha) == data and q.put(data) == sha
    files = [p for p in (tmp_path / "q").rglob("*") if p.is_file()]
    assert len(files) == 1 and oct(files[0].stat().st_mode)[-3:] == "600"
    assert b"PLAINTEXT-MARKER" not in files[0].read_bytes() and b"PNG" not in files[0].read_bytes()


def test_quarantine_detects_tampering_and_wrong_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    q = Quarantine(tmp_path, key)
    sha = q.put(synthetic_png(2))
    path = q.path(sha)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(QuarantineError, match="failed authentication"):
        q.get(sha)
    sha2 = q.put(synthetic_png(3))
    with pytest.raises(QuarantineError, match="failed authentication"):
        Quarantine(tmp_path, os.urandom(32)).get(sha2)
    with pytest.raises(QuarantineError, match="not a sha256"):
        q.path("../../etc/passwd")


def test_purge_respects_retention(tmp_path: Path) -> None:
    q = Quarantine(tmp_path, os.urandom(32))
    a, b = q.put(b"a" * 10), q.put(b"b" * 10)
    assert q.purge({a}, retention_seconds=3600) == []
    assert q.purge({a}, retention_seconds=0) == [a]
    assert not q.has(a) and q.has(b)


# -- service --------------------------------------------------------------------------------


async def _seed_media(store: Store, service: DetectionService, seed: int, channels: list[str]) -> str:
    sha = service.quarantine.put(synthetic_png(seed))
    await store["media"].insert_one({"_id": sha, "kind": "photo"})
    for i, channel in enumerate(channels):
        await store["channels"].update_one({"_id": channel}, {"$setOnInsert": {"usernames": [channel]}}, upsert=True)
        await store["sightings"].insert_one(
            {"_id": f"{sha}/{channel}/{i}", "sha256": sha, "channel": channel, "msg_id": i}
        )
    return sha


async def test_enqueue_is_idempotent_and_priorities_follow_the_policy(store: Store, service: DetectionService) -> None:
    normal = await _seed_media(store, service, 1, ["a"])
    matched = await _seed_media(store, service, 2, ["a"])
    assert await service.enqueue(normal) == [f"{normal}/default"]
    assert await service.enqueue(normal) == []
    await service.enqueue(matched, matched=True)
    jobs = await service.claim("c", n=5)
    assert [j.sha256 for j in jobs] == [matched, normal], "hash matches first"
    assert jobs[0].media_url.startswith(f"/api/v1/detection/media/{matched}?exp=")


async def test_policy_unmatched_and_flagged(store: Store, tmp_path: Path) -> None:
    svc = DetectionService(store, config.load(data_dir=tmp_path, detection={"enqueue_policy": "unmatched"}))
    assert await svc.enqueue("a" * 64, matched=True) == []
    assert await svc.enqueue("b" * 64) == ["b" * 64 + "/default"]
    svc = DetectionService(store, config.load(data_dir=tmp_path, detection={"enqueue_policy": "flagged"}))
    assert await svc.enqueue("c" * 64) == []
    assert await svc.enqueue("d" * 64, flagged_channel=True) == ["d" * 64 + "/default"]


async def test_positive_verdict_alerts_and_raises_channel_risk(store: Store, service: DetectionService) -> None:
    sha = await _seed_media(store, service, 4, ["chan_a", "chan_b"])
    await service.enqueue(sha)
    (job,) = await service.claim("c")
    verdict = await service.ack(job.job_id, job.token, VerdictIn(decision=Decision.POSITIVE, labels={"ncii": 0.97}))
    assert verdict.decision is Decision.POSITIVE
    again = await service.ack(job.job_id, job.token, VerdictIn(decision=Decision.NEGATIVE))
    assert again.decision is Decision.POSITIVE, "a double ack changes nothing"
    assert await store["verdicts"].estimated_document_count() == 1
    alert = await service.alerts.get(f"detection/{sha}/default")
    assert alert is not None and alert["channels"] == ["chan_a", "chan_b"] and "ncii 0.97" in alert["summary"]
    for channel in ("chan_a", "chan_b"):
        doc = await store["channels"].find_one({"_id": channel})
        assert doc is not None and doc["risk_score"] == 10.0
    media = await store["media"].find_one({"_id": sha})
    assert media is not None and media["verdicts"]["default"]["decision"] == "positive"


async def test_new_verdict_supersedes_never_overwrites(store: Store, service: DetectionService) -> None:
    sha = await _seed_media(store, service, 5, ["c"])
    await service.enqueue(sha)
    (job,) = await service.claim("c")
    await service.ack(job.job_id, job.token, VerdictIn(decision=Decision.NEGATIVE))
    await store["detection_jobs"].update_one({"_id": job.job_id}, {"$set": {"state": "dead"}})
    assert await service.queue.requeue(job.job_id)
    (job2,) = await service.claim("c")
    await service.ack(job2.job_id, job2.token, VerdictIn(decision=Decision.POSITIVE, detector_version="2"))
    verdicts = await store["verdicts"].find({"sha256": sha}).sort("decided_at", 1).to_list(None)
    assert [v["decision"] for v in verdicts] == ["negative", "positive"]
    assert verdicts[1]["supersedes"] == verdicts[0]["_id"]


def test_verdict_validation() -> None:
    with pytest.raises(ValueError):
        VerdictIn.model_validate({"decision": "maybe"})
    with pytest.raises(ValueError):
        VerdictIn.model_validate({"decision": "positive", "labels": {"x": 1.5}})


# -- HTTP API + client ------------------------------------------------------------------------


@pytest.fixture
async def server(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    app = build_app(store, settings, ALL_MODULES)
    async with TestServer(app, host="127.0.0.1") as srv:
        yield srv


async def _detector_token(store: Store) -> str:
    token, _ = await TokenRepo(store, server_secret(config.load())).create("detector-test", Role.DETECTOR)
    return token


async def test_client_drains_over_http(store: Store, server: TestServer, settings: Settings) -> None:
    svc = DetectionService(store, settings)
    data = synthetic_png(6)
    sha = svc.quarantine.put(data)
    await svc.enqueue(sha)
    base = str(server.make_url("/"))
    async with DetectionClient(base, await _detector_token(store)) as client:
        (job,) = await client.claim(1)
        assert await client.media(job) == data
        await client.extend(job, 60)
        out = await client.ack(job, {"decision": "negative", "labels": {"ncii": 0.1}})
        assert out["verdict"]["decision"] == "negative"
        again = await client.ack(job, {"decision": "positive"})
        assert again["verdict"]["decision"] == "negative", "double ack: 200, unchanged"
        stats = await client.stats()
        assert stats["done"] == 1 and stats["ready"] == 0


async def test_http_bad_input_is_a_clear_4xx(store: Store, server: TestServer, settings: Settings) -> None:
    svc = DetectionService(store, settings)
    sha = svc.quarantine.put(synthetic_png(7))
    await svc.enqueue(sha)
    async with DetectionClient(str(server.make_url("/")), await _detector_token(store)) as client:
        (job,) = await client.claim(1)
        bad_sig = job["media_url"].replace("sig=", "sig=0")
        async with client.session.get(str(server.make_url(bad_sig))) as resp:
            assert resp.status == 403
        expired = svc.signer.media_path(sha, now=0)
        async with client.session.get(str(server.make_url(expired))) as resp:
            assert resp.status == 403
        with pytest.raises(DetectionApiError) as err:
            await client.ack(job, {"decision": "maybe"})
        assert err.value.status == 400
        with pytest.raises(DetectionApiError) as err:
            await client.ack({**job, "job_id": "nope/default"}, {"decision": "negative"})
        assert err.value.status == 404
        with pytest.raises(DetectionApiError) as err:
            await client.ack({**job, "token": "0" * 32}, {"decision": "negative"})
        assert err.value.status == 409
        state = await svc.queue.get(job["job_id"])
        assert state is not None and state["state"] == "leased", "bad calls leave the queue unharmed"
        await client.ack(job, {"decision": "negative"})


# -- consumer processes ------------------------------------------------------------------------

DETECTOR = """
import json, sys, time, os
path = sys.argv[1]
if os.environ.get("DETECTOR_MODE") == "hang":
    time.sleep(600)
if os.environ.get("DETECTOR_MODE") == "crash":
    sys.exit(3)
size = os.path.getsize(path)
print(json.dumps({"decision": "negative", "labels": {"size_kb": min(size / 1024 / 100, 1.0)}}))
"""


async def _consumer(url: str, token: str, script: Path, *extra: str, mode: str = "ok") -> asyncio.subprocess.Process:
    env = {**os.environ, "TGWATCH_DETECTOR_TOKEN": token, "DETECTOR_MODE": mode}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crawler", "--log-format", "json", "detector", "run", "--url", url,
        "--cmd", f"{sys.executable} {script} {{path}}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def until_leased(svc: DetectionService, consumer: asyncio.subprocess.Process, guard: float = 180.0) -> None:
    """Wait until a job is leased, however slow the machine: bounded by the consumer itself (it must
    still be running) and by a generous hang guard, never by a guess at its start-up time."""
    deadline = time.monotonic() + guard
    while not (await svc.stats())["leased"]:
        if consumer.returncode is not None:
            _, err = await consumer.communicate()
            raise AssertionError(f"the consumer exited {consumer.returncode} before leasing: {err.decode()[-800:]}")
        assert time.monotonic() < deadline, f"no job leased within {guard:g}s"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_four_consumers_one_killed_mid_lease(
    store: Store, server: TestServer, settings: Settings, tmp_path: Path
) -> None:
    svc = DetectionService(store, settings)
    shas = [svc.quarantine.put(synthetic_png(100 + i)) for i in range(24)]
    for sha in shas:
        await svc.enqueue(sha)
    script = tmp_path / "detector.py"
    script.write_text(DETECTOR)
    url, token = str(server.make_url("/")).rstrip("/"), await _detector_token(store)
    # the victim leases a job with a short lease, then hangs in the detector and is killed
    victim = await _consumer(url, token, script, "--lease", "3", mode="hang")
    try:
        await until_leased(svc, victim)
        leased = await store["detection_jobs"].find_one({"state": "leased"})
        assert leased is not None
        victim.send_signal(signal.SIGKILL)
    finally:  # a failed wait must not leave the hanging consumer behind (its detector dies with it)
        if victim.returncode is None:
            victim.kill()
        await victim.wait()
    for _ in range(200):  # the victim's last heartbeat may have extended the lease: wait until it runs out
        job = await store["detection_jobs"].find_one({"_id": leased["_id"]})
        if job is not None and job["lease_until"] < time.time() - 0.2:
            break
        await asyncio.sleep(0.1)
    workers = [await _consumer(url, token, script, "--until-empty", "--concurrency", "2") for _ in range(4)]
    try:
        outputs = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 240)
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()
    assert all(w.returncode == 0 for w in workers), [o[1].decode()[-800:] for o in outputs]
    summaries = [json.loads(o[0].decode().strip().splitlines()[-1]) for o in outputs]
    assert sum(s["acked"] for s in summaries) == 24
    verdicts = await store["verdicts"].find().to_list(None)
    assert sorted(v["sha256"] for v in verdicts) == sorted(shas), "each job completed exactly once"
    redelivered = await svc.queue.get(leased["_id"])
    assert redelivered is not None and redelivered["state"] == "done" and redelivered["attempts"] == 2


@pytest.mark.slow
async def test_poison_job_goes_dead(store: Store, server: TestServer, settings: Settings, tmp_path: Path) -> None:
    svc = DetectionService(store, settings)
    sha = svc.quarantine.put(synthetic_png(200))
    await svc.enqueue(sha)
    script = tmp_path / "detector.py"
    script.write_text(DETECTOR)
    url, token = str(server.make_url("/")).rstrip("/"), await _detector_token(store)
    # the server's own service instance applies the back-off; make it immediate for the test
    server.app[SERVICE].queue._backoff = lambda attempt: 0.0  # type: ignore[method-assign]
    proc = await _consumer(url, token, script, "--until-empty", mode="crash")
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-500:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["nacked"] == 3 and summary["acked"] == 0
    job = await svc.queue.get(f"{sha}/default")
    assert job is not None and job["state"] == "dead" and len(job["errors"]) == 3
    assert "exited 3" in job["errors"][-1]


async def test_positive_verdict_drafts_a_request_when_the_detection_policy_says_draft(
    store: Store, tmp_path: Path
) -> None:
    """``takedowns.detection_policy = "draft"``: a classifier's positive becomes a drafted request that
    waits for a person (never sent: detection alerts are never ``auto``)."""
    from crawler.ingest import Ingest
    from foundation.models import ChannelRef, MediaKind, MediaRef, Message, RawCapture, Source, utcnow
    from storage.repos.takedowns import TakedownRepo

    settings = config.load(data_dir=tmp_path / "data", takedowns={"detection_policy": "draft"})
    svc = DetectionService(store, settings)
    sha = svc.quarantine.put(synthetic_png(9))
    html = "<div>post</div>"
    await Ingest(store).submit([
        Message(ref=ChannelRef(username="room_nine"), msg_id=4, source=Source.WEB, date=utcnow(), html=html,
                media=[MediaRef(kind=MediaKind.PHOTO, sha256=sha, url="http://x/p.png")],
                raw=RawCapture.of("html", html, url="http://x/s/room_nine", fetched_at=utcnow()))
    ])  # fmt: skip
    await svc.enqueue(sha)
    app = build_app(store, settings, ALL_MODULES)
    token = await _detector_token(store)
    async with TestServer(app, host="127.0.0.1") as srv, DetectionClient(str(srv.make_url("/")), token) as client:
        (job,) = await client.claim(1)
        await client.ack(job, {"decision": "positive", "labels": {"ncii": 0.97}})
    docs = await TakedownRepo(store).all()
    assert [(d["status"], d["alerts"], [i["link"] for i in d["items"]]) for d in docs] == [
        ("draft", [f"detection/{sha}/default"], ["https://t.me/room_nine/4"])
    ]
