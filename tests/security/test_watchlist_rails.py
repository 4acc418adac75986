"""Security review of the consent-based watchlist (issue 22): holes found and closed.

Each test arranges real state (an enrollment sealed under the configured key, jobs on the real
detection queue, the API server on loopback) and checks one rail:

- only the faces detector's jobs can carry a ``watchlist_match`` (another detector's token cannot
  name a person on its job);
- the gallery a detector token reads names persons, never their cases;
- a detector whose gallery refresh fails drops the gallery it held (a withdrawn person is not kept
  in memory nor matched on a stale copy);
- the media view, read by every role, never tells that a media item matched someone;
- the dashboard's counts (read by monitors) never count watchlist matches;
- a withdrawal ends her matches too: open review alerts are closed and lose her match records,
  verdict documents lose them;
- a delivery queued for a watchlist alert is never sent.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestServer

import config
from config import Settings
from crawler.api.app import build_app
from crawler.detection.client import DetectionApiError, DetectionClient
from crawler.detection.service import DetectionService, VerdictIn
from crawler.evidence.ledger import Ledger
from crawler.server_modules import ALL_MODULES
from crawler.tokens import Role, TokenRepo, server_secret
from crawler.watchlist.gate import NotAWatchlistJob, WatchlistReview
from crawler.watchlist.sealing import Sealer, watchlist_key
from crawler.watchlist.service import WatchlistService
from foundation.models import utcnow
from storage.client import Store
from storage.repos.alerts import AlertRepo
from storage.repos.verdicts import VerdictRepo
from storage.repos.watchlist import WatchlistRepo

KEY = base64.urlsafe_b64encode(b"s" * 32).decode()
#: a tiny valid PNG is enough: the queue and the server never look at pixels
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    detectors = {"detectors": ["default", "faces"]}
    return config.load(data_dir=tmp_path / "data", watchlist={"key": KEY}, detection=detectors)


@pytest.fixture
async def api(store: Store, settings: Settings) -> AsyncIterator[TestServer]:
    async with TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1") as srv:
        yield srv


async def enroll(store: Store, settings: Settings, person: str, case: str) -> None:
    """An active enrollment as ``watchlist enroll`` stores it (random embeddings: no face needed)."""
    vectors = np.random.default_rng(7).normal(size=(1, 128)).astype(np.float32)
    expires = utcnow() + timedelta(days=30)
    sealed = Sealer(watchlist_key(settings)).seal(person, vectors)
    await WatchlistRepo(store).insert(
        {
            "_id": person, "state": "active", "case": case, "consent_ref": f"DOC-{person}", "enrolled_by": "cli:t",
            "enrolled_at": utcnow(), "expires_at": expires, "expires_ts": expires.timestamp(), "embeddings": 1,
            "model": "dlib-resnet-v1+hog", "consent_seq": 0, "sealed": base64.b64encode(sealed).decode("ascii"),
        }
    )  # fmt: skip


def detection(store: Store, settings: Settings) -> tuple[DetectionService, WatchlistService]:
    watchlist = WatchlistService(store, settings, Ledger(store))
    return DetectionService(store, settings, watchlist=WatchlistReview(watchlist)), watchlist


def match(person: str, distance: float = 0.3) -> VerdictIn:
    hit = {"person": person, "distance": distance, "box": [1, 1, 50, 50]}
    return VerdictIn.model_validate({"decision": "watchlist_match", "matches": [hit]})


async def matched(svc: DetectionService, data: bytes, person: str) -> str:
    """Queue ``data`` and let the faces detector report ``person``; the media digest."""
    sha = svc.quarantine.put(data)
    await svc.enqueue(sha)
    (job,) = await svc.claim("faces-1", detector="faces")
    verdict = await svc.ack(job.job_id, job.token, match(person))
    assert verdict.decision.value == "watchlist_match"
    return sha


async def test_another_detectors_job_cannot_carry_a_watchlist_match(store: Store, settings: Settings) -> None:
    await enroll(store, settings, "p-1", "C1")
    svc, _ = detection(store, settings)
    await svc.enqueue(svc.quarantine.put(PNG))
    (job,) = await svc.claim("classifier", detector="default")
    with pytest.raises(NotAWatchlistJob):
        await svc.ack(job.job_id, job.token, match("p-1"))
    assert [a for a in await AlertRepo(store).list(limit=100) if a["kind"] == "watchlist_match"] == []
    assert await VerdictRepo(store).of_media(job.sha256) == []


async def test_the_gallery_names_no_case(store: Store, settings: Settings, api: TestServer) -> None:
    await enroll(store, settings, "p-1", "CASE-SECRET")
    token, _ = await TokenRepo(store, server_secret(settings)).create("faces-det", Role.DETECTOR)
    async with DetectionClient(str(api.make_url("/")), token) as client:
        body = await client.get_json("/api/v1/watchlist/gallery")
    assert [p["person"] for p in body["persons"]] == ["p-1"]
    assert "CASE-SECRET" not in repr(body) and all(set(p) == {"person", "sealed"} for p in body["persons"])


async def test_a_detector_whose_refresh_fails_forgets_the_gallery(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    from crawler.watchlist.detector import FacesDetector
    from crawler.watchlist.faces import FaceModel

    await enroll(store, settings, "p-1", "C1")
    token, _ = await TokenRepo(store, server_secret(settings)).create("faces-det", Role.DETECTOR)
    srv = TestServer(build_app(store, settings, ALL_MODULES), host="127.0.0.1")
    await srv.start_server()
    client = DetectionClient(str(srv.make_url("/")), token)
    async with client:
        detector = FacesDetector(client, Sealer(watchlist_key(settings)), FaceModel(), 30.0)
        await detector.refresh(force=True)
        assert detector.gallery.persons == ["p-1"]
        # she withdraws while the server is unreachable: the detector must not keep her
        await WatchlistService(store, settings, Ledger(store)).withdraw("p-1", actor="cli:t")
        await srv.close()
        with pytest.raises((aiohttp.ClientError, DetectionApiError, OSError)):
            await detector.refresh(force=True)
        assert detector.gallery.persons == [] and len(detector.gallery) == 0


async def test_the_media_view_never_tells_that_media_matched(store: Store, settings: Settings, api: TestServer) -> None:
    await enroll(store, settings, "p-1", "C1")
    svc, _ = detection(store, settings)
    stored = PNG + b"\0"  # its media document exists before the verdict (it is then updated)
    await store["media"].insert_one({"_id": hashlib.sha256(stored).hexdigest(), "size": len(stored), "verdicts": {}})
    sha, sha2 = await matched(svc, PNG, "p-1"), await matched(svc, stored, "p-1")
    tokens = TokenRepo(store, server_secret(settings))
    outsider, _ = await tokens.create("inv-outsider", Role.INVESTIGATOR)  # a member of no case
    async with aiohttp.ClientSession() as http:
        for digest, status in ((sha, 404), (sha2, 200)):
            url = str(api.make_url(f"/api/v1/media/{digest}"))
            async with http.get(url, headers={"Authorization": f"Bearer {outsider}"}) as resp:
                text = await resp.text()
            assert resp.status == status, text
            assert "watchlist" not in text and "p-1" not in text and "matches_hidden" not in text, text
    media = await store["media"].find({}).to_list(None)
    assert not any("watchlist" in repr(d) for d in media), "the media document never records a watchlist verdict"


async def test_the_dashboard_counts_watchlist_matches_for_their_case_only(store: Store, settings: Settings) -> None:
    await enroll(store, settings, "p-1", "C1")
    svc, _ = detection(store, settings)
    await matched(svc, PNG, "p-1")
    alerts = AlertRepo(store)
    since, until = utcnow() - timedelta(days=1), utcnow() + timedelta(days=1)
    for outsider in ([], ["C2"]):
        assert "watchlist_match" not in await alerts.per_kind(since, until, cases=outsider)
        assert sum((await alerts.per_day(since, until, cases=outsider)).values()) == 0
        assert await alerts.open_channels(cases=outsider) == []
    assert (await alerts.per_kind(since, until, cases=["C1"]))["watchlist_match"] == 1
    assert (await alerts.per_kind(since, until, cases=None))["watchlist_match"] == 1
    assert "watchlist_match" not in await alerts.per_kind(since, until), "the default counts no case"


async def test_withdrawal_ends_her_matches_in_alerts_and_verdicts(store: Store, settings: Settings) -> None:
    await enroll(store, settings, "p-1", "C1")
    await enroll(store, settings, "p-2", "C2")
    svc, watchlist = detection(store, settings)
    alone = await matched(svc, PNG, "p-1")
    sha = svc.quarantine.put(PNG + b"\1")  # one image showing both enrolled persons
    await svc.enqueue(sha)
    (job,) = await svc.claim("faces-1", detector="faces")
    hits = [{"person": p, "distance": 0.2, "box": [1, 1, 50, 50]} for p in ("p-1", "p-2")]
    await svc.ack(job.job_id, job.token, VerdictIn.model_validate({"decision": "watchlist_match", "matches": hits}))

    await watchlist.withdraw("p-1", actor="cli:staff", reason="consent withdrawn")

    alerts = {a["sha256"]: a for a in await AlertRepo(store).list(kind="watchlist_match", limit=100)}
    assert alerts[alone]["status"] == "closed" and alerts[alone]["details"]["matches"] == []
    assert alerts[alone]["history"][-1]["by"] == "cli:staff"
    both = alerts[sha]
    assert both["status"] == "open" and [m["person"] for m in both["details"]["matches"]] == ["p-2"]
    assert both["details"]["persons"] == ["p-2"]
    verdicts = await store["verdicts"].find({}).to_list(None)
    assert not any(m.get("person") == "p-1" for v in verdicts for m in v.get("matches") or [])
    assert sorted(v.get("matches_withdrawn", 0) for v in verdicts) == [1, 1]


def test_an_image_tiled_with_faces_costs_a_bounded_number_of_embeddings() -> None:
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    from PIL import Image

    from crawler.watchlist.faces import MAX_FACES, FaceModel
    from tests.faces_support import ENROLLED, face_crop, jpeg, registry_face_photos

    photos = registry_face_photos()
    model = FaceModel()
    (face,) = model.faces_in((photos / ENROLLED).read_bytes())
    tile = face_crop(photos / ENROLLED, face.box, margin=0.3).resize((170, 200))
    canvas = Image.new("RGB", (170 * 9, 200 * 7), (90, 120, 150))
    for i in range(9 * 7):  # 63 faces (a few big ones among small ones: the big ones are kept)
        canvas.paste(tile, ((i % 9) * 170, (i // 9) * 200))
    found = model.faces_in(jpeg(canvas, 90))
    assert len(found) == MAX_FACES < 63


def test_a_video_too_large_is_refused_before_a_frame_is_decoded() -> None:
    pytest.importorskip("dlib", reason="the faces extra is not installed: pip install 'tgwatch[faces]'")
    import io

    import av

    from crawler.watchlist.faces import video_keyframes
    from foundation.errors import Undecodable

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((240, 320, 3), np.uint8), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert len(video_keyframes(buf.getvalue())) == 1
    with pytest.raises(Undecodable, match=r"^video of 320×240 exceeds"):
        video_keyframes(buf.getvalue(), max_pixels=320 * 240 - 1)


async def test_a_takedown_cannot_be_made_from_a_watchlist_alert_outside_its_case(store: Store, tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient

    from foundation.models import Alert, AlertKind
    from storage.repos.takedowns import TakedownRepo
    from tests.security.case_world import build_world

    world = await build_world(store, tmp_path / "data")
    monitor, _ = await TokenRepo(store, server_secret(config.load())).create("mon", Role.MONITOR)
    alerts = AlertRepo(store)
    for key, kind in ((f"watchlist/{world.sha}/p-1", AlertKind.WATCHLIST_MATCH), ("detection/x", AlertKind.DETECTION)):
        details = {"case": "C1", "cases": ["C1"], "persons": ["p-1"]} if kind is AlertKind.WATCHLIST_MATCH else {}
        alert = Alert(key=key, kind=kind, sha256=world.sha, summary="s", details=details, raised_at=utcnow())
        await alerts.raise_alert(alert)
    async with TestClient(TestServer(build_app(store, world.settings, ALL_MODULES))) as client:
        headers = {"Authorization": f"Bearer {monitor}"}
        body = {"alert": f"watchlist/{world.sha}/p-1", "channel": "case_chan", "reason": "sexual_deepfake"}
        resp = await client.post("/api/v1/takedowns", json=body, headers=headers)
        assert resp.status == 404, await resp.text()
        assert await TakedownRepo(store).all() == [], "a watchlist match is not a monitor's to act on (nor to probe)"
        resp = await client.post("/api/v1/takedowns", json={**body, "alert": "detection/x"}, headers=headers)
        assert resp.status == 201, await resp.text()


async def test_a_rejected_watchlist_verdict_leaves_no_names_in_the_job_errors(
    store: Store, settings: Settings, api: TestServer
) -> None:
    from crawler.detection.consumer import run_consumer

    await enroll(store, settings, "p-secret-7", "C1")
    svc, _ = detection(store, settings)
    await svc.enqueue(svc.quarantine.put(PNG))

    async def broken_faces_detector(path: Path, job: dict[str, object]) -> dict[str, object]:
        bad = {"person": "p-secret-7", "distance": 0.4321, "frame": 0}  # no face box
        return {"decision": "watchlist_match", "matches": [bad]}

    token, _ = await TokenRepo(store, server_secret(settings)).create("faces-det", Role.DETECTOR)
    async with DetectionClient(str(api.make_url("/")), token) as client:
        stats = await run_consumer(client, broken_faces_detector, until_empty=True, detector_name="faces")
    assert stats.nacked == 1
    (job,) = await store["detection_jobs"].find({"payload.detector": "faces"}).to_list(None)
    errors = repr(job.get("errors")) + repr(job.get("error"))
    assert "matches.0.box" in errors, errors
    assert "p-secret-7" not in errors and "0.4321" not in errors, errors


async def test_the_faces_detectors_negatives_do_not_single_out_its_matches(
    store: Store, settings: Settings, api: TestServer
) -> None:
    from crawler.investigate.filters import verdict_digests

    await enroll(store, settings, "p-1", "C1")
    svc, _ = detection(store, settings)
    seen = PNG + b"\2"  # faces: negative (its media document exists: the verdict would be recorded on it)
    await store["media"].insert_one({"_id": hashlib.sha256(seen).hexdigest(), "size": len(seen), "verdicts": {}})
    negative = svc.quarantine.put(seen)
    await svc.enqueue(negative)
    (job,) = await svc.claim("faces-1", detector="faces")
    await svc.ack(job.job_id, job.token, VerdictIn.model_validate({"decision": "negative"}))
    await matched(svc, PNG, "p-1")
    assert negative not in await verdict_digests(store, "negative"), "a search cannot tell the two apart"
    outsider, _ = await TokenRepo(store, server_secret(settings)).create("inv-outsider", Role.INVESTIGATOR)
    async with aiohttp.ClientSession() as http:
        url = str(api.make_url(f"/api/v1/media/{negative}"))
        async with http.get(url, headers={"Authorization": f"Bearer {outsider}"}) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["verdicts"] == [] and "faces" not in body["media"]["verdicts"]


def test_enroll_reads_a_photo_only_up_to_its_limit(tmp_path: Path) -> None:
    """A pipe that never ends (or a device, or a huge file) is refused after the limit, not read whole."""
    import os
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)

    def endless_writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)
        try:
            while True:
                os.write(fd, b"\xff" * 4096)
        except OSError:  # the reader went away
            os.close(fd)

    threading.Thread(target=endless_writer, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TGWATCH_")}
    env.update(
        TGWATCH_WATCHLIST__KEY=KEY, TGWATCH_DATA_DIR=str(tmp_path / "d"), TGWATCH_WATCHLIST__MAX_PHOTO_BYTES="4096"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "watchlist", "enroll", "p-1", "--consent-ref", "DOC-1", "--case", "C1",
         "--photo", str(fifo), "--expires", "2099-01-01"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0 and "larger than watchlist.max_photo_bytes (4096 bytes)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


async def test_a_delivery_queued_for_a_watchlist_alert_is_never_sent(store: Store, tmp_path: Path) -> None:
    from crawler.notify.dispatcher import DELIVERIES, Dispatcher
    from crawler.notify.rules import NotifyRule
    from foundation.models import AlertKind
    from storage.repos.notify import NotifyRuleRepo
    from storage.workqueue import WorkQueue
    from tests.media_host import LOOPBACK_HTTP
    from tests.notify_support import SECRET, alert, webhook_receiver

    settings = config.load(data_dir=tmp_path, http=LOOPBACK_HTTP)
    async with webhook_receiver() as hook:
        rule = NotifyRule(name="ops", sink="webhook", target=hook.url, secret_env="HOOK_SECRET")
        assert await NotifyRuleRepo(store).add(rule.to_doc())
        match = alert(key="watchlist/x/p-1", kind=AlertKind.WATCHLIST_MATCH, case="C1", cases=["C1"], persons=["p-1"])
        await AlertRepo(store).raise_alert(match)
        # queued anyway (an older dispatcher, a hand-made job): the dispatcher still refuses to send it
        await WorkQueue(store, DELIVERIES).enqueue("watchlist/x/p-1/ops", {"alert": "watchlist/x/p-1", "rule": "ops"})
        dispatcher = Dispatcher(store, settings, env={"HOOK_SECRET": SECRET})
        try:
            counts = await dispatcher.drain()
        finally:
            await dispatcher.aclose()
    assert hook.attempts == 0 and hook.received == [] and counts.get("sent", 0) == 0
